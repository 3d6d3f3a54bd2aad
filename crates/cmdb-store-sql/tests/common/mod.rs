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
}

/// [`builders`] with a way to run raw SQL next to each store.
pub fn raw_backends(name: &str) -> Vec<Raw> {
    let sqlite = sqlite_url(name);
    let mut out = vec![Raw {
        label: "sqlite-file",
        builder: SqlStore::builder(sqlite.clone()),
        url: sqlite,
        prefix: String::new(),
    }];
    if let Some(s) = postgres_server(name) {
        out.push(Raw {
            label: "postgres",
            builder: s.builder,
            url: s.url,
            prefix: format!("\"{}\".", s.schema),
        });
    }
    if let Some(s) = mysql_server(name) {
        out.push(Raw {
            label: "mysql",
            builder: s.builder,
            url: s.url,
            prefix: format!("`{}`.", s.schema),
        });
    }
    out
}
