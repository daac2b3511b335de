use std::io::IsTerminal;
use std::process::ExitCode;

use std::sync::Arc;

use clap::Parser;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;
use wharf::admin::{self, PolicyTarget};
use wharf::config::{
    Cli, Command, Config, KeyAction, LogFormat, PolicyAction, PolicyTargetArgs, RemoteAction,
    RepositoryAction, SettingsArgs, UserAction,
};
use wharf::metadata::sql::SqlStore;
use wharf::metadata::{IdentityStore, RemoteStore, RepositorySettings, TagMutability};
use wharf::oci::{NameError, RepoName};
use wharf::registry::{MAX_PAGE, Registry};
use wharf::{housekeeping, scan_commands};

/// ECR's shortest repository name; OCI allows one character.
const MIN_REPOSITORY_NAME: usize = 2;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.settings) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("wharf: {e}");
            return ExitCode::from(2);
        }
    };
    // Logs go to standard error: standard output is the commands' answer (JSON, say).
    let logs = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match config.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&config).await,
        Command::Migrate => open_store(&config)
            .await
            .map(|_| tracing::info!("migrations applied")),
        command => administer(&config, command).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wharf: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: &Config) -> Result<(), String> {
    let state = wharf::build_state(config)
        .await
        .map_err(|e| e.to_string())?;
    let listener = TcpListener::bind(&config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%address, data_dir = %config.data_dir.display(), "wharf listening");
    wharf::serve(listener, state, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

async fn open_store(config: &Config) -> Result<Arc<SqlStore>, String> {
    if config.database_url.starts_with("sqlite:") {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| e.to_string())?;
    }
    let store = SqlStore::connect(&config.database_url).await;
    store.map(Arc::new).map_err(|e| e.to_string())
}

/// The user, key, policy, repository and login-password commands. Results go to stdout.
async fn administer(config: &Config, command: Command) -> Result<(), String> {
    let store = open_store(config).await?;
    match command {
        Command::User { action } => match action {
            UserAction::Create { name, password } => {
                let generated = password.is_none();
                let password = admin::create_user(&*store, &name, password).await?;
                if generated {
                    println!("created user {name} with password {password}");
                } else {
                    println!("created user {name}");
                }
            }
            UserAction::List => {
                for name in store.list_users().await.map_err(|e| e.to_string())? {
                    println!("{name}");
                }
            }
            UserAction::Delete { name } => admin::delete_user(&*store, &name).await?,
        },
        Command::Key { action } => match action {
            KeyAction::Create { user } => {
                let (id, secret) = admin::create_key(&*store, &user).await?;
                println!("access key id:     {id}\nsecret access key: {secret}");
            }
            KeyAction::List { user } => {
                for id in store
                    .list_access_keys(&user)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    println!("{id}");
                }
            }
            KeyAction::Delete { id } => admin::delete_key(&*store, &id).await?,
        },
        Command::Policy { action } => match action {
            PolicyAction::Set { target, file } => {
                let document = housekeeping::read_document(&file)?;
                store_policy(config, &store, &policy_target(target)?, Some(&document)).await?;
            }
            PolicyAction::Get { target } => {
                match admin::get_policy(&*store, &policy_target(target)?).await? {
                    Some(document) => println!("{document}"),
                    None => println!("(no policy)"),
                }
            }
            PolicyAction::Delete { target } => {
                store_policy(config, &store, &policy_target(target)?, None).await?;
            }
        },
        Command::Repository { action } => repository(config, store, action).await?,
        Command::Lifecycle { action } => {
            let registry = open_registry(config, store).await?;
            housekeeping::lifecycle(&registry, action).await?;
            write_audit(&registry).await?
        }
        Command::Gc { dry_run } => {
            let registry = open_registry(config, store).await?;
            housekeeping::gc(&registry, dry_run).await?;
            write_audit(&registry).await?
        }
        Command::Storage { action } => {
            housekeeping::storage(&open_registry(config, store).await?, action).await?
        }
        Command::Remote { action } => remote(config, &store, action).await?,
        Command::PullThrough { action } => {
            let identity = wharf::registry_identity(config, &*store)
                .await
                .map_err(|e| e.to_string())?;
            let registry = open_registry(config, store).await?;
            admin::pull_through(&registry, &identity, action).await?
        }
        Command::Replication { action } => {
            // The configuration lives in the registry's row, which a server makes at start.
            wharf::registry_identity(config, &*store)
                .await
                .map_err(|e| e.to_string())?;
            housekeeping::replication(&open_registry(config, store).await?, action).await?
        }
        Command::Vulndb { action } => {
            let rescan_always = config.rescan_after_import;
            let registry = open_registry(config, store).await?;
            scan_commands::vulndb(&registry, action, rescan_always).await?;
            write_audit(&registry).await?
        }
        Command::Scan {
            image,
            json,
            rescan_all: _,
        } => {
            let registry = open_registry(config, store).await?;
            // clap takes either an image or --rescan-all.
            match image {
                Some(image) => scan_commands::scan(&registry, &image, json).await?,
                None => scan_commands::rescan_all(&registry).await?,
            }
            write_audit(&registry).await?
        }
        Command::Audit(args) => {
            let region = config.region.clone();
            let registry = open_registry(config, store).await?;
            wharf::observe_commands::audit(&registry, &region, args).await?
        }
        Command::Webhook { action } => {
            let identity = wharf::registry_identity(config, &*store)
                .await
                .map_err(|e| e.to_string())?;
            let registry = open_registry(config, store).await?;
            wharf::observe_commands::webhook(&registry, &identity, action).await?
        }
        Command::LoginPassword { user } => {
            let auth = match &config.auth {
                Some(auth) => auth.clone(),
                None => Config::load(SettingsArgs {
                    auth: Some(true),
                    ..SettingsArgs::default()
                })?
                .auth
                .expect("auth on"),
            };
            let key = wharf::signing_key(&auth).map_err(|e| e.to_string())?;
            let registry = wharf::registry_identity(config, &*store)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "{}",
                admin::login_password(store, &user, auth.settings, key, registry).await?
            );
        }
        Command::Serve | Command::Migrate => unreachable!("handled by main"),
    }
    Ok(())
}

