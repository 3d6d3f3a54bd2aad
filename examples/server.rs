//! The cmdb HTTP server: the `cmdb-api` router over a SQL store.
//!
//! ```sh
//! cargo run --release --example server --features full
//! ```
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `CMDB_DATABASE_URL` | `sqlite://cmdb.db` | `sqlite://path`, `postgres://…` or `mysql://…` |
//! | `CMDB_LISTEN` | `127.0.0.1:8060` | address to listen on |
//! | `CMDB_MAX_CONCURRENT_SYNCS` | `16` | syncs run at once; more get 429 with `Retry-After` |
//! | `CMDB_ENCRYPT_KEY` | a key file next to the SQLite database | base64 of the 32-byte key encrypting secrets; required for other databases |
//! | `CMDB_DECRYPT_KEYS` | none | older keys still accepted (rotation) |
//! | `CMDB_API_TOKEN` | required | bearer token of every route but `/healthz` (`Bearer` in any case); unset or blank, the server refuses to start |
//! | `CMDB_API_ALLOW_UNAUTHENTICATED` | `false` | `true` serves every route without a token, when `CMDB_API_TOKEN` is unset (tests, or behind a proxy that authenticates) |
//! | `CMDB_ALLOW_PRIVATE_ADDRESSES` | `false` | `true` lets secrets' endpoints reach loopback and private addresses |
//! | `CMDB_RUN_RETENTION` | `30d` | how long finished sync tasks are kept: a number of seconds, or with `s`, `m`, `h` or `d` |
//! | `CMDB_SCHEDULES` | `true` | `false`: this server runs no scheduled syncs (other replicas still do) |
//! | `CMDB_SCHEDULE_TICK` | `15s` | how often this server looks for due scheduled syncs (`500ms`, `15s`, `1m`) |
//! | `CMDB_RUNNER` | `host:pid` | the name of this server in the tasks it runs (`runner`) |
//! | `RUST_LOG` | `info` | log filter (and, with OTLP, which spans are exported) |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | none | built with `--features otlp`: export the `sync` and `vendor_call` spans over OTLP (HTTP/protobuf, plain http, e.g. `http://127.0.0.1:4318`); the other `OTEL_*` variables apply |
//!
//! Sync tasks are kept in the database: every server sharing it lists the same, and they
//! outlive a restart. At start, the tasks a dead server left `running` are marked
//! `interrupted` and finished tasks past the retention are pruned (then every hour).
//! Secrets with a `sync_interval` are synced by themselves: every server sharing the
//! database looks for due syncs, and each due sync is claimed by one of them.
//! `GET /metrics` answers Prometheus text (with the token, as every route but
//! `/healthz`). SIGINT or SIGTERM stops the server gracefully: running syncs stop at a
//! page boundary and their tasks say so.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use cmdb::api::Api;
use cmdb::secret::Cipher;
use cmdb::store_sql::SqlStore;
use cmdb::sync::{ProviderRegistry, SyncOptions, Syncer};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const NO_TOKEN: &str = "CMDB_API_TOKEN is not set: set it to the bearer token clients must \
    send (or set CMDB_API_ALLOW_UNAUTHENTICATED=true to serve every route without \
    authentication)";

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

