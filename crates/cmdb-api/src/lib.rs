//! The cmdb HTTP API: an axum [`Router`] to mount in your own service.
//!
//! | route | what it does |
//! |---|---|
//! | `POST /secrets` | store a credential (201, masked, `Location: /secrets/<id>`) |
//! | `GET /secrets?page_size=&page_number=&keywords=` | `{"total", "items"}` of masked secrets |
//! | `GET /secrets/:id` | one secret, masked |
//! | `PATCH /secrets/:id` | change a secret's description, regions, rate, address, TLS settings or credentials (masked; sealed again) |
//! | `DELETE /secrets/:id?release_hosts=` | delete (204; 409 while one of its syncs runs); its hosts are kept unless `release_hosts=true` |
//! | `POST /secrets/:id/sync` | sync a region, or every region with `"*"` (or none): `region`, `resource_type`, `wait`, `details`, `force_release` as JSON or query; `wait=false` answers 202 with `Location: /tasks/<id>` |
//! | `GET /tasks?secret_id=&state=&region=&parent_id=&page_size=&page_number=`, `GET /tasks/:id` | sync tasks from the run store, most recent first: counters, failed details, error, runner; a sync of every region is a task of region `*` and one task per region (`parent_id`) |
//! | `GET /hosts?vendor=&region=&secret_id=&status=&keywords=&released=&page_size=&page_number=` | stored hosts |
//! | `GET /hosts/:vendor/:instance_id` | one stored host |
//! | `GET /databases?…` (the filters of `/hosts`), `GET /databases/:vendor/:instance_id` | stored database instances (RDS), when the syncer has a database store |
//! | `GET /healthz`, `GET /openapi.json` | liveness; the OpenAPI 3.1 document of these routes |
//! | `GET /metrics` | Prometheus text: vendor calls, sync runs and hosts ([`Api::with_metrics`]) |
//!
//! Tasks are kept in a [`cmdb_core::RunStore`] ([`Api::with_run_store`]; in
//! memory by default), so that every server sharing it answers the same and tasks outlive
//! a restart. A `running` task whose server is gone (its scope lock is free) is marked
//! `interrupted` when the server starts ([`Api::start`]) and whenever it is read; finished
//! tasks are pruned after [`Api::with_run_retention`] (30 days by default).
//!
//! Every route but `/healthz` needs `Authorization: Bearer <token>` (the scheme in any
//! case): [`Api::new`] takes the token and refuses an empty one; only
//! [`Api::without_authentication`], named for what it does, serves without one (and logs
//! a warning). Errors answer `{"code": "<error kind>", "message": "..."}` with 400, 401,
//! 403, 404, 409, 413, 422, 429, 502, 504 or 500; a 500 (and a task's or a sync answer's
//! `error` of a store or server failure) says only `internal error (request id <id>)` and
//! carries that `request_id`, under which the details are logged. At most
//! [`DEFAULT_MAX_RUNNING_SYNCS`] syncs run at once ([`Api::with_max_concurrent_syncs`]);
//! past it a sync is answered 429 `rate_limited` with `Retry-After`. No answer or log line
//! carries an API secret or the token.
//!
//! ```no_run
//! use std::sync::Arc;
//! use cmdb_api::Api;
//! use cmdb_core::MemoryHostStore;
//! use cmdb_secret::{Cipher, MemorySecretStore};
//! use cmdb_sync::{ProviderRegistry, Syncer};
//!
//! # async fn serve() -> std::io::Result<()> {
//! let syncer = Syncer::new(
//!     Arc::new(MemorySecretStore::new()),
//!     Arc::new(MemoryHostStore::new()),
//!     Arc::new(Cipher::from_env().expect("CMDB_ENCRYPT_KEY")),
//!     ProviderRegistry::with_builtin_providers(),
//! );
//! let api = Api::new(Arc::new(syncer), "change-me").expect("a non-empty token");
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8060").await?;
//! axum::serve(listener, api.router()).await
//! # }
//! ```

mod error;
mod openapi;
mod routes;
mod schedule;
mod tasks;
mod telemetry;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use sha2::{Digest, Sha256};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use cmdb_core::{ErrorKind, MemoryHostStore, RunStore};
use cmdb_secret::{Cipher, SecretStore};
use cmdb_sync::Syncer;

