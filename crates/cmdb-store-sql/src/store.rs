//! [`SqlStore`]: connecting, pool set-up and error mapping.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use cmdb_core::{Error, ErrorKind, Result};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Connection, Executor};

use crate::lock::LeaseClock;
use crate::migrate::{self, SCHEMA_VERSION};
use crate::records::Statistics;
use crate::sql::Backend;

/// A host, database instance, run and secret store on SQLite, PostgreSQL or
/// MySQL/MariaDB.
///
/// Implements [`cmdb_core::HostStore`], [`cmdb_core::DatabaseStore`],
/// [`cmdb_core::RunStore`] and [`cmdb_secret::SecretStore`]. Cloning is cheap
/// and shares the connection pool. `Debug` shows the URL with its password redacted.
///
/// ```no_run
/// # async fn demo() -> cmdb_core::Result<()> {
/// use cmdb_store_sql::SqlStore;
///
/// // Created if missing, WAL mode, schema migrated to the current version.
/// let store = SqlStore::connect("sqlite://cmdb.db").await?;
/// assert_eq!(store.schema_version().await?, cmdb_store_sql::SCHEMA_VERSION);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SqlStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
    /// The URL with its password redacted, for `Debug` and messages.
    pub(crate) redacted_url: String,
    /// What tells this store's scope locks apart from another store's on the same server
    /// (PostgreSQL schema, MySQL database).
    pub(crate) namespace: String,
    /// Hosts created by this store since it last refreshed PostgreSQL's statistics of
    /// `cmdb_hosts`, and the count that triggers the next refresh.
    pub(crate) host_statistics: Statistics,
    /// The same for `cmdb_databases`.
    pub(crate) database_statistics: Statistics,
    /// The clock SQLite scope locks are stamped and judged with.
    pub(crate) clock: LeaseClock,
}

impl fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.inner.backend)
            .field("url", &self.inner.redacted_url)
            .finish_non_exhaustive()
    }
}

/// Options for [`SqlStore`]: `SqlStore::builder(url).max_connections(4).connect()`.
#[derive(Clone)]
pub struct SqlStoreBuilder {
    url: String,
    max_connections: Option<u32>,
    schema: Option<String>,
    acquire_timeout: Duration,
}

