//! [`TencentBuilder`]: credentials, region, endpoint and limits in; a client or a
//! provider out.

use cmdb_core::{Error, Result, Vendor};
use cmdb_http::{client_settings_methods, ClientSettings};
use cmdb_secret::Credentials;

use crate::client::{TencentClient, MAX_DATABASE_PAGE_SIZE, MAX_PAGE_SIZE};
use crate::database::TencentDatabaseProvider;
use crate::error::TencentClassifier;
use crate::provider::TencentHostProvider;

/// Pages in flight by default after the first one.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// Builds a [`TencentClient`], a [`TencentHostProvider`] or a [`TencentDatabaseProvider`].
///
/// ```no_run
/// use cmdb_provider_tencent::TencentBuilder;
/// use cmdb_secret::Credentials;
///
/// # fn demo() -> cmdb_core::Result<()> {
/// let provider = TencentBuilder::new()
///     .with_credentials(Credentials::new("AKIDexample", "secret-key"))
///     .with_region("ap-guangzhou")
///     .with_request_rate(20)
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TencentBuilder {
    settings: ClientSettings,
    page_size: u64,
    database_page_size: u64,
    concurrency: usize,
}

impl Default for TencentBuilder {
    fn default() -> Self {
        TencentBuilder::new()
    }
}

impl TencentBuilder {
    /// A builder with no credentials or region, pages of 100 and 4 pages in flight.
    pub fn new() -> TencentBuilder {
        TencentBuilder {
            settings: ClientSettings::default(),
            page_size: MAX_PAGE_SIZE,
            database_page_size: MAX_DATABASE_PAGE_SIZE,
            concurrency: DEFAULT_CONCURRENCY,
        }
    }

    /// A builder from the Tencent Cloud SDKs' variables: `TENCENTCLOUD_SECRET_ID`,
    /// `TENCENTCLOUD_SECRET_KEY`, and when set `TENCENTCLOUD_SESSION_TOKEN` (temporary
    /// STS credentials; the SDKs name no variable for it, this is the one the Tencent
    /// Cloud tools use) and `TENCENTCLOUD_REGION`.
    pub fn from_env() -> TencentBuilder {
        let mut builder = TencentBuilder::new();
        if let (Ok(id), Ok(key)) = (
            std::env::var("TENCENTCLOUD_SECRET_ID"),
            std::env::var("TENCENTCLOUD_SECRET_KEY"),
        ) {
            let token = std::env::var("TENCENTCLOUD_SESSION_TOKEN").unwrap_or_default();
            builder.settings.credentials =
                Some(Credentials::new(id, key).with_session_token(token));
        }
        builder.settings.region = std::env::var("TENCENTCLOUD_REGION").ok();
        builder
    }

    client_settings_methods!(settings, signed);

    /// Instances per page, 1 to 100 (default 100).
    pub fn with_page_size(mut self, page_size: u64) -> Self {
        self.page_size = page_size;
        self
    }

    /// CDB instances per page of a database listing, 1 to 2000 (default 2000).
    pub fn with_database_page_size(mut self, page_size: u64) -> Self {
        self.database_page_size = page_size;
        self
    }

    /// Pages in flight at most after the first (default 4; at least 1). The HTTP
    /// client's own in-flight cap and the rate limiter still apply.
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Builds the client.
    ///
    /// Fails with [`InvalidInput`](cmdb_core::ErrorKind::InvalidInput) naming the field:
    /// no or empty credentials (`api_key`, `api_secret`), no region or one that is not
    /// lower-case letters, digits and `-` (`region`), a bad override (`address`).
    pub fn build_client(&self) -> Result<TencentClient> {
        let credentials = self.settings.credentials()?;
        let region = self.settings.region("ap-guangzhou")?;
        let endpoint = self.settings.endpoint()?;
        let http = self.settings.http_client(
            self.settings.http.clone(),
            Vendor::Tencent,
            TencentClassifier,
        )?;
        Ok(TencentClient::new(
            http,
            credentials,
            region,
            endpoint,
            self.settings.clock(),
        ))
    }

