//! The handlers.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use cmdb_core::{Error, ErrorKind, HostQuery, HostSort, HostStatus, ResourceType, Vendor};
use cmdb_secret::{NewSecret, SecretQuery};
use cmdb_sync::{DetailsMode, SyncRequest, SyncState, Syncer};

use crate::error::ApiError;
use crate::tasks::{TaskRegistry, TaskView};

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) syncer: Arc<Syncer>,
    pub(crate) tasks: TaskRegistry,
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

/// A page of items with the total, as every listing answers.
#[derive(Debug, Serialize)]
pub(crate) struct Listing<T> {
    total: u64,
    items: Vec<T>,
}

pub(crate) async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

pub(crate) async fn openapi() -> Json<serde_json::Value> {
    Json(crate::openapi::document())
}

pub(crate) async fn create_secret(
    State(state): State<AppState>,
    ApiJson(new): ApiJson<NewSecret>,
) -> Result<impl IntoResponse, ApiError> {
    if let Some(address) = &new.address {
        state.syncer.check_address(address)?;
    }
    let secret = new.seal(state.syncer.cipher())?;
    state.syncer.secret_store().create(&secret).await?;
    tracing::info!(secret_id = %secret.id, vendor = %secret.vendor, "secret created");
    Ok((StatusCode::CREATED, Json(secret.masked())))
}

pub(crate) async fn list_secrets(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<SecretQuery>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(state.syncer.secret_store().list(&query).await?))
}

pub(crate) async fn get_secret(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(state.syncer.secret_store().get(&id).await?.masked()))
}

pub(crate) async fn delete_secret(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    state.syncer.secret_store().delete(&id).await?;
    tracing::info!(secret_id = %id, "secret deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// The options of `POST /secrets/:id/sync`, as a JSON body or as query parameters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SyncParams {
    #[serde(default)]
    region: String,
    #[serde(default)]
    resource_type: ResourceType,
    #[serde(default)]
    wait: Option<bool>,
    #[serde(default)]
    details: DetailsMode,
    #[serde(default)]
    force_release: bool,
}

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
    let request = SyncRequest {
        secret_id: id,
        region: params.region,
        resource_type: params.resource_type,
        details: params.details,
        force_release: params.force_release,
    };
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
        let task_id = state.tasks.start(syncer, request).await.map_err(busy)?;
        let view = state.tasks.get(&task_id);
        let body = serde_json::json!({
            "task_id": task_id,
            "state": view.map(|v| v.state).unwrap_or(SyncState::Running),
            "location": format!("/tasks/{task_id}"),
        });
        return Ok((StatusCode::ACCEPTED, Json(body)).into_response());
    }
    let view = state.tasks.run(syncer, request).await.map_err(busy)?;
    match (view.result, view.error) {
        (Some(result), _) => Ok(Json(result).into_response()),
        (None, Some(error)) => Err(ApiError::from(&error)),
        (None, None) => {
            Err(Error::new(ErrorKind::Store, "the task ended without an answer").into())
        }
    }
}

/// Seconds a client is told to wait when every sync slot is taken.
const RETRY_BUSY_AFTER_SECS: u64 = 5;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct TaskParams {
    secret_id: Option<String>,
    page_size: u32,
    page_number: u32,
}

impl Default for TaskParams {
    fn default() -> Self {
        TaskParams {
            secret_id: None,
            page_size: 20,
            page_number: 1,
        }
    }
}

pub(crate) async fn list_tasks(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<TaskParams>,
) -> Result<Json<Listing<TaskView>>, ApiError> {
    if params.page_size == 0 || params.page_size > cmdb_core::MAX_PAGE_SIZE {
        return Err(Error::invalid_field(
            "page_size",
            format!("must be between 1 and {}", cmdb_core::MAX_PAGE_SIZE),
        )
        .into());
    }
    if params.page_number == 0 {
        return Err(Error::invalid_field("page_number", "must be at least 1").into());
    }
    let (items, total) = state.tasks.list(
        params.secret_id.as_deref(),
        params.page_size as usize,
        params.page_number as usize,
    );
    Ok(Json(Listing { total, items }))
}

pub(crate) async fn get_task(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TaskView>, ApiError> {
    state
        .tasks
        .get(&id)
        .map(Json)
        .ok_or_else(|| Error::not_found(format!("task {id} not found")).into())
}

/// The filters of `GET /hosts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct HostParams {
    vendor: Option<Vendor>,
    region: Option<String>,
    secret_id: Option<String>,
    status: Option<HostStatus>,
    keywords: Option<String>,
    released: Option<bool>,
    sort: HostSort,
    page_size: u32,
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

pub(crate) async fn list_hosts(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<HostParams>,
) -> Result<impl IntoResponse, ApiError> {
    let query = HostQuery {
        vendor: p.vendor,
        region: p.region.filter(|s| !s.is_empty()),
        secret_id: p.secret_id.filter(|s| !s.is_empty()),
        status: p.status,
        keywords: p.keywords.filter(|s| !s.is_empty()),
        released: p.released,
        sort: p.sort,
        page_size: p.page_size,
        page_number: p.page_number,
    };
    Ok(Json(state.syncer.host_store().query(&query).await?))
}

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

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, ErrorKind::NotFound, "no such route")
}
