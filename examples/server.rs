//! The cmdb HTTP server: the `cmdb-api` router over a SQL store.
//!
//! ```sh
//! cargo run --release --example server
//! ```
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `CMDB_DATABASE_URL` | `sqlite://cmdb.db` | `sqlite://path`, `postgres://…` or `mysql://…` |
//! | `CMDB_LISTEN` | `127.0.0.1:8060` | address to listen on |
//! | `CMDB_MAX_CONCURRENT_SYNCS` | `16` | syncs run at once; more get 429 with `Retry-After` |
//! | `CMDB_ENCRYPT_KEY` | a key file next to the SQLite database | base64 of the 32-byte key encrypting secrets; required for other databases |
//! | `CMDB_DECRYPT_KEYS` | none | older keys still accepted (rotation) |
//! | `CMDB_API_TOKEN` | generated and printed once | bearer token of every route but `/healthz` |
//!
//! SIGINT or SIGTERM stops the server gracefully: running syncs stop at a page boundary
//! and their tasks say so.

use std::path::PathBuf;
use std::sync::Arc;

use cmdb::api::Api;
use cmdb::secret::Cipher;
use cmdb::store_sql::SqlStore;
use cmdb::sync::{ProviderRegistry, SyncOptions, Syncer};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The SQLite database file of a `sqlite://` URL, if it names one.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.contains(":memory:")).then(|| PathBuf::from(path))
}

/// The cipher from `CMDB_ENCRYPT_KEY`, or from a key file next to a SQLite database.
fn cipher(database_url: &str) -> Result<Cipher, BoxError> {
    if std::env::var_os("CMDB_ENCRYPT_KEY").is_some() {
        return Ok(Cipher::from_env()?);
    }
    let Some(db) = sqlite_file(database_url) else {
        return Err("CMDB_ENCRYPT_KEY is required unless the database is a SQLite file".into());
    };
    let mut key_file = db.into_os_string();
    key_file.push(".key");
    let key_file = PathBuf::from(key_file);
    let (cipher, created) = Cipher::load_or_create_key_file(&key_file)?;
    if created {
        tracing::warn!(
            path = %key_file.display(),
            "CMDB_ENCRYPT_KEY is not set: created a new key file (mode 0600); keep it, \
             the stored secrets cannot be decrypted without it"
        );
    }
    Ok(cipher)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let database_url =
        std::env::var("CMDB_DATABASE_URL").unwrap_or_else(|_| "sqlite://cmdb.db".to_owned());
    let listen = std::env::var("CMDB_LISTEN").unwrap_or_else(|_| "127.0.0.1:8060".to_owned());
    let cipher = Arc::new(cipher(&database_url)?);
    let store = Arc::new(SqlStore::connect(&database_url).await?);
    tracing::info!(database = %cmdb::store_sql::redact_url(&database_url), "store ready");

    let token = match std::env::var("CMDB_API_TOKEN") {
        // Set but blank is refused by `Api::new` below, never replaced.
        Ok(t) => t,
        Err(_) => {
            let t = hex_token();
            // Printed once, to the terminal, so the operator can use it; never logged.
            println!("CMDB_API_TOKEN is not set; this run's API token is: {t}");
            t
        }
    };

    // Secrets' endpoints may reach loopback and private addresses (private clouds,
    // on-premises vCenters, simulators) only when the operator says so.
    let allow_private = match std::env::var("CMDB_ALLOW_PRIVATE_ADDRESSES") {
        Ok(v) => v.parse::<bool>().map_err(|_| {
            format!("CMDB_ALLOW_PRIVATE_ADDRESSES must be true or false, not {v:?}")
        })?,
        Err(_) => false,
    };
    if allow_private {
        tracing::warn!("CMDB_ALLOW_PRIVATE_ADDRESSES=true: secrets may point vendor requests at loopback and private addresses");
    }
    let syncer = Syncer::new(
        store.clone(),
        store,
        cipher,
        ProviderRegistry::with_builtin_providers(),
    )
    .with_options(SyncOptions::default().with_private_addresses(allow_private));
    let max_syncs = match std::env::var("CMDB_MAX_CONCURRENT_SYNCS") {
        Ok(v) => v.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
            format!("CMDB_MAX_CONCURRENT_SYNCS must be a positive number, not {v:?}")
        })?,
        Err(_) => cmdb::api::DEFAULT_MAX_RUNNING_SYNCS,
    };
    let api = Api::new(Arc::new(syncer), &token)
        .map_err(|e| format!("CMDB_API_TOKEN: {e}"))?
        .with_max_concurrent_syncs(max_syncs);
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    tracing::info!(address = %listener.local_addr()?, "listening");

    let stopping = api.clone();
    axum::serve(listener, api.router())
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            tracing::info!("shutting down: stopping running syncs at a page boundary");
            stopping.shutdown().await;
        })
        .await?;
    tracing::info!("stopped");
    Ok(())
}

/// 32 random bytes as hex, from the same generator as encryption keys.
fn hex_token() -> String {
    Cipher::generate_key()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