impl fmt::Debug for SqlStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStoreBuilder")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl SqlStoreBuilder {
    /// The most connections the pool opens (default: 10 for servers, 4 for a SQLite file;
    /// always 1 for an in-memory SQLite database, which lives in its one connection).
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = Some(n.max(1));
        self
    }

    /// Keeps the tables in a schema of their own, created if missing: a PostgreSQL schema
    /// (set as the connections' `search_path`) or a MySQL database (replacing the URL's).
    /// Letters, digits and `_` only. Ignored on SQLite.
    pub fn schema(mut self, name: impl Into<String>) -> Self {
        self.schema = Some(name.into());
        self
    }

    /// How long to wait for a pooled connection (default 30 s).
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// Connects and migrates the schema to [`SCHEMA_VERSION`].
    pub async fn connect(self) -> Result<SqlStore> {
        self.connect_at(SCHEMA_VERSION).await
    }

    /// Connects and migrates the schema up to `version` only (4 to [`SCHEMA_VERSION`]; to
    /// build older databases in tests of the upgrade path).
    #[doc(hidden)]
    pub async fn connect_at(self, version: i64) -> Result<SqlStore> {
        let backend = self.check()?;
        sqlx::any::install_default_drivers();
        let session = match backend {
            Backend::Sqlite => Session::sqlite(&self.url),
            Backend::Postgres => Session::postgres(&self.url, self.schema.as_deref()).await?,
            Backend::MySql => Session::mysql(&self.url, self.schema.as_deref()).await?,
        };
        let pool = self.open_pool(backend, &session).await?;
        migrate::migrate(&pool, backend, version).await?;
        Ok(SqlStore {
            inner: Arc::new(Inner {
                pool,
                backend,
                redacted_url: session.redacted_url,
                namespace: session.namespace,
                host_statistics: Statistics::default(),
                database_statistics: Statistics::default(),
                clock: LeaseClock::new(),
            }),
        })
    }

    /// The backend of the URL, if this build has it, after checking the schema name.
    fn check(&self) -> Result<Backend> {
        let backend = Backend::from_url(&self.url)?;
        if !backend.is_enabled() {
            return Err(Error::invalid_field(
                "database_url",
                format!(
                    "cmdb-store-sql was built without the `{}` feature",
                    backend.as_str()
                ),
            ));
        }
        if let Some(schema) = &self.schema {
            if schema.is_empty()
                || schema.len() > 63
                || !schema
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(Error::invalid_field(
                    "schema",
                    "must be 1 to 63 letters, digits or _",
                ));
            }
        }
        Ok(backend)
    }

    /// The pool of connections opened as `session` says.
    async fn open_pool(&self, backend: Backend, session: &Session) -> Result<AnyPool> {
        let redacted_url = &session.redacted_url;
        let options: AnyConnectOptions = session
            .url
            .parse::<AnyConnectOptions>()
            .map_err(|e| Error::invalid_field("database_url", format!("{redacted_url}: {e}")))?
            .disable_statement_logging();
        let max = if session.memory {
            1
        } else {
            self.max_connections.unwrap_or(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres | Backend::MySql => 10,
            })
        };
        let mut pool_options = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(self.acquire_timeout);
        if session.memory {
            // The database lives and dies with its only connection: keep it forever.
            pool_options = pool_options
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        }
        let init = Arc::new(session.init.clone());
        pool_options
            .after_connect(move |conn, _meta| {
                let init = Arc::clone(&init);
                Box::pin(async move {
                    for statement in init.iter() {
                        conn.execute(statement.as_str()).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| db_error(e).context(format!("cannot connect to {redacted_url}")))
    }
}

/// How each connection of a store's pool is opened: the URL to open, and the statements
/// each connection runs first.
struct Session {
    url: String,
    /// The URL with its password redacted, for `Debug` and messages.
    redacted_url: String,
    init: Vec<String>,
    /// See [`Inner::namespace`].
    namespace: String,
    /// An in-memory SQLite database.
    memory: bool,
}

impl Session {
    fn sqlite(url: &str) -> Session {
        let redacted_url = redact_url(url);
        let mut url = url.to_owned();
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let mut init: Vec<String> = Vec::new();
        if !memory {
            if !url.contains("mode=") {
                // Create the file if it is missing.
                url.push(if url.contains('?') { '&' } else { '?' });
                url.push_str("mode=rwc");
            }
            init.push("PRAGMA journal_mode = WAL".into());
            init.push("PRAGMA synchronous = NORMAL".into());
            // A checkpoint every 10,000 pages (40 MB of WAL with 4 KiB pages)
            // instead of SQLite's 1,000: each checkpoint syncs the WAL and the
            // database file to disk, and a sync writes megabytes a second (the
            // store alone 5% to 7% faster in alternating runs, Tencent into
            // SQLite 2% to 19%). With `synchronous = NORMAL` a power cut may
            // lose what was committed since the last checkpoint (a crash of the
            // process loses nothing): here, at most the last seconds of a sync,
            // which the next sync lists again.
            init.push("PRAGMA wal_autocheckpoint = 10000".into());
            // Statement journals in memory: a multi-row upsert keeps the pages it
            // changes there until it ends (about a megabyte for 100 hosts), and
            // past 64 KiB SQLite otherwise moves them to a temporary file, opened
            // and written for every statement: about 7% of the database thread's
            // time in a profile of the store alone.
            init.push("PRAGMA temp_store = MEMORY".into());
        }
        init.push("PRAGMA busy_timeout = 10000".into());
        Session {
            url,
            redacted_url,
            init,
            namespace: String::new(),
            memory,
        }
    }

    /// With a schema: created if missing, and the connections' `search_path`.
    async fn postgres(url: &str, schema: Option<&str>) -> Result<Session> {
        let redacted_url = redact_url(url);
        let mut init = Vec::new();
        let mut namespace = String::new();
        if let Some(schema) = schema {
            let create = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
            match execute_once(url, &redacted_url, &create).await {
                // Two connects creating the schema at once: one of them meets the other's
                // catalog row (a unique violation); the schema exists either way.
                Err(e) if e.kind() == ErrorKind::Conflict => {}
                other => other?,
            }
            init.push(format!("SET search_path TO \"{schema}\""));
            namespace = schema.to_owned();
        }
        Ok(Session {
            url: url.to_owned(),
            redacted_url,
            init,
            namespace,
            memory: false,
        })
    }

    /// With a schema: a database created if missing, replacing the URL's.
    async fn mysql(url: &str, schema: Option<&str>) -> Result<Session> {
        let redacted_url = redact_url(url);
        let mut url = url.to_owned();
        if let Some(schema) = schema {
            let create = format!(
                "CREATE DATABASE IF NOT EXISTS `{schema}` \
                 CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
            );
            execute_once(&url, &redacted_url, &create).await?;
            let mut parsed = url::Url::parse(&url)
                .map_err(|e| Error::invalid_field("database_url", format!("not a URL: {e}")))?;
            parsed.set_path(&format!("/{schema}"));
            url = parsed.to_string();
        }
        let namespace = url::Url::parse(&url)
            .map(|u| u.path().trim_start_matches('/').to_owned())
            .unwrap_or_default();
        let init = vec![
            // Refuse values too long for a column instead of truncating them.
            "SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')".into(),
            // Under REPEATABLE READ, locking the keys of a page that do not exist yet
            // takes gap locks, which block (and deadlock with) other writers inserting
            // any key in between, even of other scopes. Set once per connection: a
            // per-transaction SET fails on a connection that a dropped future left
            // inside a BEGIN.
            "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED".into(),
        ];
        Ok(Session {
            url,
            redacted_url,
            init,
            namespace,
            memory: false,
        })
    }
}

/// Runs `statement` on a connection of its own (to create the store's schema before the
/// pool's connections select it).
async fn execute_once(url: &str, redacted: &str, statement: &str) -> Result<()> {
    let options: AnyConnectOptions = url
        .parse::<AnyConnectOptions>()
        .map_err(|e| Error::invalid_field("database_url", format!("{redacted}: {e}")))?
        .disable_statement_logging();
    let mut conn = options
        .connect()
        .await
        .map_err(|e| db_error(e).context(format!("cannot connect to {redacted}")))?;
    conn.execute(statement).await.map_err(db_error)?;
    let _ = conn.close().await;
    Ok(())
}

impl SqlStore {
    /// Connects to `url` with the default options and migrates the schema: see
    /// [`SqlStoreBuilder`].
    ///
    /// - `sqlite://path/cmdb.db` (created if missing; WAL journal, `synchronous = NORMAL`,
    ///   a checkpoint every 10,000 pages), `sqlite::memory:`
    /// - `postgres://user:password@host:5432/db`
    /// - `mysql://user:password@host:3306/db` (MySQL 8 or MariaDB 10.5+)
    pub async fn connect(url: &str) -> Result<SqlStore> {
        SqlStore::builder(url).connect().await
    }

    /// Options for a connection to `url`.
    pub fn builder(url: impl Into<String>) -> SqlStoreBuilder {
        SqlStoreBuilder {
            url: url.into(),
            max_connections: None,
            schema: None,
            acquire_timeout: Duration::from_secs(30),
        }
    }

    /// The database behind the store.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// The schema version of the database.
    pub async fn schema_version(&self) -> Result<i64> {
        let mut conn = self.inner.pool.acquire().await.map_err(db_error)?;
        migrate::current_version(&mut conn).await
    }

    /// Closes every connection of the pool; later calls fail.
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }

    /// Begins a write transaction on a pooled connection that is outside any
    /// transaction (immediate on SQLite).
    pub(crate) async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        let pool = &self.inner.pool;
        let mut attempts = 0;
        let conn = loop {
            let mut conn = pool.acquire().await.map_err(db_error)?;
            if self.inner.backend == Backend::Sqlite {
                // A transaction dropped mid-way leaves its rollback queued on the
                // connection's worker; let it run first.
                conn.ping().await.map_err(db_error)?;
            }
            if !conn.is_in_transaction() {
                break conn;
            }
            // A future dropped right after its BEGIN was acknowledged leaves a
            // transaction nobody owns: never write into it, drop the connection.
            attempts += 1;
            tracing::warn!("discarding a pooled connection left inside a transaction");
            conn.close_on_drop();
            drop(conn);
            if attempts > 16 {
                return Err(Error::store("no pooled connection outside a transaction"));
            }
        };
        let statement = match self.inner.backend {
            // Take the write lock up front: a deferred transaction that reads and then
            // writes can fail with SQLITE_BUSY under concurrent writers.
            Backend::Sqlite => Some("BEGIN IMMEDIATE".into()),
            Backend::Postgres | Backend::MySql => None,
        };
        sqlx::Transaction::begin(conn, statement)
            .await
            .map_err(db_error)
    }

    /// The number a `SELECT COUNT(*) …` statement answers.
    pub(crate) async fn count(&self, mut sql: crate::sql::Sql<'_>) -> Result<u64> {
        let row = sql
            .build()?
            .fetch_one(self.pool())
            .await
            .map_err(db_error)?;
        Ok(u64::try_from(crate::sql::int(&row, 0)?).unwrap_or_default())
    }

    /// `page_size` rows from `offset` of those `sql` selects (ordered by its caller).
    pub(crate) async fn fetch_page(
        &self,
        mut sql: crate::sql::Sql<'_>,
        page_size: u32,
        offset: u64,
    ) -> Result<Vec<sqlx::any::AnyRow>> {
        sql.push(" LIMIT ")
            .bind(i64::from(page_size))
            .push(" OFFSET ")
            .bind(i64::try_from(offset).unwrap_or(i64::MAX));
        sql.build()?.fetch_all(self.pool()).await.map_err(db_error)
    }

    /// The pool, for tests in this crate.
    pub(crate) fn pool(&self) -> &sqlx::AnyPool {
        &self.inner.pool
    }
}

