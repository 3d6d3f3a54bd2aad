//! The handlers.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{SubsecRound, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use cmdb_core::{
    DatabaseList, DatabaseQuery, DatabaseSort, DatabaseStatus, DatabaseStore, Error, ErrorKind,
    HostList, HostQuery, HostSort, HostStatus, HostStore, ResourceType, RunList, RunQuery,
    RunState, StoredDatabase, StoredHost, SyncRun, SyncScope, Vendor, MAX_PAGE_SIZE,
};
use cmdb_secret::{
    Cipher, MaskedSecret, NewSecret, SecretList, SecretPatch, SecretQuery, SecretStore,
};
use cmdb_sync::{DetailsMode, SyncRequest, SyncResponse, Syncer};

use crate::error::{ApiError, ErrorBody};
use crate::tasks::TaskRegistry;

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) syncer: Arc<Syncer>,
    pub(crate) secrets: Arc<dyn SecretStore>,
    pub(crate) cipher: Arc<Cipher>,
    pub(crate) tasks: TaskRegistry,
    /// The OpenAPI document of the router, served at `/openapi.json`.
    pub(crate) openapi: Arc<utoipa::openapi::OpenApi>,
    /// The recorder `/metrics` renders, when the API was given one.
    pub(crate) metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

/// A JSON body whose rejections answer in the API's error shape: 422 for a body that
/// is not the expected JSON (syntax, types, unknown fields), 413 when too large, 415
/// without a JSON content type.
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    match r {
        JsonRejection::JsonDataError(e) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::InvalidInput,
            format!("invalid request body: {}", e.body_text()),
        ),
        JsonRejection::JsonSyntaxError(e) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::InvalidInput,
            format!("request body is not valid JSON: {}", e.body_text()),
        ),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::InvalidInput,
            "expected a body with Content-Type: application/json",
        ),
        other => ApiError::new(other.status(), ErrorKind::InvalidInput, other.body_text()),
    }
}

/// Query parameters whose rejections answer 400 in the API's error shape.
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(ApiQuery(v)),
            Err(e) => Err(query_rejection(e)),
        }
    }
}

fn query_rejection(e: QueryRejection) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        ErrorKind::InvalidInput,
        format!("invalid query parameters: {}", e.body_text()),
    )
}

/// The answer of `GET /healthz`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    status: &'static str,
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "meta",
    summary = "Liveness check (no token needed)",
    responses((status = 200, description = "The server is up", body = Health))
)]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    summary = "This document",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The OpenAPI document of every route", body = Object),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody),
    )
)]
pub(crate) async fn openapi(State(state): State<AppState>) -> Json<utoipa::openapi::OpenApi> {
    Json(state.openapi.as_ref().clone())
}

// What the error answers of the routes mean; every error body is an `ErrorBody`.
const UNAUTHORIZED: &str = "No valid API token (the `bearer` scheme) in the `Authorization` header";
const INTERNAL: &str = "A store or server failure: the message only says `internal error \
                        (request id <id>)`; the details are logged under that id";
const BAD_QUERY: &str = "Invalid query parameters (unknown name, wrong type, page out of range)";
const BAD_BODY: &str =
    "The body is not the expected JSON (syntax, types, unknown or missing fields)";
const TOO_LARGE: &str = "The body is larger than the server's limit (64 KiB by default)";
const NOT_JSON: &str = "The body has no `Content-Type: application/json`";

#[utoipa::path(
    post,
    path = "/secrets",
    tag = "secrets",
    summary = "Store a cloud credential (the API secret is encrypted, never answered)",
    security(("bearer" = [])),
    request_body = NewSecret,
    responses(
        (status = 201, description = "Stored; answered masked", body = MaskedSecret,
            headers(("Location" = String, description = "The secret's address: `/secrets/{id}`"))),
        (status = 400, description = "A field is invalid (the message names it)",
            body = ErrorBody),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody),
        (status = 409, description = "A secret with this API key for this vendor exists",
            body = ErrorBody),
        (status = 413, description = TOO_LARGE, body = ErrorBody),
        (status = 415, description = NOT_JSON, body = ErrorBody),
        (status = 422, description = BAD_BODY, body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
    )
)]
pub(crate) async fn create_secret(
    State(state): State<AppState>,
    ApiJson(new): ApiJson<NewSecret>,
) -> Result<impl IntoResponse, ApiError> {
    if let Some(address) = &new.address {
        state.syncer.check_address(address)?;
    }
    let secret = new.seal(&state.cipher)?;
    state.secrets.create(&secret).await?;
    tracing::info!(secret_id = %secret.id, vendor = %secret.vendor, "secret created");
    let location = format!("/secrets/{}", secret.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(secret.masked()),
    ))
}

