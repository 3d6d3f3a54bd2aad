//! Registration of the Alibaba Cloud ECS provider.

use std::sync::Arc;

use cmdb_core::{DatabaseProvider, HostProvider};
use cmdb_provider_aliyun::AliyunBuilder;

use crate::registry::ProviderContext;

/// Builds the ECS provider of one run: the secret's credentials, region and endpoint
/// override, and the secret's shared rate limiter (its `request_rate` is already in it).
fn builder(ctx: ProviderContext) -> AliyunBuilder {
    let mut builder = AliyunBuilder::new()
        .with_http_config(ctx.http)
        .with_credentials(ctx.credentials)
        .with_region(ctx.region)
        .with_request_rate(ctx.request_rate)
        .with_limiter(ctx.limiter);
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
