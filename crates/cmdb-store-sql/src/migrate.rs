//! Versioned schema migrations, embedded and applied on connect.
//!
//! Each version is a list of statements per backend, recorded in
//! `cmdb_schema_migrations` once applied. Versions are append-only: a released version's
//! statements never change, so an older database upgrades in place by applying the versions
//! it lacks. Concurrent connects are serialized (PostgreSQL advisory transaction lock,
//! MySQL `GET_LOCK`, SQLite `BEGIN IMMEDIATE`).

use chrono::Utc;
use cmdb_core::{Error, Result};
use sqlx::AnyConnection;
use sqlx::{AnyPool, Connection};

use crate::sql::{int, Backend, Sql};
use crate::store::db_error;

/// The schema version this build creates and expects.
pub const SCHEMA_VERSION: i64 = 4;

/// Column kinds of the tables, rendered per backend.
#[derive(Clone, Copy)]
enum Col {
    /// Required string of at most n characters.
    Str(u32),
    /// Optional string of at most n characters.
    OptStr(u32),
    /// Required unbounded text (JSON, free text).
    Text,
    /// Optional unbounded text.
    OptText,
    /// Required 64-bit integer.
    Int,
    /// Optional 64-bit integer.
    OptInt,
}

fn col_type(backend: Backend, col: Col) -> String {
    let (ty, null) = match (backend, col) {
        (Backend::Sqlite, Col::Str(_) | Col::Text) => ("TEXT".to_owned(), false),
        (Backend::Sqlite, Col::OptStr(_) | Col::OptText) => ("TEXT".to_owned(), true),
        // "C" collation: byte order, the same as Rust's `str` order, whatever the
        // database's default locale.
        (Backend::Postgres, Col::Str(n)) => (format!("VARCHAR({n}) COLLATE \"C\""), false),
        (Backend::Postgres, Col::OptStr(n)) => (format!("VARCHAR({n}) COLLATE \"C\""), true),
        (Backend::Postgres, Col::Text) => ("TEXT".to_owned(), false),
        (Backend::Postgres, Col::OptText) => ("TEXT".to_owned(), true),
        (Backend::MySql, Col::Str(n)) => (format!("VARCHAR({n})"), false),
        (Backend::MySql, Col::OptStr(n)) => (format!("VARCHAR({n})"), true),
        (Backend::MySql, Col::Text) => ("LONGTEXT".to_owned(), false),
        (Backend::MySql, Col::OptText) => ("LONGTEXT".to_owned(), true),
        (_, Col::Int) => ("BIGINT".to_owned(), false),
        (_, Col::OptInt) => ("BIGINT".to_owned(), true),
    };
    if null {
        format!("{ty} NULL")
    } else {
        format!("{ty} NOT NULL")
    }
}

fn create_table(backend: Backend, name: &str, cols: &[(&str, Col)], keys: &[&str]) -> String {
    let mut sql = format!("CREATE TABLE IF NOT EXISTS {name} (\n");
    for (col, kind) in cols {
        sql.push_str(&format!("    {col} {},\n", col_type(backend, *kind)));
    }
    sql.push_str(&keys.join(",\n"));
    sql.push_str("\n)");
    if backend == Backend::MySql {
        // Binary collation: keys and comparisons are case-sensitive and order is byte
        // order, as on the other backends.
        sql.push_str(" ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin");
    }
    sql
}

fn create_index(backend: Backend, name: &str, table: &str, cols: &str) -> String {
    match backend {
        // MySQL has no CREATE INDEX IF NOT EXISTS; the version table keeps it from
        // running twice.
        Backend::MySql => format!("CREATE INDEX {name} ON {table} ({cols})"),
        Backend::Sqlite | Backend::Postgres => {
            format!("CREATE INDEX IF NOT EXISTS {name} ON {table} ({cols})")
        }
    }
}