/// `url` with the password (and any `password=` query value) replaced by `****`, for
/// logs and messages.
///
/// ```
/// assert_eq!(
///     cmdb_store_sql::redact_url("postgres://cmdb:s3cret@db:5432/cmdb"),
///     "postgres://cmdb:****@db:5432/cmdb",
/// );
/// ```
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("****"));
            }
            let pairs: Vec<(String, String)> = parsed
                .query_pairs()
                .map(|(k, v)| {
                    let secret =
                        k.eq_ignore_ascii_case("password") || k.eq_ignore_ascii_case("sslpassword");
                    (
                        k.into_owned(),
                        if secret {
                            "****".into()
                        } else {
                            v.into_owned()
                        },
                    )
                })
                .collect();
            if !pairs.is_empty() {
                parsed.query_pairs_mut().clear().extend_pairs(pairs);
            }
            parsed.to_string()
        }
        // Not a URL (e.g. `sqlite::memory:`): show only the part before any `@`.
        Err(_) => match url.rfind('@') {
            Some(at) => format!("****{}", &url[at..]),
            None => url.to_owned(),
        },
    }
}

/// Maps a database error into a store error; unique violations are conflicts.
///
/// A lost or unreachable database (pool closed or timed out, I/O error) is still a
/// [`Store`](ErrorKind::Store) error, not `Unavailable` (which means the vendor or its
/// network): an operator must see that the CMDB's own database failed. It is marked
/// retryable, since it may come back.
pub(crate) fn db_error(e: sqlx::Error) -> Error {
    let kind = match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => ErrorKind::Conflict,
        _ => ErrorKind::Store,
    };
    let retryable = matches!(
        e,
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
    );
    Error::new(kind, format!("database: {e}")).with_retryable(retryable)
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sqlite_file_is_opened_in_wal_mode_with_rare_checkpoints_and_journals_in_memory() {
        let dir = std::env::temp_dir().join("cmdb-store-sql-tests");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("pragmas-{}.db", std::process::id()));
        let store = SqlStore::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let mut conn = store.pool().acquire().await.unwrap();
        let int = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let synchronous = int("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(synchronous, 1, "NORMAL");
        let pages = int("PRAGMA wal_autocheckpoint")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(pages, 10_000);
        let temp_store = int("PRAGMA temp_store")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(temp_store, 2, "MEMORY");
        drop(conn);
        store.pool().close().await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}