pub use error::{status_of, ApiError, ErrorBody};
pub use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
pub use schedule::{backoff, DEFAULT_SCHEDULE_TICK, MAX_BACKOFF};
pub use tasks::{RunOutcome, TaskRegistry, DEFAULT_MAX_RUNNING_SYNCS, DEFAULT_RUN_RETENTION};
pub use telemetry::{
    prometheus_builder, DATABASES, HOSTS, SYNC_RUN_BUCKETS, VENDOR_REQUEST_BUCKETS,
};

use routes::AppState;

/// The default largest request body: secrets and sync options are small.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// The API: its configuration, its tasks and the router that serves it.
#[derive(Clone)]
pub struct Api {
    syncer: Arc<Syncer>,
    secrets: Arc<dyn SecretStore>,
    cipher: Arc<Cipher>,
    runs: Arc<dyn RunStore>,
    tasks: TaskRegistry,
    token_digest: Option<[u8; 32]>,
    body_limit: usize,
    max_running: usize,
    metrics: Option<PrometheusHandle>,
    run_retention: Duration,
    /// How often due syncs are looked for; `None`: this server runs no schedules.
    schedule_tick: Option<Duration>,
    runner: Option<String>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("syncer", &self.syncer)
            .field("tasks", &self.tasks)
            .field("token", &self.token_digest.map(|_| "<set>"))
            .field("body_limit", &self.body_limit)
            .field("metrics", &self.metrics.is_some())
            .field("run_retention", &self.run_retention)
            .field("schedule_tick", &self.schedule_tick)
            .finish()
    }
}

impl Api {
    /// An API over `syncer` (and its stores) requiring `Authorization: Bearer <token>` on
    /// every route but `/healthz`, keeping its tasks in memory until
    /// [`with_run_store`](Self::with_run_store) gives it a store. Only a digest of the
    /// token (trimmed) is kept.
    ///
    /// Errors: [`InvalidInput`](ErrorKind::InvalidInput) for an empty or blank token,
    /// which would let anyone in, or a syncer without a secret store (made by
    /// [`Syncer::for_host_store`]): the API stores and syncs secrets.
    pub fn new(syncer: Arc<Syncer>, token: impl AsRef<str>) -> cmdb_core::Result<Api> {
        let token = token.as_ref().trim();
        if token.is_empty() {
            return Err(cmdb_core::Error::invalid_field(
                "token",
                "is empty: the API would accept anyone",
            ));
        }
        let mut api = Api::without_authentication(syncer)?;
        api.token_digest = Some(Sha256::digest(token.as_bytes()).into());
        Ok(api)
    }

    /// An API that serves every route **without any authentication**: for tests, or
    /// behind a proxy that authenticates every request itself. Anyone who reaches it can
    /// add secrets, run syncs and read the inventory; [`router`](Self::router) logs a
    /// warning saying so.
    ///
    /// Errors: [`InvalidInput`](ErrorKind::InvalidInput) for a syncer without a secret
    /// store.
    pub fn without_authentication(syncer: Arc<Syncer>) -> cmdb_core::Result<Api> {
        let (Some(secrets), Some(cipher)) = (syncer.secret_store(), syncer.cipher()) else {
            return Err(cmdb_core::Error::new(
                ErrorKind::InvalidInput,
                "the API needs a syncer with a secret store and a cipher (Syncer::new)",
            ));
        };
        let (secrets, cipher) = (Arc::clone(secrets), Arc::clone(cipher));
        let runs: Arc<dyn RunStore> = Arc::new(MemoryHostStore::new());
        let tasks = TaskRegistry::new(
            Arc::clone(&runs),
            Arc::clone(syncer.host_store()),
            DEFAULT_MAX_RUNNING_SYNCS,
        );
        Ok(Api {
            syncer,
            secrets,
            cipher,
            runs,
            tasks,
            token_digest: None,
            body_limit: DEFAULT_BODY_LIMIT,
            max_running: DEFAULT_MAX_RUNNING_SYNCS,
            metrics: None,
            run_retention: DEFAULT_RUN_RETENTION,
            schedule_tick: Some(DEFAULT_SCHEDULE_TICK),
            runner: None,
        })
    }

    /// A registry over the current run store and limit (replacing the one before, which
    /// has run nothing yet: the `with_*` methods configure an API before it serves).
    fn new_tasks(&mut self) {
        self.tasks = TaskRegistry::new(
            Arc::clone(&self.runs),
            Arc::clone(self.syncer.host_store()),
            self.max_running,
        );
        if let Some(runner) = &self.runner {
            self.tasks = self.tasks.clone().with_runner(runner.clone());
        }
    }