/// Version 1: hosts and secrets.
fn v1(backend: Backend) -> Vec<String> {
    use Col::*;
    let hosts: &[(&str, Col)] = &[
        ("vendor", Str(16)),
        ("instance_id", Str(255)),
        ("secret_id", Str(255)),
        ("region", Str(255)),
        ("zone", OptStr(255)),
        ("name", Str(512)),
        ("name_lc", Str(512)),
        ("description", OptText),
        ("hostname", OptStr(512)),
        ("status", Str(32)),
        ("raw_status", Str(255)),
        ("instance_type", OptStr(255)),
        ("cpu", OptInt),
        ("memory_mib", OptInt),
        ("gpu_count", OptInt),
        ("gpu_spec", OptStr(255)),
        ("os_type", Str(16)),
        ("os_name", OptStr(512)),
        ("image_id", OptStr(255)),
        ("public_ips", Text),
        ("private_ips", Text),
        ("ip_search", Text),
        ("pay_mode", Str(16)),
        ("created_at", OptStr(64)),
        ("expire_at", OptStr(64)),
        ("tags", Text),
        ("vpc_id", OptStr(255)),
        ("security_groups", Text),
        ("key_pairs", Text),
        ("serial_number", OptStr(255)),
        ("extra", Text),
        ("content_hash", Str(64)),
        ("first_seen_at", Int),
        ("last_seen_at", Int),
        ("released_at", OptInt),
    ];
    let secrets: &[(&str, Col)] = &[
        ("id", Str(255)),
        ("vendor", Str(16)),
        ("description", Text),
        ("api_key", Str(255)),
        ("api_secret", Text),
        ("allowed_regions", Text),
        ("request_rate", Int),
        ("address", OptText),
        ("created_at", Int),
        ("id_lc", Text),
        ("description_lc", Text),
        ("api_key_lc", Text),
    ];
    vec![
        create_table(
            backend,
            "cmdb_hosts",
            hosts,
            &["    PRIMARY KEY (vendor, instance_id)"],
        ),
        create_index(
            backend,
            "cmdb_hosts_scope",
            "cmdb_hosts",
            // No vendor column (a secret has one vendor): an index holding vendor other
            // than the primary key tempts PostgreSQL, before the table is analyzed, to
            // scan it for `vendor = ?` and filter the page's instance ids row by row.
            "secret_id, region, released_at, last_seen_at",
        ),
        create_table(
            backend,
            "cmdb_secrets",
            secrets,
            &[
                "    PRIMARY KEY (id)",
                "    CONSTRAINT cmdb_secrets_vendor_api_key UNIQUE (vendor, api_key)",
            ],
        ),
    ]
}

/// Version 2: the SQLite scope-lock table and indexes for the sorted host listings.
fn v2(backend: Backend) -> Vec<String> {
    use Col::*;
    let locks: &[(&str, Col)] = &[
        ("scope_key", Str(64)),
        ("scope", Text),
        ("owner_pid", Int),
        ("owner_start", Int),
        ("owner_token", Str(64)),
        ("acquired_at", Int),
        ("expires_at", Int),
    ];
    vec![
        create_table(
            backend,
            "cmdb_scope_locks",
            locks,
            &["    PRIMARY KEY (scope_key)"],
        ),
        create_index(
            backend,
            "cmdb_hosts_last_seen",
            "cmdb_hosts",
            "last_seen_at",
        ),
        create_index(backend, "cmdb_hosts_name", "cmdb_hosts", "name"),
    ]
}

/// Version 3: the mark of a host that a complete run missed (for providers without a
/// look-up by id), and the host of a SQLite lock row's owner.
fn v3(backend: Backend) -> Vec<String> {
    let add = |table: &str, column: &str, kind: Col| {
        format!(
            "ALTER TABLE {table} ADD COLUMN {column} {}",
            col_type(backend, kind)
        )
    };
    vec![
        add("cmdb_hosts", "missed_at", Col::OptInt),
        // The hostname and boot id of the owner: a pid means something only on the host
        // (and the boot) that gave it.
        add("cmdb_scope_locks", "owner_host", Col::OptStr(255)),
        add("cmdb_scope_locks", "owner_boot", Col::OptStr(64)),
    ]
}

/// Version 4: a secret's TLS settings (bound into its ciphertext's associated data,
/// which `rotate_secrets` re-encrypts: a migration holds no key), and `api_key_lc` holding
/// the masked key, so that a keyword search cannot recover a key by counting matches.
fn v4(backend: Backend) -> Vec<String> {
    let add = |column: &str, kind: Col| {
        format!(
            "ALTER TABLE cmdb_secrets ADD COLUMN {column} {}",
            col_type(backend, kind)
        )
    };
    let masked = match backend {
        Backend::MySql => {
            "CASE WHEN CHAR_LENGTH(api_key) <= 8 THEN '****' ELSE CONCAT(LOWER(SUBSTRING(api_key, 1, 4)), \
             '****', LOWER(SUBSTRING(api_key, CHAR_LENGTH(api_key) - 3))) END"
        }
        Backend::Sqlite | Backend::Postgres => {
            "CASE WHEN LENGTH(api_key) <= 8 THEN '****' ELSE LOWER(SUBSTR(api_key, 1, 4)) || '****' || \
             LOWER(SUBSTR(api_key, LENGTH(api_key) - 3)) END"
        }
    };
    vec![
        add("allow_insecure_http", Col::OptInt),
        add("tls_ca_pem", Col::OptText),
        add("tls_skip_verify", Col::OptInt),
        format!("UPDATE cmdb_secrets SET api_key_lc = {masked}"),
    ]
}

