//! Registration of the Tencent Cloud CVM provider.

use std::sync::Arc;

use cmdb_core::{DatabaseProvider, HostProvider};
use cmdb_provider_tencent::TencentBuilder;

use crate::registry::ProviderContext;

/// Builds the Tencent provider of one run: the secret's key pair, region and endpoint
/// override, and the secret's shared rate limiter (Tencent throttles per account, so
/// every run of the secret draws from one bucket). No request is made here.
fn builder(ctx: ProviderContext) -> TencentBuilder {
    let mut builder = TencentBuilder::new()
        .with_http_config(ctx.http)
        .with_credentials(ctx.credentials)
        .with_region(ctx.region)
        .with_limiter(ctx.limiter)
        .with_request_rate(ctx.request_rate);
    if let Some(endpoint) = ctx.endpoint.filter(|e| !e.trim().is_empty()) {
        builder = builder.with_endpoint(endpoint);
    }
    builder
}

/// The host provider of one run.
pub(super) fn factory(ctx: ProviderContext) -> cmdb_core::Result<Arc<dyn HostProvider>> {
    Ok(Arc::new(builder(ctx).build()?))
}

/// The database (RDS) provider of one run, on the same client settings.
pub(super) fn database_factory(
    ctx: ProviderContext,
) -> cmdb_core::Result<Arc<dyn DatabaseProvider>> {
    Ok(Arc::new(builder(ctx).build_databases()?))
}