    /// Looks for due scheduled syncs every `tick` (default [`DEFAULT_SCHEDULE_TICK`],
    /// 15 s) once [`start`](Self::start)ed: a secret's `sync_interval` is kept to
    /// within about a tick.
    pub fn with_schedule_tick(mut self, tick: Duration) -> Api {
        self.schedule_tick = Some(tick.max(Duration::from_millis(10)));
        self
    }

    /// Runs no scheduled syncs in this server (other replicas sharing the store still
    /// do); syncs asked for through the API still run.
    pub fn without_schedules(mut self) -> Api {
        self.schedule_tick = None;
        self
    }

    /// Names this server's process `runner` in the tasks it runs ([`SyncRun::runner`](cmdb_core::SyncRun::runner));
    /// by default its host name and process id, `host:pid`.
    pub fn with_runner(mut self, runner: impl Into<String>) -> Api {
        self.runner = Some(runner.into());
        self.new_tasks();
        self
    }

    /// Sets the largest request body accepted (413 beyond).
    pub fn with_body_limit(mut self, bytes: usize) -> Api {
        self.body_limit = bytes;
        self
    }

    /// Keeps the sync tasks in `runs` (a [`SqlStore`](https://docs.rs/cmdb-store-sql),
    /// usually the one the syncer writes hosts to), so that every server sharing it sees
    /// them and they outlive a restart. Without it, tasks live in this process's memory.
    pub fn with_run_store(mut self, runs: Arc<dyn RunStore>) -> Api {
        self.runs = runs;
        self.new_tasks();
        self
    }

    /// Keeps finished tasks for `retention` (default [`DEFAULT_RUN_RETENTION`], 30 days);
    /// older ones are pruned by [`start`](Self::start) and then every hour.
    pub fn with_run_retention(mut self, retention: Duration) -> Api {
        self.run_retention = retention;
        self
    }

    /// Runs at most `n` syncs at once (default [`DEFAULT_MAX_RUNNING_SYNCS`]); past it,
    /// `POST /secrets/:id/sync` answers 429 `rate_limited` with `Retry-After`.
    pub fn with_max_concurrent_syncs(mut self, n: usize) -> Api {
        self.max_running = n.max(1);
        self.new_tasks();
        self
    }

    /// Serves `GET /metrics` from `handle`, the handle of the Prometheus recorder the
    /// application installed as the process's global `metrics` recorder (see
    /// [`prometheus_builder`]), and describes cmdb's metrics to it. Each scrape first
    /// counts the stored hosts into the [`HOSTS`] gauge, then answers what the recorder
    /// holds: every metric the process records through the `metrics` facade, cmdb's and
    /// the application's own.
    ///
    /// The recorder is the application's to install, once: a library that installed a
    /// global recorder would take that choice from the application. Without this call,
    /// `GET /metrics` answers 404. `install_recorder` starts no upkeep task: call
    /// [`PrometheusHandle::run_upkeep`] every few seconds, as `examples/server.rs` does,
    /// so that histogram samples are folded in between scrapes.
    pub fn with_metrics(mut self, handle: PrometheusHandle) -> Api {
        telemetry::describe_metrics();
        self.metrics = Some(handle);
        self
    }

    /// The sync tasks.
    pub fn tasks(&self) -> &TaskRegistry {
        &self.tasks
    }

    /// Readies the tasks when the server starts, before it serves: marks `interrupted`
    /// the `running` tasks whose server is gone (their scope lock is free), prunes
    /// finished tasks older than the retention, and does both again every hour until
    /// [`shutdown`](Self::shutdown). Then runs the secrets' schedules (unless
    /// [`without_schedules`](Self::without_schedules)): every tick it claims the due
    /// syncs no other server sharing the secret store claimed first, and syncs every
    /// region of each as a task whose trigger is `schedule`.
    ///
    /// Errors: the run store's, when it cannot be read.
    pub async fn start(&self) -> cmdb_core::Result<()> {
        self.tasks.start_maintenance(self.run_retention).await?;
        if let Some(tick) = self.schedule_tick {
            schedule::spawn_scheduler(
                Arc::clone(&self.syncer),
                Arc::clone(&self.secrets),
                &self.tasks,
                tick,
            );
        }
        Ok(())
    }

    /// Stops running syncs at their next page boundary and waits until their ends are
    /// stored: their tasks say they were interrupted by the shutdown. Call it when the
    /// server shuts down.
    pub async fn shutdown(&self) {
        self.tasks.shutdown().await;
    }