/// The `remote` commands.
async fn remote(config: &Config, store: &SqlStore, action: RemoteAction) -> Result<(), String> {
    match action {
        RemoteAction::Add { name, url, login } => {
            let credentials = login.username.map(admin::read_password).transpose()?;
            let new = admin::NewRemote {
                registry_id: name.registry_id.clone(),
                region: name.region.clone(),
                url,
                credentials,
                check: !login.skip_check,
            };
            let replaced = admin::add_remote(store, config.secrets_key.as_deref(), new).await?;
            let verb = if replaced { "replaced" } else { "added" };
            println!("{verb} remote {} {}", name.registry_id, name.region);
        }
        RemoteAction::List => {
            let remotes = store.list_remotes().await.map_err(|e| e.to_string())?;
            if remotes.is_empty() {
                println!("(no remotes)");
            }
            for remote in remotes {
                let user = remote.username.as_deref().unwrap_or("-");
                println!(
                    "{}  {}  {}  {user}",
                    remote.registry_id, remote.region, remote.url
                );
            }
        }
        RemoteAction::Delete { name } => {
            let deleted = store
                .delete_remote(&name.registry_id, &name.region)
                .await
                .map_err(|e| e.to_string())?;
            if !deleted {
                return Err(format!("no remote {} {}", name.registry_id, name.region));
            }
            println!("deleted remote {} {}", name.registry_id, name.region);
        }
    }
    Ok(())
}