#[utoipa::path(
    get,
    path = "/secrets",
    tag = "secrets",
    summary = "List secrets, masked",
    security(("bearer" = [])),
    params(SecretQuery),
    responses(
        (status = 200, description = "A page of masked secrets", body = SecretList),
        (status = 400, description = BAD_QUERY, body = ErrorBody),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
    )
)]
pub(crate) async fn list_secrets(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<SecretQuery>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(state.secrets.list(&query).await?))
}

#[utoipa::path(
    get,
    path = "/secrets/{id}",
    tag = "secrets",
    summary = "One secret, masked",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The secret's id")),
    responses(
        (status = 200, description = "The secret, masked", body = MaskedSecret),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody),
        (status = 404, description = "No such secret", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
    )
)]
pub(crate) async fn get_secret(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(state.secrets.get(&id).await?.masked()))
}

#[utoipa::path(
    patch,
    path = "/secrets/{id}",
    tag = "secrets",
    summary = "Change a secret (answered masked)",
    description = "Every field is optional; absent fields are left as they are. A blank \
                   `address` or `tls_ca_pem` removes it. A new `api_key` needs its \
                   `api_secret`; a new `api_secret` replaces the session token by the one \
                   given, or by none. The secret is validated as a new one and its \
                   credentials are encrypted again, bound to its new address, key and TLS \
                   settings; a change made meanwhile by another request is a 409.",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The secret's id")),
    request_body = SecretPatch,
    responses(
        (status = 200, description = "Changed; answered masked", body = MaskedSecret),
        (status = 400, description = "A field is invalid (the message names it)",
            body = ErrorBody),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody),
        (status = 404, description = "No such secret", body = ErrorBody),
        (status = 409, body = ErrorBody,
            description = "The secret changed meanwhile, or another secret of the vendor has \
                           this API key"),
        (status = 413, description = TOO_LARGE, body = ErrorBody),
        (status = 415, description = NOT_JSON, body = ErrorBody),
        (status = 422, description = BAD_BODY, body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
    )
)]
pub(crate) async fn patch_secret(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<SecretPatch>,
) -> Result<Json<MaskedSecret>, ApiError> {
    let current = state.secrets.get(&id).await?;
    if let Some(address) = &patch.address {
        state.syncer.check_address(address)?;
    }
    let changed = current.patched(patch, &state.cipher)?;
    state
        .secrets
        .update(&changed, &current.ciphertexts())
        .await?;
    tracing::info!(secret_id = %id, vendor = %changed.vendor, "secret changed");
    Ok(Json(changed.masked()))
}

/// The options of `DELETE /secrets/:id`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, default)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeleteParams {
    /// Also mark the secret's active hosts released (default false: they are kept, and
    /// `GET /hosts?secret_id=` still finds them).
    #[param(default = false)]
    release_hosts: bool,
}