    /// The router with every route.
    pub fn router(&self) -> Router {
        if self.token_digest.is_none() {
            tracing::warn!(
                "the API serves every route WITHOUT AUTHENTICATION: anyone who reaches it \
                 can add secrets, run syncs and read the inventory"
            );
        }
        let (router, document) = routes_and_document(self.token_digest);
        let state = AppState {
            syncer: Arc::clone(&self.syncer),
            secrets: Arc::clone(&self.secrets),
            cipher: Arc::clone(&self.cipher),
            tasks: self.tasks.clone(),
            openapi: Arc::new(document),
            metrics: self.metrics.clone(),
        };
        router
            .fallback(routes::not_found)
            .layer(DefaultBodyLimit::max(self.body_limit))
            .with_state(state)
    }
}

/// Every route, and the OpenAPI document of exactly those routes: each handler's path,
/// method and documentation come from its `#[utoipa::path]`. Every route but `/healthz`
/// checks the token.
fn routes_and_document(
    token_digest: Option<[u8; 32]>,
) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let protected = OpenApiRouter::new()
        .routes(routes!(routes::openapi))
        .routes(routes!(routes::create_secret, routes::list_secrets))
        .routes(routes!(
            routes::get_secret,
            routes::patch_secret,
            routes::delete_secret
        ))
        .routes(routes!(routes::sync_secret))
        .routes(routes!(routes::list_tasks))
        .routes(routes!(routes::get_task))
        .routes(routes!(routes::list_hosts))
        .routes(routes!(routes::get_host))
        .routes(routes!(routes::list_databases))
        .routes(routes!(routes::get_database))
        .routes(routes!(routes::metrics))
        .route_layer(middleware::from_fn_with_state(token_digest, require_token));
    let (router, mut document) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(routes::healthz))
        .merge(protected)
        .split_for_parts();
    openapi::optional_sync_body(&mut document);
    (router, document)
}

