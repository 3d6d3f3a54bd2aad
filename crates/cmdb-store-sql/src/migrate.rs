//! Schema migrations with [`sqlx::migrate!`], one directory per database
//! (`migrations/sqlite`, `migrations/postgres`, `migrations/mysql`), applied on connect
//! and recorded in sqlx's table `_sqlx_migrations`.
//!
//! Versions continue those of the runner this crate had before, which recorded them in
//! `cmdb_schema_migrations`: version 4 is that runner's schema at its version 4, version
//! 5 converts times and JSON to native types, version 6 adds the `session_token` column
//! of secrets (temporary credentials, ciphertext only), version 7 the table of sync runs
//! (`cmdb_runs`), version 8 the secrets' schedules and the runs' runner, version 9 the
//! table of managed database instances (`cmdb_databases`, typed as `cmdb_hosts`). A
//! database that runner left at version 4 is adopted: version 4 is recorded as applied,
//! then versions 5 to 9 run (version 5 drops the old table). A
//! database at an older version of that runner is refused ([`SchemaError::TooOld`]), as
//! is one with migrations this build does not know ([`SchemaError::TooNew`]).
//!
//! Concurrent connects: on PostgreSQL and MySQL a lock keyed by the database is held
//! across adoption and migration, on a connection of its own that is closed afterwards
//! (so that a failure cannot leave the lock held by a pooled connection). PostgreSQL
//! takes sqlx's migration lock (a session-level advisory lock). MySQL takes a named lock
//! of its own: sqlx's asks `GET_LOCK(name, -1)`, which MariaDB answers at once with NULL
//! instead of waiting, and sqlx goes on without the lock. SQLite has no such lock, but
//! each migration is one transaction with its record: a connect that loses the race
//! rolls back, runs again and finds the migration applied.

use std::time::Duration;

use cmdb_core::{Error, Result};
use futures::future::BoxFuture;
use sqlx::migrate::{Migrate, MigrateError, Migration, MigrationSource, Migrator};
use sqlx::{AnyConnection, AnyPool, Connection};

use crate::sql::{int, opt_int, Backend, Sql};
use crate::store::db_error;

/// The schema version this build creates and expects.
pub const SCHEMA_VERSION: i64 = 9;

/// The version of the earlier runner that is adopted.
const ADOPTED_VERSION: i64 = 4;

/// The earlier runner's version table.
const OLD_VERSION_TABLE: &str = "cmdb_schema_migrations";

static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");
static MYSQL: Migrator = sqlx::migrate!("migrations/mysql");

/// Why the schema of a database cannot be used: the source of the
/// [`Store`](cmdb_core::ErrorKind::Store) error a connect returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// Left by the earlier migration runner at a version before 4, which this build
    /// does not upgrade.
    #[error(
        "the database is at schema version {found} of an earlier cmdb, too old to upgrade \
         here: connect once with a cmdb release of schema version 4 first"
    )]
    TooOld {
        /// The version the database is at.
        found: i64,
    },
    /// Migrated by a newer build: it holds a version this build does not know.
    #[error("the database has schema version {found}, newer than this build's {SCHEMA_VERSION}")]
    TooNew {
        /// The unknown version.
        found: i64,
    },
}

impl From<SchemaError> for Error {
    fn from(e: SchemaError) -> Error {
        Error::store(e.to_string()).with_source(e)
    }
}

fn migrate_error(e: MigrateError) -> Error {
    match e {
        MigrateError::VersionMissing(found) => SchemaError::TooNew { found }.into(),
        MigrateError::Execute(e) => db_error(e).context("migration"),
        MigrateError::ExecuteMigration(e, version) => {
            db_error(e).context(format!("migration {version}"))
        }
        other => Error::store(format!("migration: {other}")).with_source(other),
    }
}

/// The migrations of a backend up to a version.
#[derive(Debug)]
struct UpTo(Vec<Migration>);

impl MigrationSource<'static> for UpTo {
    fn resolve(
        self,
    ) -> BoxFuture<'static, std::result::Result<Vec<Migration>, sqlx::error::BoxDynError>> {
        Box::pin(async move { Ok(self.0) })
    }
}

fn embedded(backend: Backend) -> &'static Migrator {
    match backend {
        Backend::Sqlite => &SQLITE,
        Backend::Postgres => &POSTGRES,
        Backend::MySql => &MYSQL,
    }
}

/// A migrator of `backend`'s migrations up to `target`, without sqlx's lock (taken here
/// around adoption and migration together).
async fn migrator(backend: Backend, target: i64) -> Result<Migrator> {
    let chosen = embedded(backend)
        .iter()
        .filter(|m| m.version <= target)
        .cloned()
        .collect();
    let mut migrator = Migrator::new(UpTo(chosen)).await.map_err(migrate_error)?;
    migrator.set_locking(false);
    Ok(migrator)
}

/// Brings the database to version `target` (adopting a database of the earlier runner).
pub(crate) async fn migrate(pool: &AnyPool, backend: Backend, target: i64) -> Result<()> {
    let migrator = migrator(backend, target).await?;
    match backend {
        Backend::Postgres | Backend::MySql => {
            let mut conn = pool.acquire().await.map_err(db_error)?.detach();
            let result = migrate_locked(&mut conn, backend, &migrator).await;
            // Closing the session releases the lock, whatever happened.
            let _ = conn.close().await;
            result
        }
        // A pooled connection: an in-memory database lives in its only connection.
        Backend::Sqlite => {
            let mut conn = pool.acquire().await.map_err(db_error)?;
            migrate_sqlite(&mut conn, &migrator).await
        }
    }
}

