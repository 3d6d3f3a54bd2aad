//! The cmdb HTTP API: an axum [`Router`] to mount in your own service.
//!
//! | route | what it does |
//! |---|---|
//! | `POST /secrets` | store a credential (201, masked) |
//! | `GET /secrets?page_size=&page_number=&keywords=` | `{"total", "items"}` of masked secrets |
//! | `GET /secrets/:id`, `DELETE /secrets/:id` | one secret, masked; delete (204) |
//! | `POST /secrets/:id/sync` | sync a region: `region`, `resource_type`, `wait`, `details`, `force_release` as JSON or query |
//! | `GET /tasks?secret_id=&page_size=&page_number=`, `GET /tasks/:id` | sync tasks, most recent first, with live progress and results (a finished task keeps counters and failed details) |
//! | `GET /hosts?vendor=&region=&secret_id=&status=&keywords=&released=&page_size=&page_number=` | stored hosts |
//! | `GET /hosts/:vendor/:instance_id` | one stored host |
//! | `GET /healthz`, `GET /openapi.json` | liveness; the OpenAPI 3 document |
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
mod tasks;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use sha2::{Digest, Sha256};

use cmdb_core::ErrorKind;
use cmdb_sync::Syncer;

pub use error::{status_of, ApiError, ErrorBody};
pub use tasks::{TaskRegistry, TaskView, DEFAULT_MAX_RUNNING_SYNCS};

use routes::AppState;

/// The default largest request body: secrets and sync options are small.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// The API: its configuration, its tasks and the router that serves it.
#[derive(Clone)]
pub struct Api {
    syncer: Arc<Syncer>,
    tasks: TaskRegistry,
    token_digest: Option<[u8; 32]>,
    body_limit: usize,
    keep_finished: usize,
    max_running: usize,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("syncer", &self.syncer)
            .field("tasks", &self.tasks)
            .field("token", &self.token_digest.map(|_| "<set>"))
            .field("body_limit", &self.body_limit)
            .finish()
    }
}

impl Api {
    /// An API over `syncer` (and its stores) requiring `Authorization: Bearer <token>` on
    /// every route but `/healthz`, keeping the 1,000 most recent finished tasks. Only a
    /// digest of the token (trimmed) is kept.
    ///
    /// Errors: [`InvalidInput`](ErrorKind::InvalidInput) for an empty or blank token,
    /// which would let anyone in.
    pub fn new(syncer: Arc<Syncer>, token: impl AsRef<str>) -> cmdb_core::Result<Api> {
        let token = token.as_ref().trim();
        if token.is_empty() {
            return Err(cmdb_core::Error::invalid_field(
                "token",
                "is empty: the API would accept anyone",
            ));
        }
        let mut api = Api::without_authentication(syncer);
        api.token_digest = Some(Sha256::digest(token.as_bytes()).into());
        Ok(api)
    }

    /// An API that serves every route **without any authentication**: for tests, or
    /// behind a proxy that authenticates every request itself. Anyone who reaches it can
    /// add secrets, run syncs and read the inventory; [`router`](Self::router) logs a
    /// warning saying so.
    pub fn without_authentication(syncer: Arc<Syncer>) -> Api {
        Api {
            syncer,
            tasks: TaskRegistry::new(1000),
            token_digest: None,
            body_limit: DEFAULT_BODY_LIMIT,
            keep_finished: 1000,
            max_running: DEFAULT_MAX_RUNNING_SYNCS,
        }
    }

    /// Sets the largest request body accepted (413 beyond).
    pub fn with_body_limit(mut self, bytes: usize) -> Api {
        self.body_limit = bytes;
        self
    }

    /// Keeps the `n` most recent finished tasks (running ones are always kept).
    pub fn with_finished_tasks_kept(mut self, n: usize) -> Api {
        self.keep_finished = n;
        self.tasks = TaskRegistry::with_limits(self.keep_finished, self.max_running);
        self
    }

    /// Runs at most `n` syncs at once (default [`DEFAULT_MAX_RUNNING_SYNCS`]); past it,
    /// `POST /secrets/:id/sync` answers 429 `rate_limited` with `Retry-After`.
    pub fn with_max_concurrent_syncs(mut self, n: usize) -> Api {
        self.max_running = n.max(1);
        self.tasks = TaskRegistry::with_limits(self.keep_finished, self.max_running);
        self
    }

    /// The sync tasks.
    pub fn tasks(&self) -> &TaskRegistry {
        &self.tasks
    }

    /// Stops running syncs at their next page boundary and waits for them; their tasks
    /// say they were stopped. Call it when the server shuts down.
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
        let state = AppState {
            syncer: Arc::clone(&self.syncer),
            tasks: self.tasks.clone(),
        };
        let protected = Router::new()
            .route("/openapi.json", get(routes::openapi))
            .route(
                "/secrets",
                post(routes::create_secret).get(routes::list_secrets),
            )
            .route(
                "/secrets/{id}",
                get(routes::get_secret).delete(routes::delete_secret),
            )
            .route("/secrets/{id}/sync", post(routes::sync_secret))
            .route("/tasks", get(routes::list_tasks))
            .route("/tasks/{id}", get(routes::get_task))
            .route("/hosts", get(routes::list_hosts))
            .route("/hosts/{vendor}/{instance_id}", get(routes::get_host))
            .route_layer(middleware::from_fn_with_state(
                self.token_digest,
                require_token,
            ));
        Router::new()
            .route("/healthz", get(routes::healthz))
            .merge(protected)
            .fallback(routes::not_found)
            .layer(DefaultBodyLimit::max(self.body_limit))
            .with_state(state)
    }
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
    use super::openapi::{document, ROUTES};

    #[test]
    fn the_document_lists_every_route_once() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.0.3");
        let paths = doc["paths"].as_object().unwrap();
        let mut n = 0;
        for (path, ops) in paths {
            for (method, op) in ops.as_object().unwrap() {
                n += 1;
                assert!(
                    ROUTES.iter().any(|r| r.path == path && r.method == method),
                    "{method} {path} is documented but not routed"
                );
                assert!(
                    op["responses"]["default"].is_object(),
                    "{method} {path} error shape"
                );
            }
        }
        assert_eq!(n, ROUTES.len());
        let sync = &paths["/secrets/{id}/sync"]["post"];
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
        assert_eq!(paths["/healthz"]["get"]["security"], serde_json::json!([]));
        assert!(sync["responses"]["429"]["headers"]["Retry-After"].is_object());
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["SyncResponse"]["properties"]["details_truncated"]["type"],
            "boolean"
        );
        assert_eq!(
            schemas["SyncResponse"]["properties"]["error"]["allOf"][0]["$ref"],
            "#/components/schemas/ErrorReport"
        );
        let tasks = &paths["/tasks"]["get"]["parameters"];
        for name in ["page_size", "page_number"] {
            assert!(
                tasks.as_array().unwrap().iter().any(|p| p["name"] == name),
                "GET /tasks documents {name}"
            );
        }
    }
}