#[utoipa::path(
    delete,
    path = "/secrets/{id}",
    tag = "secrets",
    summary = "Delete a secret (its hosts are kept unless `release_hosts=true`)",
    description = "Refused while a sync of the secret runs, in this server or another \
                   sharing its database. The hosts the secret synced stay in the store and \
                   `GET /hosts?secret_id=<id>` still finds them; with `release_hosts=true` \
                   its active hosts are marked released first. Its past runs stay in \
                   `GET /tasks?secret_id=<id>` until pruned.",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The secret's id"), DeleteParams),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = BAD_QUERY, body = ErrorBody),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody),
        (status = 404, description = "No such secret", body = ErrorBody),
        (status = 409, description = "A sync of the secret is running", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
    )
)]
pub(crate) async fn delete_secret(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<DeleteParams>,
) -> Result<StatusCode, ApiError> {
    let active = state.tasks.active(&id).await?;
    if let Some(run) = active.first() {
        return Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "a sync of secret {id} is running (task {}, region {:?}); delete it once \
                 the sync has ended",
                run.id, run.region
            ),
        )
        .into());
    }
    // Unknown ids are answered 404 before any host is touched.
    state.secrets.get(&id).await?;
    if params.release_hosts {
        let released = release_hosts_of(&**state.syncer.host_store(), &id).await?;
        tracing::info!(secret_id = %id, released, "released the hosts of a secret being deleted");
    }
    state.secrets.delete(&id).await?;
    tracing::info!(secret_id = %id, "secret deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Marks every active host of `secret_id` released; how many. No sync of the secret
/// runs (the caller checked), so no host of it is seen meanwhile.
async fn release_hosts_of(hosts: &dyn HostStore, secret_id: &str) -> cmdb_core::Result<u64> {
    let released_at = Utc::now().trunc_subsecs(6);
    let seen_before = released_at + chrono::Duration::microseconds(1);
    let active = HostQuery::default()
        .with_secret_id(secret_id)
        .with_released(false)
        .with_page_size(MAX_PAGE_SIZE);
    let mut released = 0;
    loop {
        // The first page again each time: the hosts released leave the filter.
        let page = hosts.query(&active).await?;
        let mut by_scope: BTreeMap<SyncScope, Vec<String>> = BTreeMap::new();
        for h in page.items {
            let scope = SyncScope::hosts(secret_id, h.host.vendor, h.host.region);
            by_scope.entry(scope).or_default().push(h.host.instance_id);
        }
        let mut round = 0;
        for (scope, ids) in &by_scope {
            round += hosts.release(scope, ids, seen_before, released_at).await?;
        }
        // None left, or only hosts seen after `seen_before` (another server's clock).
        if round == 0 {
            return Ok(released);
        }
        released += round;
    }
}

/// The options of `POST /secrets/:id/sync`, as a JSON body or as query parameters (the
/// body wins when there is one).
#[derive(Debug, Default, Deserialize, ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct SyncParams {
    /// The region to list; `"*"`, or nothing for a vendor with regions, syncs every region
    /// of the account (its allowed regions, or all the vendor lists when it allows `"*"`),
    /// each its own run, answering a summary per region in `regions`. vSphere's region is
    /// its vCenter: give none.
    #[serde(default)]
    region: String,
    /// What to list: only `host` can be synced so far.
    #[serde(default)]
    resource_type: ResourceType,
    /// Whether to answer when the sync ends (default true); false answers 202 at once
    /// with the task to watch.
    #[serde(default)]
    #[schema(default = true)]
    #[param(default = true)]
    wait: Option<bool>,
    /// Which per-host details to answer (default `all`); at most 10,000 by default,
    /// `details_truncated` past it.
    #[serde(default)]
    details: DetailsMode,
    /// Release missing hosts even when the release guard refuses.
    #[serde(default)]
    force_release: bool,
}

/// The answer of a sync started with `wait=false`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TaskStarted {
    /// The task's id.
    task_id: String,
    /// Where the task is now.
    state: RunState,
    /// The task's address: `/tasks/{task_id}`, also in the `Location` header.
    location: String,
}

#[utoipa::path(
    post,
    path = "/secrets/{id}/sync",
    tag = "sync",
    summary = "Sync one region of the secret's cloud into the store",
    description = "The options come as a JSON body or as the same fields in query \
                   parameters. Errors found before the first vendor request are answered \
                   at once, whether or not the request waits.",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The secret's id"), SyncParams),
    request_body(
        content = SyncParams,
        description = "The options; optional (without a body, the query's)"
    ),
    responses(
        (status = 200, body = SyncResponse,
            description = "The sync ended (wait=true): counters and the details asked for; \
                           `error` says why a run that stored hosts is incomplete"),
        (status = 202, description = "Started in the background (wait=false)", body = TaskStarted,
            headers(("Location" = String, description = "The task's address: `/tasks/{task_id}`"))),
        (status = 400, body = ErrorBody,
            description = "An invalid option, region or secret address, or no region for a \
                           vendor that needs one"),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody),
        (status = 403, description = "The region is not allowed by the secret", body = ErrorBody),
        (status = 404, description = "No such secret", body = ErrorBody),
        (status = 409, description = "A sync of this scope is already running", body = ErrorBody),
        // The body is read as bytes, whose rejection is axum's own plain-text answer.
        (status = 413, description = TOO_LARGE, body = String, content_type = "text/plain"),
        (status = 422, description = BAD_BODY, body = ErrorBody),
        (status = 429, body = ErrorBody,
            description = "Every sync slot of the server is taken (with `Retry-After`), or the \
                           vendor throttled the run",
            headers(("Retry-After" = u64, description = "Seconds to wait, when every slot is taken"))),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 502, body = ErrorBody,
            description = "The vendor refused or failed the run before anything was stored (its \
                           code and request id are in the message)"),
        (status = 504, body = ErrorBody,
            description = "The vendor timed out before anything was stored"),
    )
)]
pub(crate) async fn sync_secret(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<SyncParams>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = if body.iter().all(u8::is_ascii_whitespace) {
        query
    } else {
        serde_json::from_slice::<SyncParams>(&body).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorKind::InvalidInput,
                format!("invalid request body: {e}"),
            )
        })?
    };
    let request = SyncRequest::new(id, params.region)
        .with_resource_type(params.resource_type)
        .with_details(params.details)
        .with_force_release(params.force_release);
    let busy = |e: Error| {
        let full = e.kind() == ErrorKind::RateLimited && e.vendor_error().is_none();
        let answer = ApiError::from(e);
        if full {
            answer.with_retry_after(RETRY_BUSY_AFTER_SECS)
        } else {
            answer
        }
    };
    let syncer = Arc::clone(&state.syncer);
    if !params.wait.unwrap_or(true) {
        let run = state.tasks.start(syncer, request).await.map_err(busy)?;
        let location = format!("/tasks/{}", run.id);
        let body = TaskStarted {
            state: run.state,
            location: location.clone(),
            task_id: run.id,
        };
        return Ok((
            StatusCode::ACCEPTED,
            [(header::LOCATION, location)],
            Json(body),
        )
            .into_response());
    }
    match state.tasks.run(syncer, request).await.map_err(busy)? {
        Ok(response) => Ok(Json(response).into_response()),
        Err(error) => Err(ApiError::from(&error)),
    }
}