    /// Builds the provider (no request is made until its pages are polled).
    ///
    /// Fails as [`build_client`](Self::build_client) does, and when the page size is not
    /// 1 to 100 (`page_size`).
    pub fn build(&self) -> Result<TencentHostProvider> {
        if self.page_size == 0 || self.page_size > MAX_PAGE_SIZE {
            return Err(Error::invalid_field(
                "page_size",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        Ok(TencentHostProvider::new(
            self.build_client()?,
            self.page_size,
            self.concurrency.max(1),
        ))
    }

    /// Builds the database (CDB) provider, on the same client as the hosts' (signer,
    /// rate limiter, retries, STS token, endpoint override); CDB calls go to
    /// `cdb.tencentcloudapi.com`, signed for the service `cdb`. No request is made until
    /// its pages are polled.
    ///
    /// Fails as [`build_client`](Self::build_client) does, and when the database page
    /// size is not 1 to 2000 (`page_size`).
    pub fn build_databases(&self) -> Result<TencentDatabaseProvider> {
        let page_size = self.database_page_size;
        if page_size == 0 || page_size > MAX_DATABASE_PAGE_SIZE {
            return Err(Error::invalid_field(
                "page_size",
                format!("must be between 1 and {MAX_DATABASE_PAGE_SIZE}"),
            ));
        }
        Ok(TencentDatabaseProvider::new(
            self.build_client()?,
            page_size,
        ))
    }
}

#[cfg(test)]
mod tests {
    use cmdb_core::{DatabaseProvider, ErrorKind, HostProvider};

    use super::*;
    use crate::client::{DESCRIBE_DB_INSTANCES, DESCRIBE_INSTANCES, DESCRIBE_REGIONS};

    fn builder() -> TencentBuilder {
        TencentBuilder::new()
            .with_credentials(Credentials::new("AKIDabcdefgh12345678", "top-secret-key"))
            .with_region("ap-guangzhou")
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let b = builder();
        let provider = b.build().unwrap();
        for shown in [
            format!("{b:?}"),
            format!("{provider:?}"),
            format!("{:?}", provider.client()),
        ] {
            assert!(!shown.contains("top-secret-key"), "{shown}");
            assert!(!shown.contains("AKIDabcdefgh12345678"), "{shown}");
            assert!(shown.contains("ap-guangzhou"), "{shown}");
        }
    }

    #[test]
    fn bad_settings_name_the_field() {
        let cases = [
            (TencentBuilder::new().with_region("ap-guangzhou"), "api_key"),
            (
                builder().with_credentials(Credentials::new("AKID", "")),
                "api_secret",
            ),
            (builder().with_region(""), "region"),
            (builder().with_region("ap-guangzhou/../x"), "region"),
            (builder().with_endpoint("ftp://x"), "address"),
            (builder().with_page_size(0), "page_size"),
            (builder().with_page_size(101), "page_size"),
        ];
        for (b, field) in cases {
            let e = b.build().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{field}");
            assert_eq!(e.field(), Some(field), "{e}");
            assert!(!e.to_string().contains("top-secret-key"));
        }
    }

    #[test]
    fn endpoints_follow_the_region_and_the_override() {
        let c = builder().build_client().unwrap();
        assert_eq!(
            c.endpoint_for(DESCRIBE_INSTANCES).unwrap().host_header(),
            "cvm.tencentcloudapi.com"
        );
        assert_eq!(
            c.endpoint_for(DESCRIBE_REGIONS).unwrap().host_header(),
            "region.tencentcloudapi.com"
        );
        let fsi = builder()
            .with_region("ap-shanghai-fsi")
            .build_client()
            .unwrap();
        assert_eq!(
            fsi.endpoint_for(DESCRIBE_INSTANCES).unwrap().host_header(),
            "cvm.ap-shanghai-fsi.tencentcloudapi.com"
        );
        let custom = builder()
            .with_endpoint("http://127.0.0.1:18080")
            .build_client()
            .unwrap();
        for api in [DESCRIBE_INSTANCES, DESCRIBE_REGIONS] {
            assert_eq!(
                custom.endpoint_for(api).unwrap().host_header(),
                "127.0.0.1:18080"
            );
        }
    }

    /// Every region Tencent Cloud documents for CVM, with the host each call goes to.
    /// Regions: the official Go SDK's `tencentcloud/common/regions/regions.go`
    /// (TencentCloud/tencentcloud-sdk-go, 2026 snapshot: 22 regions), a superset of the
    /// regions CVM's DescribeZones page accepts today
    /// (tencentcloud.com/document/product/213/35071, updated 2026-01-28); the older four
    /// (ap-guangzhou-open, ap-mumbai, eu-moscow, na-toronto) follow the same rule. Hosts:
    /// CVM's "Request Structure" page (tencentcloud.com/document/api/213/31573; its Chinese
    /// edition names `cvm.tencentcloudapi.com` where the international one names
    /// `cvm.intl.tencentcloudapi.com`): the nearest-region host, with the region in
    /// `X-TC-Region`, serves every region but the finance ones, which only answer on
    /// `cvm.<region>.tencentcloudapi.com`. The region service's DescribeRegions takes no
    /// region, so it always goes to `region.tencentcloudapi.com`.
    #[test]
    fn public_endpoints_match_every_documented_region() {
        const DOCUMENTED: &[(&str, &str)] = &[
            ("ap-bangkok", "cvm.tencentcloudapi.com"),
            ("ap-beijing", "cvm.tencentcloudapi.com"),
            ("ap-chengdu", "cvm.tencentcloudapi.com"),
            ("ap-chongqing", "cvm.tencentcloudapi.com"),
            ("ap-guangzhou", "cvm.tencentcloudapi.com"),
            ("ap-guangzhou-open", "cvm.tencentcloudapi.com"),
            ("ap-hongkong", "cvm.tencentcloudapi.com"),
            ("ap-jakarta", "cvm.tencentcloudapi.com"),
            ("ap-mumbai", "cvm.tencentcloudapi.com"),
            ("ap-nanjing", "cvm.tencentcloudapi.com"),
            ("ap-seoul", "cvm.tencentcloudapi.com"),
            ("ap-shanghai", "cvm.tencentcloudapi.com"),
            ("ap-shanghai-fsi", "cvm.ap-shanghai-fsi.tencentcloudapi.com"),
            ("ap-shenzhen-fsi", "cvm.ap-shenzhen-fsi.tencentcloudapi.com"),
            ("ap-singapore", "cvm.tencentcloudapi.com"),
            ("ap-tokyo", "cvm.tencentcloudapi.com"),
            ("eu-frankfurt", "cvm.tencentcloudapi.com"),
            ("eu-moscow", "cvm.tencentcloudapi.com"),
            ("na-ashburn", "cvm.tencentcloudapi.com"),
            ("na-siliconvalley", "cvm.tencentcloudapi.com"),
            ("na-toronto", "cvm.tencentcloudapi.com"),
            ("sa-saopaulo", "cvm.tencentcloudapi.com"),
        ];
        for (region, cvm) in DOCUMENTED {
            let client = builder().with_region(*region).build_client().unwrap();
            let instances = client.endpoint_for(DESCRIBE_INSTANCES).unwrap();
            assert_eq!(instances.host_header(), *cvm, "{region}");
            assert_eq!(instances.scheme(), "https", "{region}");
            let regions = client.endpoint_for(DESCRIBE_REGIONS).unwrap();
            assert_eq!(
                regions.host_header(),
                "region.tencentcloudapi.com",
                "{region}"
            );
        }
        // X-TC-Region goes with CVM calls, never with the region service's.
        assert_eq!(
            (DESCRIBE_INSTANCES.regional, DESCRIBE_REGIONS.regional),
            (true, false)
        );
    }

    /// CDB calls go where CVM calls go, on the `cdb` service's hosts.
    #[test]
    fn database_calls_go_to_the_cdb_host() {
        for (region, host) in [
            ("ap-guangzhou", "cdb.tencentcloudapi.com"),
            ("na-ashburn", "cdb.tencentcloudapi.com"),
            ("ap-shanghai-fsi", "cdb.ap-shanghai-fsi.tencentcloudapi.com"),
            ("ap-shenzhen-fsi", "cdb.ap-shenzhen-fsi.tencentcloudapi.com"),
        ] {
            let client = builder().with_region(region).build_client().unwrap();
            let endpoint = client.endpoint_for(DESCRIBE_DB_INSTANCES).unwrap();
            assert_eq!(endpoint.host_header(), host, "{region}");
        }
        assert_eq!(
            (DESCRIBE_DB_INSTANCES.service, DESCRIBE_DB_INSTANCES.version),
            ("cdb", "2017-03-20")
        );
        let p = builder().build_databases().unwrap();
        assert_eq!((p.vendor(), p.page_size()), (Vendor::Tencent, 2000));
        let e = builder()
            .with_database_page_size(2001)
            .build_databases()
            .unwrap_err();
        assert_eq!(e.field(), Some("page_size"));
    }

    #[test]
    fn provider_reports_vendor_region_and_defaults() {
        let p = builder().build().unwrap();
        assert_eq!(p.vendor(), Vendor::Tencent);
        assert_eq!(p.region(), "ap-guangzhou");
        assert_eq!((p.page_size(), p.concurrency()), (100, DEFAULT_CONCURRENCY));
        assert_eq!(
            builder().with_concurrency(0).build().unwrap().concurrency(),
            1
        );
    }
}