/// Sets or (with `None`) removes a policy. The registry policy lives in the registry's row,
/// which a server makes at start; on a database no server has started on yet, it is made here
/// as a server would, so the id stored first (this one or a server's) stays.
async fn store_policy(
    config: &Config,
    store: &SqlStore,
    target: &PolicyTarget,
    document: Option<&str>,
) -> Result<(), String> {
    if matches!(target, PolicyTarget::Registry) {
        wharf::registry_identity(config, store)
            .await
            .map_err(|e| e.to_string())?;
    }
    admin::set_policy(store, target, document).await
}

/// The `repository` commands: through the registry's own operations, as the ECR API.
async fn repository(
    config: &Config,
    store: Arc<SqlStore>,
    action: RepositoryAction,
) -> Result<(), String> {
    let parse = |name: &str| {
        name.parse::<RepoName>()
            .map_err(|e: NameError| e.to_string())
    };
    match action {
        RepositoryAction::Create {
            name,
            tag_mutability,
            scan_on_push,
        } => {
            // ECR's CreateRepository refuses shorter names, which OCI allows.
            if name.len() < MIN_REPOSITORY_NAME {
                return Err(format!(
                    "invalid repository name {name:?}: ECR names are at least \
                     {MIN_REPOSITORY_NAME} characters long"
                ));
            }
            let registry = open_registry(config, store).await?;
            let tag_mutability = TagMutability::parse(&tag_mutability)
                .filter(|m| matches!(m, TagMutability::Mutable | TagMutability::Immutable))
                .ok_or_else(|| {
                    format!("--tag-mutability {tag_mutability:?}: use MUTABLE or IMMUTABLE")
                })?;
            let settings = RepositorySettings {
                tag_mutability,
                scan_on_push,
                ..RepositorySettings::default()
            };
            registry
                .create_repository(&parse(&name)?, settings, &[])
                .await
                .map_err(|e| format!("{name}: {e}"))?;
            println!("created repository {name}");
        }
        RepositoryAction::List => {
            let registry = open_registry(config, store).await?;
            let mut after: Option<String> = None;
            loop {
                let (page, more) = registry
                    .describe_repositories(MAX_PAGE, after.as_deref())
                    .await
                    .map_err(|e| e.to_string())?;
                for repository in &page {
                    let created = housekeeping::rfc3339(repository.created_at);
                    println!(
                        "{}\t{created}\t{}",
                        repository.name,
                        repository.settings.tag_mutability.as_str()
                    );
                }
                match page.last() {
                    Some(last) if more => after = Some(last.name.clone()),
                    _ => break,
                }
            }
        }
        RepositoryAction::Delete { name, force } => {
            let registry = open_registry(config, store).await?;
            registry
                .delete_repository(&parse(&name)?, force)
                .await
                .map_err(|e| format!("{name}: {e}"))?;
            println!("deleted repository {name}");
        }
        RepositoryAction::SetPublic { name, public } => {
            admin::set_public(&*store, &parse(&name)?, public).await?;
        }
    }
    Ok(())
}

/// The registry over the configured stores, for commands that act as its API does.
async fn open_registry(config: &Config, store: Arc<SqlStore>) -> Result<Registry, String> {
    let blobs = wharf::open_blob_store(config)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Registry::new(blobs, store, config.into()))
}

fn policy_target(target: PolicyTargetArgs) -> Result<PolicyTarget, String> {
    match (target.user, target.repository, target.registry) {
        (Some(user), None, false) => Ok(PolicyTarget::User(user)),
        (None, Some(repo), false) => Ok(PolicyTarget::Repository(
            repo.parse().map_err(|e: NameError| e.to_string())?,
        )),
        (None, None, true) => Ok(PolicyTarget::Registry),
        _ => Err("name exactly one of --user, --repository and --registry".into()),
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install SIGTERM handler");
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down; in-flight requests finish first");
}

/// Writes the audit records a command's registry gathered (its own actions: expiries,
/// collections, scans), which a server writes every second.
async fn write_audit(registry: &wharf::registry::Registry) -> Result<(), String> {
    registry
        .flush_audit()
        .await
        .map(|_| ())
        .map_err(|e| format!("cannot write the audit records: {e}"))
}
