//! The OpenAPI document. `utoipa` generates it from the handlers' `#[utoipa::path]`
//! attributes and the types they take and answer; [`Api::router`](crate::Api::router)
//! builds the router and the document from the same list of handlers.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi, Required};
use utoipa::Modify;

/// What the document says besides its routes.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "cmdb",
        description = "Sync cloud hosts into a CMDB: secrets, POST /secrets/{id}/sync, tasks, hosts. \
                       Every route but /healthz needs the API token (the `bearer` security scheme)."
    ),
    modifiers(&BearerToken)
)]
pub(crate) struct ApiDoc;

/// The `bearer` security scheme the routes name.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
    }
}

/// Marks the body of `POST /secrets/{id}/sync` optional: without one, the sync takes its
/// options from the query. (`utoipa` says a body is optional only of an `Option`, whose
/// schema would then also admit a JSON `null`, which the route refuses.)
pub(crate) fn optional_sync_body(document: &mut OpenApi) {
    let body = document
        .paths
        .paths
        .get_mut("/secrets/{id}/sync")
        .and_then(|item| item.post.as_mut())
        .and_then(|op| op.request_body.as_mut());
    if let Some(body) = body {
        body.required = Some(Required::False);
    }
}