/// Seconds a client is told to wait when every sync slot is taken.
const RETRY_BUSY_AFTER_SECS: u64 = 5;

/// The filters of `GET /tasks`; empty text filters match everything.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, default)]
#[into_params(parameter_in = Query)]
pub(crate) struct TaskParams {
    /// Only this secret's tasks.
    secret_id: Option<String>,
    /// Only tasks in this state.
    state: Option<RunState>,
    /// Only tasks of this region.
    region: Option<String>,
    /// Only the region tasks of this whole-account task.
    parent_id: Option<String>,
    /// Tasks per page, 1 to 1000; default 20.
    #[param(default = 20, minimum = 1, maximum = 1000)]
    page_size: u32,
    /// Page number, from 1.
    #[param(default = 1, minimum = 1)]
    page_number: u32,
}

impl Default for TaskParams {
    fn default() -> Self {
        let q = RunQuery::default();
        TaskParams {
            secret_id: None,
            state: None,
            region: None,
            parent_id: None,
            page_size: q.page_size,
            page_number: q.page_number,
        }
    }
}

#[utoipa::path(
    get,
    path = "/tasks",
    tag = "tasks",
    summary = "Sync tasks, most recent first",
    description = "From the store: every server sharing the database answers the same, and \
                   tasks outlive a restart. A running task's counters are live in the server \
                   running it, and at most 10 pages or 5 seconds behind in the others. A \
                   `running` task whose server is gone is answered (and kept) `interrupted`. A \
                   sync of every region is a task of region `*` and one task per region, \
                   whose `parent_id` is its id. \
                   Finished tasks are pruned after the server's retention (30 days by \
                   default).",
    security(("bearer" = [])),
    params(TaskParams),
    responses(
        (status = 200, description = "A page of tasks", body = RunList),
        (status = 400, description = BAD_QUERY, body = ErrorBody),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
    )
)]
pub(crate) async fn list_tasks(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<TaskParams>,
) -> Result<Json<RunList>, ApiError> {
    let mut query = RunQuery::default()
        .with_page_size(params.page_size)
        .with_page_number(params.page_number);
    query.secret_id = params.secret_id.filter(|s| !s.is_empty());
    query.state = params.state;
    query.region = params.region.filter(|s| !s.is_empty());
    query.parent_id = params.parent_id.filter(|s| !s.is_empty());
    Ok(Json(state.tasks.list(&query).await?))
}