async fn migrate_locked(
    conn: &mut AnyConnection,
    backend: Backend,
    migrator: &Migrator,
) -> Result<()> {
    match backend {
        Backend::MySql => lock_mysql(conn).await?,
        Backend::Sqlite | Backend::Postgres => conn.lock().await.map_err(migrate_error)?,
    }
    adopt(conn, backend).await?;
    migrator.run_direct(conn).await.map_err(migrate_error)
    // The caller closes the connection, which releases the lock.
}

/// How long a connect waits for another one's migrations on MySQL.
const MYSQL_LOCK_WAIT: Duration = Duration::from_secs(600);

/// Takes the migration lock of the connection's database (named after a hash of its
/// name: lock names are server-wide and at most 64 characters).
async fn lock_mysql(conn: &mut AnyConnection) -> Result<()> {
    let mut sql = Sql::new(
        Backend::MySql,
        "SELECT GET_LOCK(CONCAT('cmdb-migrate-', SHA1(DATABASE())), ",
    );
    sql.bind(MYSQL_LOCK_WAIT.as_secs() as i64).push(")");
    let row = sql.build()?.fetch_one(&mut *conn).await.map_err(db_error)?;
    if opt_int(&row, 0)? == Some(1) {
        Ok(())
    } else {
        Err(Error::store(
            "timed out waiting for another connect's migrations (MySQL lock)",
        ))
    }
}

/// Runs the migrations, again after a failure (a concurrent connect that applied the
/// same migration first makes this one's transaction fail and roll back).
async fn migrate_sqlite(conn: &mut AnyConnection, migrator: &Migrator) -> Result<()> {
    const ATTEMPTS: u32 = 3;
    let mut attempt = 1;
    loop {
        let result = async {
            let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(db_error)?;
            adopt(&mut tx, Backend::Sqlite).await?;
            tx.commit().await.map_err(db_error)?;
            migrator.run_direct(&mut *conn).await.map_err(migrate_error)
        }
        .await;
        match result {
            Err(e) if attempt < ATTEMPTS && !is_schema_error(&e) => {
                tracing::debug!(attempt, error = %e, "migration failed; running it again");
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

fn is_schema_error(e: &Error) -> bool {
    std::error::Error::source(e).is_some_and(|s| s.is::<SchemaError>())
}

/// Records version 4 as applied in a database the earlier runner left at version 4.
/// Nothing to do for a new database, or one migrated by sqlx already.
async fn adopt(conn: &mut AnyConnection, backend: Backend) -> Result<()> {
    if !table_exists(conn, backend, OLD_VERSION_TABLE).await?
        || (table_exists(conn, backend, "_sqlx_migrations").await?
            && count(conn, "SELECT COUNT(*) FROM _sqlx_migrations").await? > 0)
    {
        return Ok(());
    }
    let found = count(
        conn,
        &format!("SELECT COALESCE(MAX(version), 0) FROM {OLD_VERSION_TABLE}"),
    )
    .await?;
    if found < ADOPTED_VERSION {
        return Err(SchemaError::TooOld { found }.into());
    }
    if found > ADOPTED_VERSION {
        return Err(SchemaError::TooNew { found }.into());
    }
    let baseline = embedded(backend)
        .iter()
        .find(|m| m.version == ADOPTED_VERSION)
        .ok_or_else(|| Error::store("the baseline migration is missing"))?;
    conn.ensure_migrations_table()
        .await
        .map_err(migrate_error)?;
    let mut sql = Sql::new(
        backend,
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (",
    );
    sql.bind(baseline.version)
        .push(", ")
        .bind(baseline.description.to_string())
        .push(", ")
        .bind(true)
        .push(", ")
        .bind(baseline.checksum.to_vec())
        .push(", 0)");
    sql.build()?.execute(&mut *conn).await.map_err(db_error)?;
    tracing::info!(
        version = ADOPTED_VERSION,
        "adopted a database of the earlier migration runner"
    );
    Ok(())
}

async fn table_exists(conn: &mut AnyConnection, backend: Backend, table: &str) -> Result<bool> {
    let query = match backend {
        Backend::Sqlite => {
            format!("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '{table}'")
        }
        // Where an unqualified name resolves: the schema of the store's search_path.
        Backend::Postgres => {
            format!("SELECT CASE WHEN to_regclass('{table}') IS NULL THEN 0 ELSE 1 END")
        }
        Backend::MySql => format!(
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_name = '{table}'"
        ),
    };
    Ok(count(conn, &query).await? > 0)
}

async fn count(conn: &mut AnyConnection, query: &str) -> Result<i64> {
    let row = sqlx::query(query)
        .fetch_one(&mut *conn)
        .await
        .map_err(db_error)?;
    int(&row, 0)
}

/// The highest version applied, 0 for an empty database.
pub(crate) async fn current_version(conn: &mut AnyConnection) -> Result<i64> {
    count(
        conn,
        "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success = TRUE",
    )
    .await
}
