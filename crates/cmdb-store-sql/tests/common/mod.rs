//! Stores for the tests: SQLite files under the temp dir, in-memory SQLite, and
//! PostgreSQL / MySQL when `CMDB_TEST_POSTGRES_URL` / `CMDB_TEST_MYSQL_URL` are set, each
//! in a schema (database) of its own so tests run in parallel.

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use cmdb_store_sql::{SqlStore, SqlStoreBuilder};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other test of this run or an earlier one uses.
pub fn unique(prefix: &str) -> String {
    let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
    format!(
        "{prefix}_{}_{nanos:x}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A path for a new SQLite file.
pub fn sqlite_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join("cmdb-store-sql-tests");
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(format!("{}.db", unique(name)))
}

pub fn sqlite_url(name: &str) -> String {
    format!("sqlite://{}", sqlite_path(name).display())
}

/// The builders of every backend available: (label, builder). Several calls of a
/// builder's clone reach the same database.
pub fn builders(name: &str) -> Vec<(&'static str, SqlStoreBuilder)> {
    let mut out = vec![("sqlite-file", SqlStore::builder(sqlite_url(name)))];
    if let Some(b) = postgres(name) {
        out.push(("postgres", b));
    }
    if let Some(b) = mysql(name) {
        out.push(("mysql", b));
    }
    out
}

pub fn postgres(name: &str) -> Option<SqlStoreBuilder> {
    postgres_server(name).map(|s| s.builder)
}

pub fn mysql(name: &str) -> Option<SqlStoreBuilder> {
    mysql_server(name).map(|s| s.builder)
}

/// A server database for one test: the store's builder, the server's URL and the schema
/// (MySQL database) the builder keeps its tables in.
pub struct Server {
    pub builder: SqlStoreBuilder,
    pub url: String,
    pub schema: String,
}

pub fn postgres_server(name: &str) -> Option<Server> {
    server("CMDB_TEST_POSTGRES_URL", "postgres", name)
}

pub fn mysql_server(name: &str) -> Option<Server> {
    server("CMDB_TEST_MYSQL_URL", "mysql", name)
}

fn server(var: &str, feature: &str, name: &str) -> Option<Server> {
    let Ok(url) = std::env::var(var) else {
        // A skipped backend must be visible: in CI, where the services run, it fails.
        assert!(
            std::env::var_os("CI").is_none(),
            "{var} must be set in CI (test {name})"
        );
        eprintln!("skipping {feature} for {name}: {var} is not set");
        return None;
    };
    let enabled = match feature {
        "postgres" => cfg!(feature = "postgres"),
        _ => cfg!(feature = "mysql"),
    };
    if !enabled {
        eprintln!("skipping {feature} for {name}: built without the `{feature}` feature");
        return None;
    }
    let schema = unique(&format!("t_{name}"));
    Some(Server {
        builder: SqlStore::builder(url.clone()).schema(schema.clone()),
        url,
        schema,
    })
}

/// A backend for tests that change rows behind the store's back: the store's builder, a
/// server URL for a connection of one's own, and where the store keeps its tables.
pub struct Raw {
    pub label: &'static str,
    pub builder: SqlStoreBuilder,
    url: String,
    /// `"schema".` (PostgreSQL), `` `db`. `` (MySQL) or nothing (SQLite).
    prefix: String,
    /// The store's PostgreSQL schema or MySQL database.
    schema: Option<String>,
}

impl Raw {
    /// `table` qualified with the store's schema.
    pub fn table(&self, table: &str) -> String {
        format!("{}{table}", self.prefix)
    }

    /// Runs `sql` on a connection of its own, outside the store's pool.
    pub async fn execute(&self, sql: &str) {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&self.url)
            .await
            .expect("raw connection");
        sqlx::raw_sql(sql).execute(&mut conn).await.expect(sql);
        conn.close().await.expect("close the raw connection");
    }

    /// A connection of its own whose unqualified table names are the store's (the schema
    /// or database created if missing), as a person reading the tables would open.
    pub async fn connect(&self) -> sqlx::AnyConnection {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&self.url)
            .await
            .expect("raw connection");
        let setup = match (self.label, &self.schema) {
            ("postgres", Some(s)) => {
                format!("CREATE SCHEMA IF NOT EXISTS \"{s}\"; SET search_path TO \"{s}\"")
            }
            ("mysql", Some(s)) => format!(
                "CREATE DATABASE IF NOT EXISTS `{s}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin; \
                 USE `{s}`"
            ),
            _ => return conn,
        };
        sqlx::raw_sql(&setup)
            .execute(&mut conn)
            .await
            .expect(&setup);
        conn
    }

    /// Runs `sql` (statements separated by `;`) on a connection from [`Raw::connect`].
    pub async fn execute_in_schema(&self, sql: &str) {
        let mut conn = self.connect().await;
        sqlx::raw_sql(sql).execute(&mut conn).await.expect(sql);
        sqlx::Connection::close(conn).await.expect("close");
    }

    /// The migration directory of this backend.
    pub fn migrations(&self) -> std::path::PathBuf {
        let dir = match self.label {
            "postgres" => "postgres",
            "mysql" => "mysql",
            _ => "sqlite",
        };
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dir)
    }

    /// Makes the database as the earlier migration runner left it at `version` (only 3
    /// and 4 are built): the schema of version 4 and that runner's version table.
    pub async fn create_old_runner_schema(&self, version: i64) {
        let baseline = std::fs::read_to_string(self.migrations().join("0004_baseline.sql"))
            .expect("the baseline migration");
        let versions: Vec<String> = (1..=version)
            .map(|v| format!("({v}, 'version {v}', 0)"))
            .collect();
        self.execute_in_schema(&format!(
            "{baseline}\nCREATE TABLE cmdb_schema_migrations (version BIGINT NOT NULL \
             PRIMARY KEY, description VARCHAR(255) NOT NULL, applied_at BIGINT NOT NULL);\n\
             INSERT INTO cmdb_schema_migrations (version, description, applied_at) VALUES {}",
            versions.join(", ")
        ))
        .await;
    }
}

/// [`builders`] with a way to run raw SQL next to each store.
pub fn raw_backends(name: &str) -> Vec<Raw> {
    let sqlite = sqlite_url(name);
    let mut out = vec![Raw {
        label: "sqlite-file",
        builder: SqlStore::builder(sqlite.clone()),
        // Created if missing, for a database made before any store connects.
        url: format!("{sqlite}?mode=rwc"),
        prefix: String::new(),
        schema: None,
    }];
    if let Some(s) = postgres_server(name) {
        out.push(Raw {
            label: "postgres",
            builder: s.builder,
            url: s.url,
            prefix: format!("\"{}\".", s.schema),
            schema: Some(s.schema),
        });
    }
    if let Some(s) = mysql_server(name) {
        out.push(Raw {
            label: "mysql",
            builder: s.builder,
            url: s.url,
            prefix: format!("`{}`.", s.schema),
            schema: Some(s.schema),
        });
    }
    out
}
