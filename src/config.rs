//! Settings, from (highest first) command-line flags, `WHARF_*` environment variables, an
//! optional TOML file, and built-in defaults.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;
use serde::Deserialize;

use crate::auth::AuthSettings;
use crate::registry;
use crate::secrets::SecretsKey;
use crate::storage::s3::S3Settings;

#[derive(Debug, Parser)]
#[command(
    name = "wharf",
    version,
    about = "A self-hosted OCI container registry"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub settings: SettingsArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the registry (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage users.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Manage access keys (id + secret) of users, for tools and automation.
    Key {
        #[command(subcommand)]
        action: KeyAction,
    },
    /// Set, show or remove the IAM-style policy of a user, a repository or the registry.
    Policy {
        #[command(subcommand)]
        action: PolicyAction,
    },
    /// Repository settings.
    Repository {
        #[command(subcommand)]
        action: RepositoryAction,
    },
    /// Lifecycle policies (in ECR's JSON) of repositories, their previews, and running them.
    Lifecycle {
        #[command(subcommand)]
        action: LifecycleAction,
    },
    /// Collect garbage now: remove the bytes of blobs no manifest references any more.
    Gc {
        /// Only report what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Blob storage against the metadata.
    Storage {
        #[command(subcommand)]
        action: StorageAction,
    },
    /// Registries Wharf talks to as a client: where replication copies images to.
    Remote {
        #[command(subcommand)]
        action: RemoteAction,
    },
    /// The replication configuration, in ECR's JSON (`PutReplicationConfiguration`).
    Replication {
        #[command(subcommand)]
        action: ReplicationAction,
    },
    /// Pull-through cache rules: repositories `<prefix>/<path>` that mirror `<path>` of an
    /// upstream registry, fetched on first pull.
    PullThrough {
        #[command(subcommand)]
        action: PullThroughAction,
    },
    /// The vulnerability database that scans match packages against: OSV advisories.
    Vulndb {
        #[command(subcommand)]
        action: VulndbAction,
    },
    /// Scan an image now and print its findings, most severe first; or queue new scans of
    /// every image scanned before.
    Scan {
        /// `REPOSITORY:TAG` or `REPOSITORY@sha256:…`.
        #[arg(required_unless_present = "rescan_all", conflicts_with = "rescan_all")]
        image: Option<String>,
        /// Print the findings as JSON, in `DescribeImageScanFindings`' shape.
        #[arg(long)]
        json: bool,
        /// Scan every image scanned before again (after a vulnerability database import),
        /// here, with progress.
        #[arg(long)]
        rescan_all: bool,
    },
    /// The audit trail, newest first: who did what, from where, and how it ended.
    Audit(AuditArgs),
    /// Webhooks: URLs that receive pushes, deletes, scans, replications and lifecycle
    /// expiries as they happen, in EventBridge's shape, signed.
    Webhook {
        #[command(subcommand)]
        action: WebhookAction,
    },
    /// Print a password for `docker login -u AWS <host>`, valid 12 hours by default.
    LoginPassword {
        /// The user the password logs in as.
        #[arg(long, default_value = "admin")]
        user: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum WebhookAction {
    /// Add a webhook; prints its signing secret, once.
    Add {
        #[arg(long)]
        url: String,
        /// Comma-separated: push, delete, scan, replication, lifecycle [default: all].
        #[arg(long)]
        events: Option<String>,
        /// Only repositories whose names start with this.
        #[arg(long)]
        repository: Option<String>,
    },
    /// List webhooks with how their deliveries went.
    List,
    /// Delete a webhook and what it has not received.
    Delete { id: String },
    /// Send a webhook a test event now.
    Test { id: String },
}

/// `wharf audit`'s filters.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// From this time on: RFC 3339, or a time ago (`15m`, `2h`, `7d`).
    #[arg(long)]
    pub since: Option<String>,
    /// Before this time, as `--since`.
    #[arg(long)]
    pub until: Option<String>,
    /// Only what this user did.
    #[arg(long)]
    pub user: Option<String>,
    /// Only what touched this repository.
    #[arg(long)]
    pub repository: Option<String>,
    /// Only records of this event (`PutImage`, `BatchGetImage`, `AccessDenied`, …).
    #[arg(long)]
    pub event: Option<String>,
    /// Only what failed or was refused.
    #[arg(long)]
    pub failed: bool,
    /// At most this many records.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Print CloudTrail-shaped JSON records, one per line.
    #[arg(long)]
    pub json: bool,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum VulndbAction {
    /// Import OSV advisories from zip files as osv.dev publishes them (`<ecosystem>/all.zip`)
    /// or directories of OSV JSON files. Each distribution found replaces its advisories of
    /// earlier imports; nothing changes if anything cannot be read.
    Import {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Then scan every image scanned before again, here (the `rescan_after_import`
        /// setting does this after every import).
        #[arg(long)]
        rescan: bool,
    },
    /// List the distributions with advisories, how many, and when they were imported.
    List,
}

#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Create a user; prints the password when it is generated.
    Create {
        name: String,
        /// The password [default: a generated one, printed once].
        #[arg(long, env = "WHARF_NEW_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    List,
    /// Delete a user and its access keys.
    Delete {
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyAction {
    /// Create an access key; prints its id and secret once.
    Create {
        #[arg(long)]
        user: String,
    },
    List {
        #[arg(long)]
        user: String,
    },
    Delete {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyAction {
    /// Set the policy from a JSON file (`-` for standard input).
    Set {
        #[command(flatten)]
        target: PolicyTargetArgs,
        file: PathBuf,
    },
    Get {
        #[command(flatten)]
        target: PolicyTargetArgs,
    },
    Delete {
        #[command(flatten)]
        target: PolicyTargetArgs,
    },
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct PolicyTargetArgs {
    /// A user's identity policy.
    #[arg(long)]
    pub user: Option<String>,
    /// A repository's resource policy.
    #[arg(long)]
    pub repository: Option<String>,
    /// The registry policy, a resource policy applied to every repository (ECR's
    /// PutRegistryPolicy); here even one that locks everyone out can be replaced or removed.
    #[arg(long)]
    pub registry: bool,
}

#[derive(Debug, Subcommand)]
pub enum RepositoryAction {
    /// Create an empty repository (ECR's CreateRepository).
    Create {
        name: String,
        /// MUTABLE or IMMUTABLE (the exclusion variants are set through the ECR API).
        #[arg(long, default_value = "MUTABLE")]
        tag_mutability: String,
        /// Mark new images for scanning when they are pushed.
        #[arg(long)]
        scan_on_push: bool,
    },
    /// List repositories with their creation time and tag mutability.
    List,
    /// Delete a repository; one that holds images only with --force.
    Delete {
        name: String,
        #[arg(long)]
        force: bool,
    },
    /// Make a repository public (anyone may pull) or private again.
    SetPublic {
        name: String,
        #[arg(action = clap::ArgAction::Set)]
        public: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum LifecycleAction {
    /// Set a repository's policy from a JSON file (`-` for standard input).
    Set {
        repository: String,
        file: PathBuf,
    },
    Get {
        repository: String,
    },
    Delete {
        repository: String,
    },
    /// Show what a policy (the file's, else the repository's own) would expire now.
    Preview {
        repository: String,
        file: Option<PathBuf>,
    },
    /// Apply every repository's policy now, once.
    Run,
}

#[derive(Debug, Subcommand)]
pub enum ReplicationAction {
    /// Set it from a JSON file (`-` for standard input): `{"rules": [...]}`, every
    /// destination a remote (`wharf remote add`).
    Set { file: PathBuf },
    /// Print it.
    Get,
    /// Queue copies of the images that were pushed before the rules that match them (a
    /// running server makes them); what was queued or copied before is left alone.
    Backfill {
        /// Only repositories whose names start with this.
        #[arg(long)]
        repository: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PullThroughAction {
    /// Add a rule, after checking that the upstream answers as a registry and accepts the
    /// credentials.
    Create {
        /// Repositories `<prefix>/<path>` cache `<path>` of the upstream.
        #[arg(long)]
        prefix: String,
        /// `https://host[:port]` (`https://` if left out), or `http://` for a registry without
        /// TLS; for Docker Hub, `registry-1.docker.io`.
        #[arg(long)]
        upstream: String,
        #[command(flatten)]
        login: RemoteLogin,
    },
    /// List rules (never their passwords).
    List,
    /// Delete a rule (and its credential); what it cached stays.
    Delete {
        #[arg(long)]
        prefix: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RemoteAction {
    /// Add a remote registry (or replace the one with the same id and region), after
    /// checking that it answers as a registry and accepts the credentials.
    Add {
        #[command(flatten)]
        name: RemoteName,
        /// `https://host[:port]` (or `http://` for a registry without TLS).
        #[arg(long)]
        url: String,
        #[command(flatten)]
        login: RemoteLogin,
    },
    /// List remotes (never their passwords).
    List,
    /// Forget a remote.
    Delete {
        #[command(flatten)]
        name: RemoteName,
    },
}

/// How Wharf logs in to another registry, checked before it is stored.
#[derive(Debug, Args)]
pub struct RemoteLogin {
    /// The user to log in as; the password (or token) is read from standard input.
    #[arg(long, requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the password for --username from standard input.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// Store it without checking that the registry answers and takes the credentials (say,
    /// while it is down).
    #[arg(long)]
    pub skip_check: bool,
}

/// A remote as ECR names a replication destination.
#[derive(Debug, Args)]
pub struct RemoteName {
    /// Twelve digits.
    #[arg(long)]
    pub registry_id: String,
    /// Lowercase letters, digits and dashes, as AWS regions are named.
    #[arg(long)]
    pub region: String,
}

#[derive(Debug, Subcommand)]
pub enum StorageAction {
    /// Compare what the metadata records with what storage holds: blobs missing, bytes no
    /// row records (orphans), staged parts of uploads that no longer exist, bytes per
    /// repository.
    Check {
        /// Remove orphans and stale staged parts older than the grace period (--gc-grace).
        #[arg(long)]
        repair: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Every setting is optional here so that the TOML file can supply what flags and
/// environment leave out.
#[derive(Debug, Default, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsArgs {
    /// TOML file with any of the settings below (keys as the flag names, with `_`).
    #[arg(long, env = "WHARF_CONFIG", global = true)]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Address to listen on; port 0 picks a free port [default: 127.0.0.1:5000].
    #[arg(long, env = "WHARF_LISTEN", global = true)]
    pub listen: Option<String>,

    /// Directory for the embedded database and filesystem blobs [default: ./wharf-data].
    #[arg(long, env = "WHARF_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,

    /// Metadata database: sqlite://FILE or postgres://… [default: sqlite://<data-dir>/wharf.db].
    #[arg(long, env = "WHARF_DATABASE_URL", global = true)]
    pub database_url: Option<String>,

    /// Seconds an upload may sit idle before it is aborted and its bytes freed [default: 86400].
    #[arg(long, env = "WHARF_UPLOAD_IDLE_TIMEOUT", global = true)]
    pub upload_idle_timeout: Option<u64>,

    /// Seconds between lifecycle policy evaluations, run by one node at a time; 0 turns them
    /// off [default: 900].
    #[arg(long, env = "WHARF_LIFECYCLE_INTERVAL", global = true)]
    pub lifecycle_interval: Option<u64>,

    /// Seconds between garbage collections, run by one node at a time; 0 turns them off
    /// [default: 3600].
    #[arg(long, env = "WHARF_GC_INTERVAL", global = true)]
    pub gc_interval: Option<u64>,

    /// Seconds between looks at the replication queue, by one node at a time: the most a
    /// push waits before its copies start; 0 turns replication off [default: 2].
    #[arg(long, env = "WHARF_REPLICATION_INTERVAL", global = true)]
    pub replication_interval: Option<u64>,

    /// Seconds between looks at the scan queue, by one node at a time: the most a scan waits
    /// before it starts; 0 leaves scans queued [default: 2].
    #[arg(long, env = "WHARF_SCAN_INTERVAL", global = true)]
    pub scan_interval: Option<u64>,

    /// Seconds between looks at the webhook delivery queue, by one node at a time: the most
    /// an event waits before it is sent; 0 leaves deliveries queued [default: 2].
    #[arg(long, env = "WHARF_WEBHOOK_INTERVAL", global = true)]
    pub webhook_interval: Option<u64>,

    /// Whether `wharf vulndb import` always scans again every image scanned before, as with
    /// its `--rescan` [default: false].
    #[arg(long, env = "WHARF_RESCAN_AFTER_IMPORT", global = true)]
    pub rescan_after_import: Option<bool>,

    /// Seconds a tag cached from a pull-through upstream is served before a pull compares it
    /// with the upstream again (a HEAD); pulls by digest never go upstream again [default:
    /// 21600].
    #[arg(long, env = "WHARF_PULL_THROUGH_TTL", global = true)]
    pub pull_through_ttl: Option<u64>,

    /// Seconds a blob stays safe from garbage collection after it was uploaded, linked or last
    /// relied on (a manifest referencing it was deleted, a client skipped its upload) [default:
    /// 3600].
    #[arg(long, env = "WHARF_GC_GRACE", global = true)]
    pub gc_grace: Option<u64>,

    /// Log filter, in tracing's EnvFilter syntax [default: info].
    #[arg(long, env = "WHARF_LOG", global = true)]
    pub log: Option<String>,

    /// Log lines as `text` (coloured only on a terminal) or `json`, one object per line
    /// [default: text].
    #[arg(long, env = "WHARF_LOG_FORMAT", global = true)]
    pub log_format: Option<LogFormat>,

    /// Days audit records are kept [default: 90].
    #[arg(long, env = "WHARF_AUDIT_RETENTION", global = true)]
    pub audit_retention: Option<u64>,

    /// Serve `/metrics` to anyone; else only to `admin` when auth is on [default: false].
    #[arg(long, env = "WHARF_METRICS_PUBLIC", global = true)]
    pub metrics_public: Option<bool>,

    /// Where blobs live: `fs` (under the data directory) or `s3` [default: fs].
    #[arg(long, env = "WHARF_STORAGE", global = true)]
    pub storage: Option<StorageKind>,

    /// S3 endpoint URL, for S3-compatible servers (Garage, MinIO); unset for AWS.
    #[arg(long, env = "WHARF_S3_ENDPOINT", global = true)]
    pub s3_endpoint: Option<String>,

    /// S3 region [default: us-east-1].
    #[arg(long, env = "WHARF_S3_REGION", global = true)]
    pub s3_region: Option<String>,

    /// S3 bucket (required with --storage s3).
    #[arg(long, env = "WHARF_S3_BUCKET", global = true)]
    pub s3_bucket: Option<String>,

    /// Key prefix for every object Wharf writes, e.g. `registry/` [default: none].
    #[arg(long, env = "WHARF_S3_PREFIX", global = true)]
    pub s3_prefix: Option<String>,

    /// Path-style addressing (`endpoint/bucket/key`), which most S3-compatible servers need
    /// [default: false].
    #[arg(long, env = "WHARF_S3_PATH_STYLE", global = true)]
    pub s3_path_style: Option<bool>,

    /// Server-side encryption of every object written: `AES256` or `aws:kms` [default: none].
    #[arg(long, env = "WHARF_S3_ENCRYPTION", global = true)]
    pub s3_encryption: Option<String>,

    /// KMS key id for `aws:kms` encryption [default: the bucket's default key].
    #[arg(long, env = "WHARF_S3_KMS_KEY_ID", global = true)]
    pub s3_kms_key_id: Option<String>,

    /// Answer blob GETs with a 307 to a presigned S3 URL instead of streaming through Wharf
    /// [default: false].
    #[arg(long, env = "WHARF_S3_REDIRECT", global = true)]
    pub s3_redirect: Option<bool>,

    /// File holding a 32-byte key in base64 (`openssl rand -base64 32`) that seals the passwords
    /// kept for remotes and pull-through upstreams; the same on every node [default: none,
    /// stored as given].
    #[arg(long, env = "WHARF_SECRETS_KEY_FILE", global = true)]
    pub secrets_key_file: Option<PathBuf>,

    /// Require credentials: Docker token authentication and policies [default: false].
    #[arg(long, env = "WHARF_AUTH", global = true)]
    pub auth: Option<bool>,

    /// Password of the `admin` user created on first start [default: generated, logged once].
    #[arg(
        long,
        env = "WHARF_ADMIN_PASSWORD",
        global = true,
        hide_env_values = true
    )]
    pub admin_password: Option<String>,

    /// The `service` of token challenges and the audience of tokens [default: wharf].
    #[arg(long, env = "WHARF_TOKEN_SERVICE", global = true)]
    pub token_service: Option<String>,

    /// The issuer of tokens [default: wharf].
    #[arg(long, env = "WHARF_TOKEN_ISSUER", global = true)]
    pub token_issuer: Option<String>,

    /// P-256 private key (PKCS#8 PEM) that signs tokens [default: generated once and kept
    /// in the database, shared by every node].
    #[arg(long, env = "WHARF_SIGNING_KEY", global = true)]
    pub signing_key: Option<PathBuf>,

    /// Seconds a Bearer token from /token is valid [default: 300].
    #[arg(long, env = "WHARF_TOKEN_LIFETIME", global = true)]
    pub token_lifetime: Option<u64>,

    /// Seconds a login password is valid [default: 43200, 12 hours].
    #[arg(long, env = "WHARF_LOGIN_PASSWORD_LIFETIME", global = true)]
    pub login_password_lifetime: Option<u64>,

    /// The URL clients reach this registry at, for the token realm and ECR's repository URIs
    /// [default: from the request's Host header, or X-Forwarded-Proto/-Host from a trusted
    /// proxy].
    #[arg(long, env = "WHARF_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// The registry's 12-digit id, as in ECR's ARNs and `registryId` fields [default: generated
    /// once and kept in the database, shared by every node].
    #[arg(long, env = "WHARF_REGISTRY_ID", global = true)]
    pub registry_id: Option<String>,

    /// The region the ECR API reports and ARNs carry [default: us-east-1].
    #[arg(long, env = "WHARF_REGION", global = true)]
    pub region: Option<String>,

    /// Whether a /v2 push into a repository that does not exist creates it; when false such a
    /// push answers 404 NAME_UNKNOWN, as ECR does [default: true].
    #[arg(long, env = "WHARF_CREATE_ON_PUSH", global = true)]
    pub create_on_push: Option<bool>,

    /// Comma-separated CIDRs of the load balancers and proxies in front of Wharf: only from
    /// these peers are X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host believed
    /// [default: none].
    #[arg(long, env = "WHARF_TRUSTED_PROXIES", global = true)]
    pub trusted_proxies: Option<String>,
}

/// Access control settings, present when auth is on.
#[derive(Clone)]
pub struct AuthConfig {
    pub settings: AuthSettings,
    pub admin_password: Option<String>,
    pub signing_key: Option<PathBuf>,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("settings", &self.settings)
            .field(
                "admin_password",
                &self.admin_password.as_ref().map(|_| "<redacted>"),
            )
            .field("signing_key", &self.signing_key)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    Fs,
    S3,
}

/// How long a presigned blob URL stays valid.
const REDIRECT_VALIDITY: Duration = Duration::from_secs(15 * 60);

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub upload_idle_timeout: Duration,
    /// Zero: no automatic lifecycle runs.
    pub lifecycle_interval: Duration,
    /// Zero: no automatic collections.
    pub gc_interval: Duration,
    /// Zero: replication queued but never worked.
    pub replication_interval: Duration,
    /// Zero: scans queued but never run.
    pub scan_interval: Duration,
    /// Zero: webhook deliveries queued but never sent.
    pub webhook_interval: Duration,
    pub gc_grace: Duration,
    pub audit_retention: Duration,
    pub pull_through_ttl: Duration,
    /// Seals the passwords kept for other registries; `None` stores them as given.
    pub secrets_key: Option<Arc<SecretsKey>>,
    pub log: String,
    pub log_format: LogFormat,
    /// `/metrics` is open to anyone, not only to `admin` (when auth is on).
    pub metrics_public: bool,
    /// `None` for blobs on the filesystem under `data_dir`.
    pub s3: Option<S3Settings>,
    /// `None` when auth is off (anyone may push and pull).
    pub auth: Option<AuthConfig>,
    /// Peers whose X-Forwarded-* headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Where clients reach the registry; `None` to take it from each request.
    pub public_url: Option<String>,
    /// `None` to use the one in the database (generated on the first start).
    pub registry_id: Option<String>,
    pub region: String,
    pub create_on_push: bool,
    /// `wharf vulndb import` scans again what was scanned before, as with `--rescan`.
    pub rescan_after_import: bool,
}

impl Config {
    /// Merges flags and environment over the TOML file (if any) over defaults.
    pub fn load(args: SettingsArgs) -> Result<Config, String> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => SettingsArgs::default(),
        };
        let data_dir = args
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("wharf-data"));
        let database_url = args
            .database_url
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("wharf.db").display()));
        let trusted_proxies = parse_cidrs(
            args.trusted_proxies
                .as_deref()
                .or(file.trusted_proxies.as_deref()),
        )?;
        Ok(Config {
            trusted_proxies,
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or_else(|| "127.0.0.1:5000".into()),
            database_url,
            upload_idle_timeout: Duration::from_secs(
                args.upload_idle_timeout
                    .or(file.upload_idle_timeout)
                    .unwrap_or(24 * 60 * 60),
            ),
            lifecycle_interval: Duration::from_secs(
                args.lifecycle_interval
                    .or(file.lifecycle_interval)
                    .unwrap_or(15 * 60),
            ),
            gc_interval: Duration::from_secs(
                args.gc_interval.or(file.gc_interval).unwrap_or(60 * 60),
            ),
            replication_interval: Duration::from_secs(
                args.replication_interval
                    .or(file.replication_interval)
                    .unwrap_or(2),
            ),
            scan_interval: Duration::from_secs(
                args.scan_interval.or(file.scan_interval).unwrap_or(2),
            ),
            webhook_interval: Duration::from_secs(
                args.webhook_interval.or(file.webhook_interval).unwrap_or(2),
            ),
            gc_grace: Duration::from_secs(args.gc_grace.or(file.gc_grace).unwrap_or(60 * 60)),
            audit_retention: Duration::from_secs(
                86_400 * args.audit_retention.or(file.audit_retention).unwrap_or(90),
            ),
            secrets_key: args
                .secrets_key_file
                .or(file.secrets_key_file)
                .map(|path| SecretsKey::from_file(&path).map(Arc::new))
                .transpose()?,
            pull_through_ttl: Duration::from_secs(
                args.pull_through_ttl
                    .or(file.pull_through_ttl)
                    .unwrap_or(6 * 60 * 60),
            ),
            log: args.log.or(file.log).unwrap_or_else(|| "info".into()),
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            metrics_public: args.metrics_public.or(file.metrics_public).unwrap_or(false),
            auth: args
                .auth
                .or(file.auth)
                .unwrap_or(false)
                .then(|| AuthConfig {
                    settings: AuthSettings {
                        issuer: args
                            .token_issuer
                            .clone()
                            .or(file.token_issuer.clone())
                            .unwrap_or_else(|| "wharf".into()),
                        service: args
                            .token_service
                            .clone()
                            .or(file.token_service.clone())
                            .unwrap_or_else(|| "wharf".into()),
                        token_lifetime: Duration::from_secs(
                            args.token_lifetime.or(file.token_lifetime).unwrap_or(300),
                        ),
                        login_password_lifetime: Duration::from_secs(
                            args.login_password_lifetime
                                .or(file.login_password_lifetime)
                                .unwrap_or(12 * 60 * 60),
                        ),
                    },
                    admin_password: args.admin_password.clone().or(file.admin_password.clone()),
                    signing_key: args.signing_key.clone().or(file.signing_key.clone()),
                }),
            public_url: args.public_url.or(file.public_url),
            registry_id: match args.registry_id.or(file.registry_id) {
                Some(id) if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) => Some(id),
                Some(id) => return Err(format!("--registry-id {id:?} is not twelve digits")),
                None => None,
            },
            region: args
                .region
                .or(file.region)
                .unwrap_or_else(|| "us-east-1".into()),
            create_on_push: args.create_on_push.or(file.create_on_push).unwrap_or(true),
            rescan_after_import: args
                .rescan_after_import
                .or(file.rescan_after_import)
                .unwrap_or(false),
            s3: match args.storage.or(file.storage).unwrap_or(StorageKind::Fs) {
                StorageKind::Fs => None,
                StorageKind::S3 => Some(S3Settings {
                    endpoint: args.s3_endpoint.or(file.s3_endpoint),
                    region: args
                        .s3_region
                        .or(file.s3_region)
                        .unwrap_or_else(|| "us-east-1".into()),
                    bucket: args
                        .s3_bucket
                        .or(file.s3_bucket)
                        .ok_or("--s3-bucket (WHARF_S3_BUCKET) is required with --storage s3")?,
                    prefix: args.s3_prefix.or(file.s3_prefix).unwrap_or_default(),
                    path_style: args.s3_path_style.or(file.s3_path_style).unwrap_or(false),
                    encryption: args.s3_encryption.or(file.s3_encryption),
                    kms_key_id: args.s3_kms_key_id.or(file.s3_kms_key_id),
                    redirect: args
                        .s3_redirect
                        .or(file.s3_redirect)
                        .unwrap_or(false)
                        .then_some(REDIRECT_VALIDITY),
                }),
            },
            data_dir,
        })
    }

    /// Settings for a registry under `dir`, listening on a free loopback port.
    pub fn for_dir(dir: &Path) -> Config {
        Config::load(SettingsArgs {
            listen: Some("127.0.0.1:0".into()),
            data_dir: Some(dir.to_path_buf()),
            ..SettingsArgs::default()
        })
        .expect("no config file to read")
    }
}

impl From<&Config> for registry::Settings {
    fn from(config: &Config) -> Self {
        registry::Settings {
            upload_idle_timeout: config.upload_idle_timeout,
            create_on_push: config.create_on_push,
            lifecycle_interval: config.lifecycle_interval,
            gc_interval: config.gc_interval,
            replication_interval: config.replication_interval,
            scan_interval: config.scan_interval,
            webhook_interval: config.webhook_interval,
            gc_grace: config.gc_grace,
            audit_retention: config.audit_retention,
            pull_through_ttl: config.pull_through_ttl,
            secrets_key: config.secrets_key.clone(),
        }
    }
}

/// `10.0.0.0/8, 192.0.2.7` (a bare address is a single host).
fn parse_cidrs(list: Option<&str>) -> Result<Vec<IpNet>, String> {
    let entries = list.unwrap_or_default().split(',').map(str::trim);
    entries
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| format!("--trusted-proxies: {entry:?} is not a CIDR or an address"))
        })
        .collect()
}

fn read_file(path: &Path) -> Result<SettingsArgs, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("invalid config file {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("wharf.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:6000\"\ndata_dir = \"/srv/wharf\"\n",
        )
        .unwrap();
        let config = Config::load(SettingsArgs {
            config: Some(file.clone()),
            listen: Some("127.0.0.1:7000".into()),
            ..SettingsArgs::default()
        })
        .unwrap();
        assert_eq!(config.listen, "127.0.0.1:7000");
        assert_eq!(config.data_dir, PathBuf::from("/srv/wharf"));
        assert_eq!(config.database_url, "sqlite:///srv/wharf/wharf.db");
        assert_eq!(config.upload_idle_timeout, Duration::from_secs(86400));
        assert!(config.trusted_proxies.is_empty());

        std::fs::write(&file, "lissen = 1\n").unwrap();
        let unknown = Config::load(SettingsArgs {
            config: Some(file),
            ..SettingsArgs::default()
        });
        assert!(unknown.unwrap_err().contains("lissen"));
    }

    #[test]
    fn trusted_proxies_are_cidrs_or_addresses() {
        let cidrs = parse_cidrs(Some("10.0.0.0/8, 192.0.2.7,fd00::/8")).unwrap();
        let shown: Vec<String> = cidrs.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["10.0.0.0/8", "192.0.2.7/32", "fd00::/8"]);
        assert!(parse_cidrs(Some("10.0.0.0/33")).is_err());
        assert!(parse_cidrs(Some("proxy.internal")).is_err());
    }
}
