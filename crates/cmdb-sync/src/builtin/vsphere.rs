//! Registration of the vSphere provider.

use std::sync::Arc;

use cmdb_core::{Error, HostProvider};
use cmdb_provider_vsphere::VsphereBuilder;

use crate::registry::ProviderContext;

/// Builds the vSphere provider of a run: the secret's `address` is the vCenter URL, its
/// key and secret the user and password; the region comes from the address.
///
/// TLS trusts the system's roots and the secret's `tls_ca_pem`; the secret's
/// `tls_skip_verify` accepts any certificate (logged as a warning). Nothing in the
/// process's environment changes that. A plain `http` address is refused unless the
/// secret sets `allow_insecure_http`: the password would cross the network in clear.
pub(super) fn factory(ctx: ProviderContext) -> cmdb_core::Result<Arc<dyn HostProvider>> {
    let address = ctx
        .endpoint
        .ok_or_else(|| Error::invalid_field("address", "is required for vSphere secrets"))?;
    let plain_http = address
        .trim()
        .get(..5)
        .is_some_and(|s| s.eq_ignore_ascii_case("http:"));
    if plain_http && !ctx.allow_insecure_http {
        return Err(Error::invalid_field(
            "address",
            "is plain http: the vSphere password would cross the network in clear; use \
             https, or set \"allow_insecure_http\": true on the secret",
        ));
    }
    let provider = VsphereBuilder::new()
        .with_http_config(ctx.http)
        .with_endpoint(address)
        .with_credentials(ctx.credentials)
        .with_limiter(ctx.limiter)
        .build()?;
    Ok(Arc::new(provider))
}