#[utoipa::path(
    get,
    path = "/tasks/{id}",
    tag = "tasks",
    summary = "One sync task: its counters and, once ended, its failed details and error",
    description = "As `GET /tasks` shows each task.",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The task's id")),
    responses(
        (status = 200, body = SyncRun,
            description = "The task; it keeps counters and at most 100 failed details, never \
                           the hosts that succeeded"),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody),
        (status = 404, description = "No such task (or pruned)", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
    )
)]
pub(crate) async fn get_task(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SyncRun>, ApiError> {
    match state.tasks.get(&id).await? {
        Some(run) => Ok(Json(run)),
        None => Err(Error::not_found(format!("task {id} not found")).into()),
    }
}

/// The filters of `GET /hosts`; empty text filters match everything.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, default)]
#[into_params(parameter_in = Query)]
pub(crate) struct HostParams {
    /// Only this vendor.
    vendor: Option<Vendor>,
    /// Only this region.
    region: Option<String>,
    /// Only hosts last seen by this secret.
    secret_id: Option<String>,
    /// Only this status.
    status: Option<HostStatus>,
    /// Substring of the name (case-insensitive), instance id or any IP.
    keywords: Option<String>,
    /// true: released hosts only; false: active hosts only; absent: both.
    released: Option<bool>,
    /// Order of the results (default `instance_id`).
    #[param(inline)]
    sort: HostSort,
    /// Hosts per page, 1 to 1000; default 20.
    #[param(default = 20, minimum = 1, maximum = 1000)]
    page_size: u32,
    /// Page number, from 1.
    #[param(default = 1, minimum = 1)]
    page_number: u32,
}

impl Default for HostParams {
    fn default() -> Self {
        let q = HostQuery::default();
        HostParams {
            vendor: None,
            region: None,
            secret_id: None,
            status: None,
            keywords: None,
            released: None,
            sort: q.sort,
            page_size: q.page_size,
            page_number: q.page_number,
        }
    }
}

#[utoipa::path(
    get,
    path = "/hosts",
    tag = "hosts",
    summary = "Stored hosts",
    security(("bearer" = [])),
    params(HostParams),
    responses(
        (status = 200, description = "A page of hosts", body = HostList),
        (status = 400, description = BAD_QUERY, body = ErrorBody),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
    )
)]
pub(crate) async fn list_hosts(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<HostParams>,
) -> Result<impl IntoResponse, ApiError> {
    let mut query = HostQuery::default();
    query.vendor = p.vendor;
    query.region = p.region.filter(|s| !s.is_empty());
    query.secret_id = p.secret_id.filter(|s| !s.is_empty());
    query.status = p.status;
    query.keywords = p.keywords.filter(|s| !s.is_empty());
    query.released = p.released;
    query.sort = p.sort;
    query.page_size = p.page_size;
    query.page_number = p.page_number;
    Ok(Json(state.syncer.host_store().query(&query).await?))
}

#[utoipa::path(
    get,
    path = "/hosts/{vendor}/{instance_id}",
    tag = "hosts",
    summary = "One stored host",
    security(("bearer" = [])),
    params(
        ("vendor" = Vendor, Path, description = "The host's vendor"),
        ("instance_id" = String, Path, description = "The vendor's id of the host"),
    ),
    responses(
        (status = 200, description = "The host", body = StoredHost),
        (status = 400, description = "Unknown vendor", body = ErrorBody),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody),
        (status = 404, description = "No such host", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
    )
)]
pub(crate) async fn get_host(
    State(state): State<AppState>,
    Path((vendor, instance_id)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let vendor: Vendor = vendor
        .parse()
        .map_err(|e: cmdb_core::ParseEnumError| Error::invalid_field("vendor", e.to_string()))?;
    match state.syncer.host_store().get(vendor, &instance_id).await? {
        Some(host) => Ok(Json(host)),
        None => Err(Error::not_found(format!("host {vendor}/{instance_id} not found")).into()),
    }
}

/// The filters of `GET /databases`: those of `GET /hosts`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, default)]
#[into_params(parameter_in = Query)]
pub(crate) struct DatabaseParams {
    /// Only this vendor.
    vendor: Option<Vendor>,
    /// Only this region.
    region: Option<String>,
    /// Only instances last seen by this secret.
    secret_id: Option<String>,
    /// Only this status.
    status: Option<DatabaseStatus>,
    /// Substring of the name (case-insensitive), instance id or any endpoint host.
    keywords: Option<String>,
    /// true: released instances only; false: active ones only; absent: both.
    released: Option<bool>,
    /// Order of the results (default `instance_id`).
    #[param(inline)]
    sort: DatabaseSort,
    /// Instances per page, 1 to 1000; default 20.
    #[param(default = 20, minimum = 1, maximum = 1000)]
    page_size: u32,
    /// Page number, from 1.
    #[param(default = 1, minimum = 1)]
    page_number: u32,
}

impl Default for DatabaseParams {
    fn default() -> Self {
        let q = DatabaseQuery::default();
        DatabaseParams {
            vendor: None,
            region: None,
            secret_id: None,
            status: None,
            keywords: None,
            released: None,
            sort: q.sort,
            page_size: q.page_size,
            page_number: q.page_number,
        }
    }
}

/// The database store, or the 404 of a server that stores no database instances.
fn database_store(state: &AppState) -> Result<&Arc<dyn DatabaseStore>, ApiError> {
    state.syncer.database_store().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorKind::NotFound,
            "this server stores no database instances (see Syncer::with_database_store)",
        )
    })
}