/// Every version with its description and statements, in order.
fn versions(backend: Backend) -> Vec<(i64, &'static str, Vec<String>)> {
    vec![
        (1, "hosts and secrets", v1(backend)),
        (2, "scope locks, listing indexes", v2(backend)),
        (3, "missed marks, lock owner hosts", v3(backend)),
        (4, "secret TLS settings, masked key search", v4(backend)),
    ]
}

const VERSION_TABLE: &str = "cmdb_schema_migrations";

/// A stable lock key for migrations (PostgreSQL advisory locks take a bigint).
const PG_MIGRATION_LOCK: i64 = 0x636d_6462_6d69_6772; // "cmdbmigr"

/// Applies every version above the database's, up to `target`; returns the version the
/// database is at afterwards.
pub(crate) async fn migrate(pool: &AnyPool, backend: Backend, target: i64) -> Result<i64> {
    let mut conn = pool.acquire().await.map_err(db_error)?;
    let conn: &mut AnyConnection = &mut conn;
    let version_table = format!(
        "CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version BIGINT NOT NULL PRIMARY KEY, \
         description VARCHAR(255) NOT NULL, applied_at BIGINT NOT NULL)"
    );
    match backend {
        Backend::MySql => {
            // DDL commits implicitly on MySQL, so a transaction cannot serialize
            // migrations there; a named lock does.
            let mut sql = Sql::new(backend, "SELECT GET_LOCK(");
            sql.bind("cmdb_migrations".to_owned()).push(", 60)");
            let row = sql.build()?.fetch_one(&mut *conn).await.map_err(db_error)?;
            if crate::sql::opt_int(&row, 0)? != Some(1) {
                return Err(Error::store("timed out waiting for the migration lock"));
            }
            let result = apply(conn, backend, target, &version_table).await;
            let _ = sqlx::raw_sql("DO RELEASE_LOCK('cmdb_migrations')")
                .execute(&mut *conn)
                .await;
            result
        }
        Backend::Postgres => {
            let mut tx = conn.begin().await.map_err(db_error)?;
            let mut sql = Sql::new(backend, "SELECT pg_advisory_xact_lock(");
            sql.bind(PG_MIGRATION_LOCK).push(")");
            sql.build()?.execute(&mut *tx).await.map_err(db_error)?;
            let v = apply(&mut tx, backend, target, &version_table).await?;
            tx.commit().await.map_err(db_error)?;
            Ok(v)
        }
        Backend::Sqlite => {
            let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(db_error)?;
            let v = apply(&mut tx, backend, target, &version_table).await?;
            tx.commit().await.map_err(db_error)?;
            Ok(v)
        }
    }
}

async fn apply(
    conn: &mut AnyConnection,
    backend: Backend,
    target: i64,
    version_table: &str,
) -> Result<i64> {
    sqlx::raw_sql(version_table)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    let mut current = current_version(conn).await?;
    for (version, description, statements) in versions(backend) {
        if version <= current || version > target {
            continue;
        }
        for statement in &statements {
            sqlx::raw_sql(statement)
                .execute(&mut *conn)
                .await
                .map_err(|e| db_error(e).context(format!("migration {version}")))?;
        }
        let mut sql = Sql::new(
            backend,
            &format!("INSERT INTO {VERSION_TABLE} (version, description, applied_at) VALUES ("),
        );
        sql.bind(version)
            .push(", ")
            .bind(description.to_owned())
            .push(", ")
            .bind(Utc::now().timestamp())
            .push(")");
        sql.build()?.execute(&mut *conn).await.map_err(db_error)?;
        tracing::info!(version, description, "applied cmdb schema migration");
        current = version;
    }
    Ok(current)
}

/// The highest applied version, 0 for an empty database.
pub(crate) async fn current_version(conn: &mut AnyConnection) -> Result<i64> {
    let row = sqlx::raw_sql(&format!(
        "SELECT COUNT(*), COALESCE(MAX(version), 0) FROM {VERSION_TABLE}"
    ))
    .fetch_one(&mut *conn)
    .await
    .map_err(db_error)?;
    int(&row, 1)
}
