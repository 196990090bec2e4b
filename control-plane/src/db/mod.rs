//! One pool for SQLite or PostgreSQL, chosen by URL, and the queries of each
//! table in a module of its own (`keys`, `accounts`, `models`, `providers`,
//! `usage`), each the one place that decodes its columns. Queries are written
//! once with `$n` placeholders (which both backends take) and integer columns
//! only; what differs between the two backends is here and in `migrations/`.

pub mod accounts;
pub mod groups;
pub mod keys;
pub mod model_list;
pub mod models;
pub mod operators;
pub mod providers;
pub mod rollup;
mod rollup_sql;
pub mod rollup_writer;
pub mod sessions;
pub mod usage;
pub mod usage_commit;
pub mod usage_filter;
mod usage_insert;
pub mod usage_report;
pub mod usage_streams;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor};
use tokio::sync::Notify;

use crate::error::{ApiError, ApiResult};
use crate::pages::PageQuery;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Db {
    pub pool: AnyPool,
    /// Ingest's and the rollup writer's connections: on SQLite one of its
    /// own (see `open`), on PostgreSQL the pool.
    pub writer: AnyPool,
    pub backend: Backend,
    /// Wakes the rollup's writer (`rollup_writer`): records were queued.
    pub rollup_due: Arc<Notify>,
    /// Ingest's batches waiting for their group's commit (`usage_commit`).
    pub commits: Arc<usage_commit::Queue>,
}

/// The PostgreSQL channel of config changes (`NOTIFY tollgate_config`).
pub const CONFIG_CHANNEL: &str = "tollgate_config";

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

impl Db {
    /// Opens the database (creating a SQLite file if needed) and migrates it.
    pub async fn open(url: Option<&str>, data_dir: &Path) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let url = match url {
            Some(url) => url.to_string(),
            None => format!(
                "sqlite://{}?mode=rwc",
                data_dir.join("tollgate.db").display()
            ),
        };
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            anyhow::bail!("TOLLGATE_DATABASE_URL must start with sqlite: or postgres:");
        };
        let options = AnyConnectOptions::from_str(&url).context("parsing the database URL")?;
        let (options, url) = (&options, &url);
        let connect = |connections: u32| async move {
            let mut pool = AnyPoolOptions::new()
                .acquire_timeout(Duration::from_secs(10))
                .max_connections(connections);
            if backend == Backend::Sqlite {
                // WAL lets readers run beside the one writer; the busy timeout
                // makes a second writer wait instead of failing with
                // SQLITE_BUSY. Pages are read through a memory map (256 MiB),
                // and 16 MiB are cached per connection.
                pool = pool.after_connect(|conn, _| {
                    Box::pin(async move {
                        conn.execute("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA mmap_size = 268435456; PRAGMA cache_size = -16384;")
                            .await?;
                        Ok(())
                    })
                });
            }
            pool.connect_with(options.clone())
                .await
                .with_context(|| format!("connecting to {}", redact(url)))
        };
        let pool = match backend {
            Backend::Sqlite => connect(8).await?,
            Backend::Postgres => connect(16).await?,
        };
        // SQLite writes one transaction at a time whatever the pool: ingest
        // and the rollup's writer share one connection, waiting their turn
        // in the pool instead of in SQLite's busy handler, and that
        // connection's page cache stays warm (SQLite drops a connection's
        // whole cache when another connection wrote since its last
        // transaction; with the batches spread over 8 connections, a third
        // of ingest's CPU was the kernel reading pages back).
        let writer = match backend {
            Backend::Sqlite => connect(1).await?,
            Backend::Postgres => pool.clone(),
        };
        let migrator = match backend {
            Backend::Sqlite => &SQLITE,
            Backend::Postgres => &POSTGRES,
        };
        migrator.run(&pool).await.context("running migrations")?;
        Ok(Db {
            pool,
            writer,
            backend,
            rollup_due: Arc::new(Notify::new()),
            commits: Arc::default(),
        })
    }

    /// On PostgreSQL, tells the other control planes on the same database
    /// that the config changed (they `LISTEN` on [`CONFIG_CHANNEL`]); on
    /// SQLite there are none.
    pub async fn notify_config_changed(&self) -> Result<(), sqlx::Error> {
        if self.backend == Backend::Postgres {
            sqlx::raw_sql("NOTIFY tollgate_config")
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query_scalar::<_, i64>("SELECT 1")
            .fetch_one(&self.pool)
            .await
            .is_ok()
    }
}

/// A stored resource: its table, its columns and what people call it.
pub trait Table: for<'r> sqlx::FromRow<'r, AnyRow> + Send + Unpin {
    const TABLE: &'static str;
    const COLUMNS: &'static str;
    const WHAT: &'static str;
    /// `SELECT id FROM <table> WHERE id = $1`, written out (the id is bound).
    const EXISTS: &'static str;
}

/// One row by id, or a 404 that names it.
pub async fn load<T: Table>(db: &Db, id: &str) -> ApiResult<T> {
    sqlx::query_as::<_, T>(&format!(
        "SELECT {} FROM {} WHERE id = $1",
        T::COLUMNS,
        T::TABLE
    ))
    .bind(id)
    .fetch_optional(&db.pool)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("No {} {id:?}.", T::WHAT)))
}

/// A page of rows in id order after the cursor, one more than the limit (so
/// that `List::page` can tell `has_more`), and the limit.
pub async fn page<T: Table>(db: &Db, page: PageQuery) -> ApiResult<(Vec<T>, i64)> {
    let limit = page.limit()?;
    let rows = sqlx::query_as::<_, T>(&format!(
        "SELECT {} FROM {} WHERE id > $1 ORDER BY id LIMIT $2",
        T::COLUMNS,
        T::TABLE
    ))
    .bind(page.after.unwrap_or_default())
    .bind(limit + 1)
    .fetch_all(&db.pool)
    .await?;
    Ok((rows, limit))
}

/// Whether a row with this id is in the table.
pub async fn exists<T: Table>(db: &Db, id: &str) -> ApiResult<bool> {
    let found: Option<String> = sqlx::query_scalar(T::EXISTS)
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(found.is_some())
}

/// The URL without a password, for logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_not_logged() {
        assert_eq!(
            redact("postgres://u:pw@h:5432/db"),
            "postgres://***@h:5432/db"
        );
        assert_eq!(
            redact("postgres://127.0.0.1:5432/test"),
            "postgres://127.0.0.1:5432/test"
        );
        assert_eq!(redact("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }
}
