//! The metadata stores over SQL, one implementation for SQLite (embedded default) and Postgres
//! (production). Queries are written once in the dialect both accept (`$n` placeholders,
//! `ON CONFLICT`, `RETURNING`); only the schema differs, in `migrations/<backend>/`, and the row
//! locks only Postgres needs ([`SqlStore::locking`]).
//!
//! On SQLite, transactions run on one writing connection and begin `IMMEDIATE`
//! ([`SqlStore::begin`]); reads outside a transaction go to `reads`, connections of their own.
//! On Postgres both are one pool.
//!
//! One file per aggregate: `uploads`, `content` (blob links, manifests, tags), `repositories`,
//! `images`, `identity`, `lifecycle`, `collection` (garbage collection, leases).
//!
//! Lock order on Postgres: every transaction that changes a repository's content first takes
//! the repository's row `FOR SHARE` ([`SqlStore::lock_repository`]); deleting a repository
//! takes it `FOR UPDATE` first. So a repository delete and a push, tag or delete in it wait
//! for each other instead of deadlocking on the rows in between.

use std::str::FromStr;
use std::time::Duration;

mod audit;
mod collection;
mod content;
mod health;
mod identity;
mod images;
mod lifecycle;
mod pull_through;
mod remotes;
mod replication;
mod repositories;
mod scans;
mod uploads;
mod webhooks;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

use super::{MetaError, MetaResult, Millis};

/// Which SQL backend a database URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Result<Backend, String> {
        match url.split_once(':').map(|(scheme, _)| scheme) {
            Some("sqlite") => Ok(Backend::Sqlite),
            Some("postgres" | "postgresql") => Ok(Backend::Postgres),
            _ => Err(format!(
                "unsupported database URL {url:?}: use sqlite://… or postgres://…"
            )),
        }
    }
}

pub struct SqlStore {
    /// Every transaction and every write.
    pool: AnyPool,
    /// Reads outside a transaction. The same pool on Postgres.
    reads: AnyPool,
    backend: Backend,
}

impl From<sqlx::Error> for MetaError {
    fn from(e: sqlx::Error) -> Self {
        if is_transient(&e) {
            MetaError::Unavailable(e.to_string())
        } else {
            MetaError::Database(e.to_string())
        }
    }
}

/// Whether retrying may help: the connection failed or none was free in time, the server is
/// shutting down or out of connections, or the transaction lost a conflict (Postgres's
/// classes 08, 53 and 57P, serialization failures and deadlocks; SQLite's BUSY and LOCKED).
fn is_transient(e: &sqlx::Error) -> bool {
    use sqlx::Error as E;
    match e {
        E::Io(_) | E::Tls(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed => true,
        E::Database(db) => {
            let code = db.code().unwrap_or_default();
            if db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some()
            {
                ["08", "53", "57P"]
                    .iter()
                    .any(|class| code.starts_with(class))
                    || code == "40001"
                    || code == "40P01"
            } else {
                // SQLite reports its extended result code; the low byte is the primary one.
                code.parse::<u32>()
                    .is_ok_and(|code| matches!(code & 0xff, 5 | 6))
            }
        }
        _ => false,
    }
}

impl From<sqlx::migrate::MigrateError> for MetaError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        MetaError::Database(format!("migration failed: {e}"))
    }
}

/// How long a request waits for a database connection before it is told to retry: long
/// enough to ride out a burst, short enough that an unreachable database answers 503 quickly
/// rather than holding every client.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// Reading connections to a SQLite database: enough to keep both cores busy while others wait
/// on the disk.
const SQLITE_READERS: u32 = 4;

impl SqlStore {
    /// Connects to `url` and applies pending migrations. A SQLite file is created if missing.
    pub async fn connect(url: &str) -> MetaResult<SqlStore> {
        let store = SqlStore::connect_without_migrating(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    pub async fn connect_without_migrating(url: &str) -> MetaResult<SqlStore> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url).map_err(MetaError::Database)?;
        let options = || AnyPoolOptions::new().acquire_timeout(ACQUIRE_TIMEOUT);
        let (pool, reads) = match backend {
            Backend::Sqlite => {
                let url = if url.contains('?') {
                    url.to_string()
                } else {
                    format!("{url}?mode=rwc")
                };
                let url = AnyConnectOptions::from_str(&url)?;
                // A connection to a local file does not go stale, so it is not pinged before
                // each use (a round trip to SQLite's worker thread, as long as the query).
                let options = || options().test_before_acquire(false);
                // One writing connection: SQLite has one writer anyway, and a single writer can
                // never deadlock upgrading a read transaction to a write. Reads outside a
                // transaction take connections of their own, which WAL lets run beside the
                // writer's commits instead of queueing behind them.
                let pool = options()
                    .max_connections(1)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                            )
                            .await
                            .map(|_| ())
                        })
                    })
                    .connect_with(url.clone())
                    .await?;
                let reads = options()
                    .max_connections(SQLITE_READERS)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute("PRAGMA query_only = ON; PRAGMA busy_timeout = 10000;")
                                .await
                                .map(|_| ())
                        })
                    })
                    .connect_with(url)
                    .await?;
                (pool, reads)
            }
            Backend::Postgres => {
                let pool = options().max_connections(16).connect(url).await?;
                (pool.clone(), pool)
            }
        };
        Ok(SqlStore {
            pool,
            reads,
            backend,
        })
    }

    /// Starts a transaction, which may write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), waiting out another process's writes through the busy timeout: a
    /// deferred transaction that has read and then finds another process committed meanwhile
    /// fails at its first write without waiting (`SQLITE_BUSY_SNAPSHOT`).
    async fn begin(&self) -> MetaResult<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// `query` followed by a row-locking clause (`FOR SHARE`, `FOR UPDATE`) on Postgres. SQLite
    /// needs none: its one connection runs one transaction at a time.
    fn locking(&self, query: &str, clause: &'static str) -> sqlx::AssertSqlSafe<String> {
        sqlx::AssertSqlSafe(match self.backend {
            Backend::Sqlite => query.to_string(),
            Backend::Postgres => format!("{query} {clause}"),
        })
    }

    /// A setting kept in a column of the registry's one row: a configuration in ECR's JSON.
    async fn registry_setting(&self, column: &'static str) -> MetaResult<Option<String>> {
        let statement = format!("SELECT {column} FROM registry WHERE id = 1");
        let row = sqlx::query(sqlx::AssertSqlSafe(statement))
            .fetch_optional(&self.reads)
            .await?;
        Ok(match row {
            Some(row) => row.try_get(column)?,
            None => None,
        })
    }

    async fn put_registry_setting(&self, column: &'static str, value: &str) -> MetaResult<()> {
        let statement = format!("UPDATE registry SET {column} = $1 WHERE id = 1");
        let updated = sqlx::query(sqlx::AssertSqlSafe(statement))
            .bind(value)
            .execute(&self.pool)
            .await?;
        if updated.rows_affected() == 0 {
            // Made by the first server to start (or `registry_identity`): never lose a setting.
            return Err(MetaError::Database(
                "the registry's row is missing: start the server once first".into(),
            ));
        }
        Ok(())
    }

    /// Applies pending migrations. On Postgres sqlx holds an advisory lock meanwhile, so
    /// nodes starting together do not race.
    pub async fn migrate(&self) -> MetaResult<()> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn get_u64(row: &AnyRow, column: &str) -> MetaResult<u64> {
    let value: i64 = row.try_get(column)?;
    u64::try_from(value).map_err(|_| MetaError::Corrupt(format!("{column} = {value}")))
}

