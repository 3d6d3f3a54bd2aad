//! Registration of the Huawei Cloud ECS provider.

use std::sync::Arc;

use cmdb_core::{DatabaseProvider, HostProvider};
use cmdb_provider_huawei::HuaweiBuilder;

use crate::registry::ProviderContext;

/// Builds a [`cmdb_provider_huawei::HuaweiHostProvider`] for one run: the secret's AK/SK,
/// the region, the secret's endpoint override (for IAM and ECS alike) and the secret's
/// shared rate limiter. Pages in flight are capped by the secret's rate as well as by the
/// provider's default, so a slow secret never has more requests waiting than it may send
/// in a second.
fn builder(ctx: ProviderContext) -> HuaweiBuilder {
    let mut builder = HuaweiBuilder::new()
        .with_http_config(ctx.http)
        .with_credentials(ctx.credentials)
        .with_region(ctx.region)
        .with_limiter(ctx.limiter)
        .with_concurrency(
            usize::try_from(ctx.request_rate)
                .unwrap_or(usize::MAX)
                .clamp(1, cmdb_provider_huawei::DEFAULT_CONCURRENCY),
        );
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