/// Checks the bearer token in constant time (on digests), logging no token.
async fn require_token(
    State(expected): State<Option<[u8; 32]>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(expected) = expected else {
        return Ok(next.run(request).await);
    };
    // `Bearer` in any case (RFC 9110: schemes are case-insensitive); the token trimmed,
    // as `Api::new` trimmed it.
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim_start().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| -> [u8; 32] { Sha256::digest(t.trim().as_bytes()).into() });
    let ok = presented.is_some_and(|p| {
        p.iter()
            .zip(expected.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    });
    if !ok {
        tracing::warn!(path = %request.uri().path(), "request without a valid bearer token");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorKind::Unauthenticated,
            "a valid `Authorization: Bearer <token>` header is required",
        ));
    }
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::routes_and_document;
    use serde_json::{json, Value};

    fn document() -> Value {
        serde_json::to_value(routes_and_document(None).1).unwrap()
    }

    #[test]
    fn the_document_lists_every_route_once_with_its_security() {
        let doc = document();
        let paths = doc["paths"].as_object().unwrap();
        let mut operations: Vec<String> = Vec::new();
        for (path, item) in paths {
            for (method, op) in item.as_object().unwrap() {
                operations.push(format!("{} {path}", method.to_uppercase()));
                let expected = if path == "/healthz" {
                    Value::Null
                } else {
                    json!([{"bearer": []}])
                };
                assert_eq!(op["security"], expected, "{method} {path}");
                for (status, response) in op["responses"].as_object().unwrap() {
                    // axum's own answer to a sync body past the limit is plain text.
                    let plain = path == "/secrets/{id}/sync" && status == "413";
                    if (status.starts_with('4') || status.starts_with('5')) && !plain {
                        assert_eq!(
                            response["content"]["application/json"]["schema"]["$ref"],
                            "#/components/schemas/ErrorBody",
                            "{method} {path} {status}"
                        );
                    }
                }
                if path != "/healthz" {
                    assert!(op["responses"]["401"].is_object(), "{method} {path} 401");
                }
            }
        }
        operations.sort();
        assert_eq!(
            operations,
            [
                "DELETE /secrets/{id}",
                "GET /databases",
                "GET /databases/{vendor}/{instance_id}",
                "GET /healthz",
                "GET /hosts",
                "GET /hosts/{vendor}/{instance_id}",
                "GET /metrics",
                "GET /openapi.json",
                "GET /secrets",
                "GET /secrets/{id}",
                "GET /tasks",
                "GET /tasks/{id}",
                "PATCH /secrets/{id}",
                "POST /secrets",
                "POST /secrets/{id}/sync",
            ]
        );
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"],
            json!({"type": "http", "scheme": "bearer"})
        );
    }

    #[test]
    fn every_reference_resolves() {
        fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        out.push(r);
                    }
                    m.values().for_each(|v| refs(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let doc = document();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(found.len() > 20, "{found:?}");
        for r in found {
            let name = r.strip_prefix("#/components/schemas/").unwrap_or(r);
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "{r} is not in the document"
            );
        }
    }

    #[test]
    fn the_sync_route_documents_its_options_and_answers() {
        let doc = document();
        let sync = &doc["paths"]["/secrets/{id}/sync"]["post"];
        let names: Vec<_> = sync["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "id",
                "region",
                "resource_type",
                "wait",
                "details",
                "force_release"
            ]
        );
        assert_eq!(
            sync["requestBody"]["required"], false,
            "the body is optional"
        );
        assert_eq!(
            sync["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/SyncParams"
        );
        for status in [
            "200", "202", "400", "403", "404", "409", "422", "429", "502", "504",
        ] {
            assert!(sync["responses"][status].is_object(), "{status}");
        }
        assert!(sync["responses"]["429"]["headers"]["Retry-After"].is_object());
        assert!(sync["responses"]["202"]["headers"]["Location"].is_object());
        let created = &doc["paths"]["/secrets"]["post"]["responses"]["201"];
        assert!(created["headers"]["Location"].is_object(), "{created}");
        let delete = &doc["paths"]["/secrets/{id}"]["delete"];
        assert_eq!(delete["parameters"][1]["name"], "release_hosts");
        assert!(delete["responses"]["409"].is_object());
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["SyncResponse"]["properties"]["details_truncated"]["type"],
            "boolean"
        );
        assert_eq!(
            schemas["SyncParams"]["additionalProperties"], false,
            "unknown options are refused"
        );
        let tasks = &doc["paths"]["/tasks"]["get"]["parameters"];
        for name in ["secret_id", "state", "region", "page_size", "page_number"] {
            assert!(
                tasks.as_array().unwrap().iter().any(|p| p["name"] == name),
                "GET /tasks documents {name}"
            );
        }
    }

    #[test]
    fn secrets_are_answered_masked_and_taken_write_only() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        let answered = |path: &str, method: &str, status: &str| {
            doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
                ["$ref"]
                .clone()
        };
        assert_eq!(
            answered("/secrets", "post", "201"),
            "#/components/schemas/MaskedSecret"
        );
        assert_eq!(
            answered("/secrets/{id}", "get", "200"),
            "#/components/schemas/MaskedSecret"
        );
        assert_eq!(
            schemas["SecretList"]["properties"]["items"]["items"]["$ref"],
            "#/components/schemas/MaskedSecret"
        );
        assert_eq!(
            schemas["MaskedSecret"]["properties"]["api_secret"]["example"],
            "******"
        );
        assert!(
            schemas.get("Secret").is_none(),
            "the stored (encrypted) secret is never answered"
        );
        let new = &schemas["NewSecret"];
        assert_eq!(new["properties"]["api_secret"]["writeOnly"], true);
        assert_eq!(new["properties"]["session_token"]["writeOnly"], true);
        let required = new["required"].as_array().unwrap();
        assert!(!required.iter().any(|f| f == "session_token"), "optional");
        let masked = &schemas["MaskedSecret"]["properties"];
        assert_eq!(masked["session_token_set"]["type"], "boolean");
        assert!(
            masked.get("session_token").is_none(),
            "the session token is never answered"
        );
        assert_eq!(new["additionalProperties"], false);

        assert_eq!(
            answered("/secrets/{id}", "patch", "200"),
            "#/components/schemas/MaskedSecret"
        );
        let patch = &schemas["SecretPatch"];
        assert_eq!(patch["additionalProperties"], false);
        assert_eq!(patch["properties"]["api_secret"]["writeOnly"], true);
        assert_eq!(patch["properties"]["session_token"]["writeOnly"], true);
        assert!(
            patch.get("required").is_none(),
            "every field is optional: {patch}"
        );
        for status in ["400", "404", "409", "422"] {
            assert!(
                doc["paths"]["/secrets/{id}"]["patch"]["responses"][status].is_object(),
                "{status}"
            );
        }
    }
}
