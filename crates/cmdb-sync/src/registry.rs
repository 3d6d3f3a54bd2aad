//! Which provider serves which vendor.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use cmdb_core::{Error, ErrorKind, HostProvider, Result, Vendor};
use cmdb_http::{HttpConfig, RateLimiter};
use cmdb_secret::Credentials;

/// Everything a provider factory gets to build a provider for one run.
pub struct ProviderContext {
    /// The secret's id (for logs and caches keyed by secret).
    pub secret_id: String,
    /// The secret's vendor.
    pub vendor: Vendor,
    /// The decrypted credentials (zeroized on drop, redacted in `Debug`).
    pub credentials: Credentials,
    /// The region to list (empty for vSphere).
    pub region: String,
    /// The secret's endpoint override, a full http or https URL.
    pub endpoint: Option<String>,
    /// The secret's request rate, in requests per second.
    pub request_rate: u32,
    /// The rate limiter shared by every run of this secret: give it to the HTTP client.
    pub limiter: Arc<RateLimiter>,
    /// Timeouts, retries and TLS settings for the provider's HTTP client (from
    /// [`SyncOptions::http`](crate::SyncOptions::http)).
    pub http: HttpConfig,
}

impl fmt::Debug for ProviderContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderContext")
            .field("secret_id", &self.secret_id)
            .field("vendor", &self.vendor)
            .field("credentials", &self.credentials)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("request_rate", &self.request_rate)
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

/// Builds a provider from a [`ProviderContext`]. Any
/// `Fn(ProviderContext) -> Result<Arc<dyn HostProvider>>` is a factory.
pub trait ProviderFactory: Send + Sync + 'static {
    /// Builds the provider. It should not make requests: listing starts when the sync
    /// polls the provider's pages.
    fn build(&self, ctx: ProviderContext) -> Result<Arc<dyn HostProvider>>;
}

impl<F> ProviderFactory for F
where
    F: Fn(ProviderContext) -> Result<Arc<dyn HostProvider>> + Send + Sync + 'static,
{
    fn build(&self, ctx: ProviderContext) -> Result<Arc<dyn HostProvider>> {
        self(ctx)
    }
}

/// Vendor -> provider factory. Provider crates register behind features; tests register
/// fakes.
#[derive(Clone, Default)]
pub struct ProviderRegistry {
    factories: BTreeMap<Vendor, Arc<dyn ProviderFactory>>,
}

impl fmt::Debug for ProviderRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderRegistry")
            .field("vendors", &self.vendors())
            .finish()
    }
}

impl ProviderRegistry {
    /// An empty registry.
    pub fn new() -> ProviderRegistry {
        ProviderRegistry::default()
    }

    /// Registers (or replaces) the factory of `vendor`.
    pub fn register(&mut self, vendor: Vendor, factory: impl ProviderFactory) -> &mut Self {
        self.factories.insert(vendor, Arc::new(factory));
        self
    }

    /// Builder-style [`register`](Self::register).
    pub fn with(mut self, vendor: Vendor, factory: impl ProviderFactory) -> Self {
        self.register(vendor, factory);
        self
    }

    /// The vendors with a factory.
    pub fn vendors(&self) -> Vec<Vendor> {
        self.factories.keys().copied().collect()
    }

    /// Builds the provider of `ctx.vendor`.
    pub fn host_provider(&self, ctx: ProviderContext) -> Result<Arc<dyn HostProvider>> {
        let vendor = ctx.vendor;
        let factory = self.factories.get(&vendor).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "no provider is registered for vendor {vendor} (is the `{vendor}` feature enabled?)"
                ),
            )
        })?;
        factory.build(ctx)
    }
}
