//! Which provider serves which vendor.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use cmdb_core::{DatabaseProvider, Error, ErrorKind, HostProvider, Result, Vendor};
use cmdb_http::{HttpConfig, RateLimiter};
use cmdb_secret::Credentials;

/// Everything a provider factory gets to build a provider for one run.
#[non_exhaustive]
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
    /// Whether the secret allows a vSphere endpoint over plain http.
    pub allow_insecure_http: bool,
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
            .field(
                "endpoint",
                &self.endpoint.as_deref().map(cmdb_secret::redact_address),
            )
            .field("allow_insecure_http", &self.allow_insecure_http)
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

/// Builds a database (RDS) provider from a [`ProviderContext`]. Any
/// `Fn(ProviderContext) -> Result<Arc<dyn DatabaseProvider>>` is a factory.
pub trait DatabaseFactory: Send + Sync + 'static {
    /// Builds the provider, without making requests.
    fn build(&self, ctx: ProviderContext) -> Result<Arc<dyn DatabaseProvider>>;
}

impl<F> DatabaseFactory for F
where
    F: Fn(ProviderContext) -> Result<Arc<dyn DatabaseProvider>> + Send + Sync + 'static,
{
    fn build(&self, ctx: ProviderContext) -> Result<Arc<dyn DatabaseProvider>> {
        self(ctx)
    }
}

/// The error of a vendor that has no database instances to sync (vSphere).
pub(crate) fn refuse_vendor_without_databases(vendor: Vendor) -> Result<()> {
    if vendor == Vendor::Vsphere {
        return Err(Error::invalid_field(
            "resource_type",
            "vsphere has no database instances (rds); sync its hosts",
        ));
    }
    Ok(())
}

/// Vendor -> provider factory, for hosts and for database instances. Provider crates
/// register behind features; tests register fakes.
#[derive(Clone, Default)]
pub struct ProviderRegistry {
    factories: BTreeMap<Vendor, Arc<dyn ProviderFactory>>,
    databases: BTreeMap<Vendor, Arc<dyn DatabaseFactory>>,
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

    /// Registers (or replaces) the database (RDS) factory of `vendor`.
    pub fn register_databases(
        &mut self,
        vendor: Vendor,
        factory: impl DatabaseFactory,
    ) -> &mut Self {
        self.databases.insert(vendor, Arc::new(factory));
        self
    }

    /// Builder-style [`register_databases`](Self::register_databases).
    pub fn with_databases(mut self, vendor: Vendor, factory: impl DatabaseFactory) -> Self {
        self.register_databases(vendor, factory);
        self
    }

    /// Builds the database (RDS) provider of `ctx.vendor`. vSphere has no database
    /// instances: [`InvalidInput`](ErrorKind::InvalidInput) on `resource_type`.
    pub fn database_provider(&self, ctx: ProviderContext) -> Result<Arc<dyn DatabaseProvider>> {
        let vendor = ctx.vendor;
        refuse_vendor_without_databases(vendor)?;
        let factory = self.databases.get(&vendor).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "no database (rds) provider is registered for vendor {vendor} (is the \
                     `{vendor}` feature enabled?)"
                ),
            )
        })?;
        factory.build(ctx)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn context(vendor: Vendor, endpoint: &str, allow_insecure_http: bool) -> ProviderContext {
        ProviderContext {
            secret_id: "s-1".into(),
            vendor,
            credentials: Credentials::new("administrator@vsphere.local", "vc-password"),
            region: String::new(),
            endpoint: Some(endpoint.into()),
            allow_insecure_http,
            request_rate: 5,
            limiter: Arc::new(RateLimiter::per_second(5)),
            http: HttpConfig::default(),
        }
    }

    #[test]
    fn debug_shows_no_credentials_userinfo_or_query() {
        let ctx = context(
            Vendor::Vsphere,
            "https://user:pa55@vc.example.com/sdk?token=t0ken#frag",
            false,
        );
        let shown = format!("{ctx:?}");
        assert!(shown.contains("https://vc.example.com/sdk"), "{shown}");
        for hidden in ["pa55", "user:", "t0ken", "frag", "vc-password"] {
            assert!(!shown.contains(hidden), "{hidden} in {shown}");
        }
    }

    #[test]
    fn debug_hides_an_endpoint_that_is_not_a_url_with_a_host() {
        // Without a scheme, `admin:hunter2@vc` parses as scheme `admin` with the password
        // in its path, which no user or password setter removes.
        for endpoint in [
            "admin:hunter2@vc.example.com",
            "vc.example.com:443?hunter2",
            "not a url hunter2",
        ] {
            let shown = format!("{:?}", context(Vendor::Vsphere, endpoint, false));
            assert!(!shown.contains("hunter2"), "{endpoint}: {shown}");
            assert!(shown.contains("<hidden: not a URL with a host>"), "{shown}");
        }
        let shown = format!(
            "{:?}",
            context(
                Vendor::Aliyun,
                "http://k:hunter2@[::1]:8080/p?hunter2=1",
                false
            )
        );
        assert!(shown.contains("\"http://[::1]:8080/p\""), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[cfg(feature = "vsphere")]
    #[test]
    fn a_vsphere_endpoint_over_plain_http_is_refused_unless_the_secret_allows_it() {
        let registry = ProviderRegistry::with_builtin_providers();
        let refused = registry
            .host_provider(context(Vendor::Vsphere, "http://vc.example.com", false))
            .expect_err("plain http refused");
        assert_eq!(refused.field(), Some("address"), "{refused}");
        assert!(registry
            .host_provider(context(Vendor::Vsphere, "http://vc.example.com", true))
            .is_ok());
        assert!(registry
            .host_provider(context(Vendor::Vsphere, "https://vc.example.com", false))
            .is_ok());
    }
}