#[utoipa::path(
    get,
    path = "/databases",
    tag = "databases",
    summary = "Stored database instances (RDS)",
    security(("bearer" = [])),
    params(DatabaseParams),
    responses(
        (status = 200, description = "A page of database instances", body = DatabaseList),
        (status = 400, description = BAD_QUERY, body = ErrorBody),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody),
        (status = 404, description = "The server stores no database instances", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
    )
)]
pub(crate) async fn list_databases(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<DatabaseParams>,
) -> Result<impl IntoResponse, ApiError> {
    let mut query = DatabaseQuery::default();
    query.vendor = p.vendor;
    query.region = p.region.filter(|s| !s.is_empty());
    query.secret_id = p.secret_id.filter(|s| !s.is_empty());
    query.status = p.status;
    query.keywords = p.keywords.filter(|s| !s.is_empty());
    query.released = p.released;
    query.sort = p.sort;
    query.page_size = p.page_size;
    query.page_number = p.page_number;
    Ok(Json(database_store(&state)?.query(&query).await?))
}

#[utoipa::path(
    get,
    path = "/databases/{vendor}/{instance_id}",
    tag = "databases",
    summary = "One stored database instance",
    security(("bearer" = [])),
    params(
        ("vendor" = Vendor, Path, description = "The instance's vendor"),
        ("instance_id" = String, Path, description = "The vendor's id of the instance"),
    ),
    responses(
        (status = 200, description = "The instance", body = StoredDatabase),
        (status = 400, description = "Unknown vendor", body = ErrorBody),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody),
        (status = 404, description = "No such instance", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
    )
)]
pub(crate) async fn get_database(
    State(state): State<AppState>,
    Path((vendor, instance_id)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let vendor: Vendor = vendor
        .parse()
        .map_err(|e: cmdb_core::ParseEnumError| Error::invalid_field("vendor", e.to_string()))?;
    match database_store(&state)?.get(vendor, &instance_id).await? {
        Some(db) => Ok(Json(db)),
        None => Err(Error::not_found(format!(
            "database instance {vendor}/{instance_id} not found"
        ))
        .into()),
    }
}

/// The content type of the Prometheus text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "meta",
    summary = "Metrics in the Prometheus text format",
    description = "Vendor calls (`cmdb_vendor_request_duration_seconds`, \
                   `cmdb_vendor_retries_total`, `cmdb_vendor_throttled_total`), sync runs \
                   (`cmdb_sync_runs_total`, `cmdb_sync_run_duration_seconds`, \
                   `cmdb_sync_last_success_timestamp_seconds`, `cmdb_sync_hosts_total`, \
                   `cmdb_sync_databases_total`) and the stored hosts and database instances \
                   counted at each scrape (`cmdb_hosts`, `cmdb_databases`), with whatever else \
                   the process records. No label carries a key or a secret.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The metrics", body = String,
            content_type = "text/plain; version=0.0.4"),
        (status = 401, description = UNAUTHORIZED, body = ErrorBody),
        (status = 404, description = "The server was built without metrics \
            (`Api::with_metrics`)", body = ErrorBody),
        (status = 500, description = INTERNAL, body = ErrorBody),
    )
)]
pub(crate) async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let Some(handle) = &state.metrics else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorKind::NotFound,
            "this server records no metrics (see Api::with_metrics)",
        ));
    };
    crate::telemetry::record_host_counts(state.syncer.host_store().as_ref()).await?;
    if let Some(databases) = state.syncer.database_store() {
        crate::telemetry::record_database_counts(databases.as_ref()).await?;
    }
    let text = handle.render();
    Ok(([(axum::http::header::CONTENT_TYPE, PROMETHEUS_TEXT)], text).into_response())
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, ErrorKind::NotFound, "no such route")
}