/// The log subscriber's extras, flushed when the server stops.
#[derive(Default)]
struct Tracing {
    /// Exports spans over OTLP.
    #[cfg(feature = "otlp")]
    otlp: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Tracing {
    fn drop(&mut self) {
        #[cfg(feature = "otlp")]
        if let Some(provider) = self.otlp.take() {
            if let Err(e) = provider.shutdown() {
                eprintln!("exporting the last spans over OTLP failed: {e}");
            }
        }
    }
}

/// Logs to standard output, filtered by `RUST_LOG` (default `info`); with the `otlp`
/// feature and `OTEL_EXPORTER_OTLP_ENDPOINT` set, exports the same spans over OTLP.
fn init_tracing() -> Result<Tracing, BoxError> {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer());
    #[cfg(feature = "otlp")]
    if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() {
        use opentelemetry::trace::TracerProvider as _;

        // Reads OTEL_EXPORTER_OTLP_ENDPOINT (and the other OTEL_EXPORTER_OTLP_*
        // variables); spans are sent in batches from a thread of the exporter's own.
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()?;
        let mut resource = opentelemetry_sdk::Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name("cmdb");
        }
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        let tracer = provider.tracer("cmdb");
        logs.with(tracing_opentelemetry::layer().with_tracer(tracer))
            .init();
        tracing::info!("exporting spans over OTLP");
        return Ok(Tracing {
            otlp: Some(provider),
        });
    }
    logs.init();
    Ok(Tracing::default())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let _tracing = init_tracing()?;

    // Checked before anything else: a server that would let anyone in never starts.
    let token = std::env::var("CMDB_API_TOKEN").ok();
    if token.as_deref().is_some_and(|t| t.trim().is_empty()) {
        return Err("CMDB_API_TOKEN is set but blank: the API would accept anyone".into());
    }
    let unauthenticated = env_flag("CMDB_API_ALLOW_UNAUTHENTICATED")?;
    if token.is_none() && !unauthenticated {
        return Err(NO_TOKEN.into());
    }
    // Secrets' endpoints may reach loopback and private addresses (private clouds,
    // on-premises vCenters, simulators) only when the operator says so.
    let allow_private = env_flag("CMDB_ALLOW_PRIVATE_ADDRESSES")?;

    let database_url =
        std::env::var("CMDB_DATABASE_URL").unwrap_or_else(|_| "sqlite://cmdb.db".to_owned());
    let listen = std::env::var("CMDB_LISTEN").unwrap_or_else(|_| "127.0.0.1:8060".to_owned());
    let cipher = Arc::new(cipher(&database_url)?);
    let store = Arc::new(SqlStore::connect(&database_url).await?);
    tracing::info!(database = %cmdb::store_sql::redact_url(&database_url), "store ready");
    if allow_private {
        tracing::warn!("CMDB_ALLOW_PRIVATE_ADDRESSES=true: secrets may point vendor requests at loopback and private addresses");
    }
    let syncer = Syncer::new(
        store.clone(),
        store.clone(),
        cipher,
        ProviderRegistry::with_builtin_providers(),
    )
    .with_options(SyncOptions::default().with_private_addresses(allow_private))
    // Database instances (`resource_type: rds`) go to the same database.
    .with_database_store(store.clone());
    let max_syncs = match std::env::var("CMDB_MAX_CONCURRENT_SYNCS") {
        Ok(v) => v.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
            format!("CMDB_MAX_CONCURRENT_SYNCS must be a positive number, not {v:?}")
        })?,
        Err(_) => cmdb::api::DEFAULT_MAX_RUNNING_SYNCS,
    };
    let retention = match std::env::var("CMDB_RUN_RETENTION") {
        Ok(v) => parse_duration(&v).ok_or_else(|| {
            format!("CMDB_RUN_RETENTION must be like 30d, 12h or 3600, not {v:?}")
        })?,
        Err(_) => cmdb::api::DEFAULT_RUN_RETENTION,
    };
    let syncer = Arc::new(syncer);
    // The process's metrics recorder, whose text `GET /metrics` answers. Histogram samples
    // are folded in every few seconds, scraped or not.
    let metrics = cmdb::api::prometheus_builder().install_recorder()?;
    let upkeep = metrics.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    let api = match token {
        Some(token) => Api::new(syncer, token).map_err(|e| format!("CMDB_API_TOKEN: {e}"))?,
        // `Api::router` logs a warning that anyone may call every route.
        None => Api::without_authentication(syncer).map_err(|e| e.to_string())?,
    }
    .with_max_concurrent_syncs(max_syncs)
    .with_metrics(metrics)
    .with_run_store(store)
    .with_run_retention(retention);
    let api = if env_flag_or("CMDB_SCHEDULES", true)? {
        match std::env::var("CMDB_SCHEDULE_TICK") {
            Ok(v) => api.with_schedule_tick(
                humantime::parse_duration(v.trim())
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| {
                        format!("CMDB_SCHEDULE_TICK must be like 15s or 500ms, not {v:?}")
                    })?,
            ),
            Err(_) => api,
        }
    } else {
        tracing::info!("CMDB_SCHEDULES=false: this server runs no scheduled syncs");
        api.without_schedules()
    };
    let api = match std::env::var("CMDB_RUNNER") {
        Ok(name) if !name.trim().is_empty() => api.with_runner(name.trim()),
        _ => api,
    };
    // Before serving: the tasks of a server that died are marked interrupted.
    api.start().await?;
    let router = api.router();
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    tracing::info!(address = %listener.local_addr()?, "listening");

    let stopping = api.clone();
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            tracing::info!("shutting down: stopping running syncs at a page boundary");
            stopping.shutdown().await;
        })
        .await?;
    tracing::info!("stopped");
    Ok(())
}

/// A `true`/`false` environment variable, `false` when unset.
fn env_flag(name: &str) -> Result<bool, BoxError> {
    env_flag_or(name, false)
}

/// A `true`/`false` environment variable, `default` when unset.
fn env_flag_or(name: &str, default: bool) -> Result<bool, BoxError> {
    match std::env::var(name) {
        Ok(v) => Ok(v
            .trim()
            .parse::<bool>()
            .map_err(|_| format!("{name} must be true or false, not {v:?}"))?),
        Err(_) => Ok(default),
    }
}

/// A duration as `CMDB_RUN_RETENTION` takes it: a positive whole number of seconds, or of
/// `s`, `m`, `h` or `d`.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().last()? {
        (at, c) if c.is_ascii_alphabetic() => (&text[..at], c.to_ascii_lowercase()),
        _ => (text, 's'),
    };
    let seconds = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    let n: u64 = number.trim().parse().ok().filter(|n| *n > 0)?;
    Some(Duration::from_secs(n.checked_mul(seconds)?))
}