const ENSURE_REPOSITORY: &str =
    "INSERT INTO repositories (name, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING";

impl SqlStore {
    /// Creates the repository if it does not exist, then locks it as [`Self::lock_repository`]
    /// does. `None` if it was deleted in between.
    async fn ensure_repository(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        repository: &str,
        now: Millis,
    ) -> MetaResult<Option<crate::metadata::Repository>> {
        if let Some(existing) = self.lock_repository(tx, repository).await? {
            return Ok(Some(existing));
        }
        sqlx::query(ENSURE_REPOSITORY)
            .bind(repository)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        self.lock_repository(tx, repository).await
    }
}

/// Links the stored blob `digest` to `repository` (created and locked by the caller), or, if it
/// is linked already, marks the link as relied on now.
async fn link_blob(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    repository: &str,
    digest: &str,
    now: Millis,
) -> MetaResult<()> {
    sqlx::query(
        "INSERT INTO repository_blobs (repository, digest, linked_at) VALUES ($1, $2, $3) \
         ON CONFLICT (repository, digest) DO UPDATE SET linked_at = excluded.linked_at",
    )
    .bind(repository)
    .bind(digest)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// How many rows one batched statement reads or writes: well under the bind limits of both
/// databases.
const BATCH: usize = 500;

/// `$first, $first+1, …`: `count` numbered placeholders.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

const LOG_EVENTS: &str = "INSERT INTO events \
     (at, action, repository, digest, tag, previous_digest, detail) VALUES";

/// One row of the append-only event log.
struct Event<'a> {
    action: &'a str,
    repository: &'a str,
    digest: Option<&'a str>,
    tag: Option<&'a str>,
    previous_digest: Option<&'a str>,
    /// Why the registry did it, for its own actions; for a `PULL`, how many pulls it stands for.
    detail: Option<&'a str>,
}

impl<'a> Event<'a> {
    /// An event about one manifest or blob, with no tag.
    fn of(action: &'a str, repository: &'a str, digest: &'a str) -> Event<'a> {
        Event {
            digest: Some(digest),
            ..Event::repository(action, repository)
        }
    }

    /// An event about a repository as a whole.
    fn repository(action: &'a str, repository: &'a str) -> Event<'a> {
        Event {
            action,
            repository,
            digest: None,
            tag: None,
            previous_digest: None,
            detail: None,
        }
    }

    /// An event about one tag of a manifest.
    fn tag(action: &'a str, repository: &'a str, digest: &'a str, tag: &'a str) -> Event<'a> {
        Event {
            tag: Some(tag),
            ..Event::of(action, repository, digest)
        }
    }
}

async fn log_event(
    connection: &mut sqlx::AnyConnection,
    now: Millis,
    event: Event<'_>,
) -> MetaResult<()> {
    log_events(connection, &[(now, event)]).await
}

/// Appends `events`, each with its time, a few hundred per statement.
async fn log_events(
    connection: &mut sqlx::AnyConnection,
    events: &[(Millis, Event<'_>)],
) -> MetaResult<()> {
    const COLUMNS: usize = 7;
    for batch in events.chunks(BATCH) {
        let rows: Vec<String> = (0..batch.len())
            .map(|i| format!("({})", placeholders(i * COLUMNS + 1, COLUMNS)))
            .collect();
        let statement = format!("{LOG_EVENTS} {}", rows.join(", "));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(statement));
        for (at, event) in batch {
            query = query
                .bind(*at)
                .bind(event.action)
                .bind(event.repository)
                .bind(event.digest)
                .bind(event.tag)
                .bind(event.previous_digest)
                .bind(event.detail);
        }
        query.execute(&mut *connection).await?;
    }
    Ok(())
}

fn names(rows: &[AnyRow], column: &str) -> MetaResult<Vec<String>> {
    rows.iter().map(|row| Ok(row.try_get(column)?)).collect()
}
