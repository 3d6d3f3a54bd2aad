//! Registration of the vSphere provider.

use std::sync::Arc;

use cmdb_core::{Error, HostProvider};
use cmdb_provider_vsphere::VsphereBuilder;

use crate::registry::ProviderContext;

/// Builds the vSphere provider of a run: the secret's `address` is the vCenter URL, its
/// key and secret the user and password; the region comes from the address.
///
/// TLS trusts the system's roots; govc's `GOVC_TLS_CA_CERTS` (a PEM file) adds roots
/// and `GOVC_INSECURE=1` accepts any certificate (logged as a warning), for every
/// vSphere secret of this process.
pub(super) fn factory(ctx: ProviderContext) -> cmdb_core::Result<Arc<dyn HostProvider>> {
    let address = ctx
        .endpoint
        .ok_or_else(|| Error::invalid_field("address", "is required for vSphere secrets"))?;
    let provider = VsphereBuilder::new()
        .with_http_config(ctx.http)
        .with_tls_from_env()?
        .with_address(address)
        .with_credentials(ctx.credentials)
        .with_limiter(ctx.limiter)
        .build()?;
    Ok(Arc::new(provider))
}
