//! Helpers shared by the reliability, secrets and crash tests: a log buffer for
//! `tracing`, fast HTTP settings, secrets over the simulators, database URLs.

#![allow(dead_code, unreachable_pub)]

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cmdb::core::{HostQuery, HostStore, Vendor};
use cmdb::http::{HttpConfig, RetryConfig};
use cmdb::secret::{Cipher, NewSecret, Secret, SecretStore};
use tracing_subscriber::fmt::MakeWriter;

/// Everything a `tracing` subscriber wrote, kept in memory.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    /// The logs so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// A subscriber writing every event at or below `filter` (an `EnvFilter` directive)
    /// into this buffer, without colours.
    pub fn subscriber(&self, filter: &str) -> impl tracing::Subscriber + Send + Sync {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_ansi(false)
            .with_writer(self.clone())
            .finish()
    }
}

/// One write into a [`LogBuffer`].
pub struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogBuffer {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        LogWriter(Arc::clone(&self.0))
    }
}

/// HTTP settings for tests: quick retries (1 to 10 ms apart), up to `attempts` tries,
/// `request_timeout` per try.
pub fn fast_http(request_timeout: Duration, attempts: u32) -> HttpConfig {
    HttpConfig::default()
        .with_connect_timeout(Duration::from_secs(2))
        .with_request_timeout(request_timeout)
        .with_retry(
            RetryConfig::default()
                .with_max_attempts(attempts)
                .with_base_delay(Duration::from_millis(1))
                .with_max_delay(Duration::from_millis(10))
                .with_max_elapsed(Duration::from_secs(20)),
        )
}

/// Seals and stores a secret over a simulator (every region allowed, top request rate).
pub async fn add_secret(
    store: &dyn SecretStore,
    cipher: &Cipher,
    vendor: Vendor,
    api_key: &str,
    api_secret: &str,
    address: String,
) -> Secret {
    let secret = NewSecret::new(vendor, api_key, api_secret)
        .with_description(format!("{vendor} under test"))
        .with_allowed_regions(["*"])
        .with_request_rate(1000)
        .with_address(address)
        // The simulated vCenter listens on plain http on 127.0.0.1.
        .with_allow_insecure_http(vendor == Vendor::Vsphere)
        .seal(cipher)
        .expect("seal");
    store.create(&secret).await.expect("create secret");
    secret
}

/// Hosts of `vendor` in the store, released or active as asked.
pub async fn count(store: &dyn HostStore, vendor: Vendor, released: bool) -> u64 {
    store
        .query(
            &HostQuery::default()
                .with_vendor(vendor)
                .with_released(released),
        )
        .await
        .expect("query")
        .total
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other test of this run or an earlier one uses: letters, digits and `_`.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!(
        "{prefix}_{}_{nanos:x}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A path for a new SQLite file under the temp dir.
pub fn sqlite_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join("cmdb-root-tests");
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(format!("{}.db", unique(name)))
}

/// `CMDB_TEST_POSTGRES_URL`, or `None` after printing why the test skips it.
pub fn postgres_url(test: &str) -> Option<String> {
    match std::env::var("CMDB_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CMDB_TEST_POSTGRES_URL must be set in CI"
            );
            eprintln!("skipping the PostgreSQL part of {test}: CMDB_TEST_POSTGRES_URL is not set");
            None
        }
    }
}

/// One request to the API at `url` with a bearer `token` and an optional JSON body;
/// answers the status and the body text.
pub async fn api_call(
    http: &reqwest::Client,
    token: &str,
    method: &str,
    url: String,
    body: Option<serde_json::Value>,
) -> (u16, String) {
    let mut req = http
        .request(method.parse().unwrap(), url)
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// The `server` example binary `cargo test` built next to this test's own binary.
pub fn server_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe.parent().unwrap().parent().unwrap();
    let bin = target
        .join("examples")
        .join(format!("server{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.exists(), "{} is built by `cargo test`", bin.display());
    bin
}

/// Starts the `server` example on a free port over `database_url`, with `token`, the
/// encryption key `key_b64`, loopback endpoints allowed (the simulators) and `env`;
/// answers the process (killed on drop) and its base URL, read from its `listening`
/// log line.
pub async fn start_server(
    database_url: &str,
    token: &str,
    key_b64: &str,
    env: &[(&str, &str)],
) -> (tokio::process::Child, String) {
    use tokio::io::{AsyncBufReadExt, BufReader};

    let mut child = tokio::process::Command::new(server_binary())
        .env_clear()
        .env("CMDB_DATABASE_URL", database_url)
        .env("CMDB_LISTEN", "127.0.0.1:0")
        .env("CMDB_ENCRYPT_KEY", key_b64)
        .env("CMDB_API_TOKEN", token)
        .env("CMDB_ALLOW_PRIVATE_ADDRESSES", "true")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the server starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let address = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("listening") {
                if let Some(at) = line.find("address=") {
                    return line[at + "address=".len()..]
                        .split_whitespace()
                        .next()
                        .unwrap()
                        .to_owned();
                }
            }
        }
        panic!("the server exited before listening");
    })
    .await
    .expect("the server listens within a minute");
    // Keep draining its output so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, format!("http://{address}"))
}

/// `CMDB_TEST_MYSQL_URL`, or `None` after printing why the test skips it (in CI, where
/// it is set, a skip fails).
pub fn mysql_url(test: &str) -> Option<String> {
    match std::env::var("CMDB_TEST_MYSQL_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CMDB_TEST_MYSQL_URL must be set in CI"
            );
            eprintln!("skipping the MySQL part of {test}: CMDB_TEST_MYSQL_URL is not set");
            None
        }
    }
}

/// Runs one statement on the server of `url` (PostgreSQL or MySQL).
async fn admin(url: &str, statement: &str) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await?;
        sqlx::query(statement).execute(&mut c).await?;
    } else {
        let mut c = sqlx::MySqlConnection::connect(url).await?;
        sqlx::query(statement).execute(&mut c).await?;
    }
    Ok(())
}

/// A new database of its own on the server of `url` (PostgreSQL or MySQL), for a test
/// whose server processes take only a URL: its URL.
pub async fn create_database(url: &str, prefix: &str) -> String {
    let name = unique(prefix).to_lowercase();
    admin(url, &format!("CREATE DATABASE {name}"))
        .await
        .expect("create database");
    let base = url.split('?').next().unwrap();
    format!("{}/{name}", &base[..base.rfind('/').unwrap()])
}

/// Drops the database [`create_database`] made (what `db_url` names) through `url`.
pub async fn drop_database(url: &str, db_url: &str) {
    let name = db_url.rsplit('/').next().unwrap();
    let force = if url.starts_with("postgres") {
        " WITH (FORCE)"
    } else {
        ""
    };
    let _ = admin(url, &format!("DROP DATABASE {name}{force}")).await;
}
