//! [`AliyunBuilder`]: configuration -> [`AliyunClient`] / [`AliyunHostProvider`] /
//! [`AliyunDatabaseProvider`].

use cmdb_core::{Error, Result, Vendor};
use cmdb_http::{client_settings_methods, ClientSettings, Endpoint};
use cmdb_secret::Credentials;
use tokio::sync::OnceCell;

use crate::client::{
    default_endpoint_host, rds_endpoint_host, AliyunClient, EndpointChoice, MAX_DATABASE_PAGE_SIZE,
    MAX_PAGE_SIZE,
};
use crate::database::AliyunDatabaseProvider;
use crate::error::AliyunClassifier;
use crate::provider::AliyunHostProvider;

/// Builds an [`AliyunClient`], an [`AliyunHostProvider`] or an [`AliyunDatabaseProvider`].
///
/// Credentials and region are required. Without an endpoint override the endpoint is
/// discovered with `DescribeRegions` on first use.
#[derive(Debug, Clone, Default)]
pub struct AliyunBuilder {
    settings: ClientSettings,
    page_size: Option<u32>,
    database_page_size: Option<u32>,
    regions_endpoint: Option<String>,
}

impl AliyunBuilder {
    /// An empty builder.
    pub fn new() -> AliyunBuilder {
        AliyunBuilder::default()
    }

    /// A builder from the Alibaba Cloud SDKs' variables: `ALIBABA_CLOUD_ACCESS_KEY_ID`,
    /// `ALIBABA_CLOUD_ACCESS_KEY_SECRET`, and when set `ALIBABA_CLOUD_SECURITY_TOKEN`
    /// (temporary STS credentials) and `ALIBABA_CLOUD_REGION_ID`.
    pub fn from_env() -> AliyunBuilder {
        let mut b = AliyunBuilder::new();
        if let (Ok(id), Ok(secret)) = (
            std::env::var("ALIBABA_CLOUD_ACCESS_KEY_ID"),
            std::env::var("ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
        ) {
            let token = std::env::var("ALIBABA_CLOUD_SECURITY_TOKEN").unwrap_or_default();
            b.settings.credentials = Some(Credentials::new(id, secret).with_session_token(token));
        }
        b.settings.region = std::env::var("ALIBABA_CLOUD_REGION_ID").ok();
        b
    }

    client_settings_methods!(settings, signed);

    /// `MaxResults` per page, 1 to 100 (default 100).
    pub fn with_page_size(mut self, page_size: u32) -> AliyunBuilder {
        self.page_size = Some(page_size);
        self
    }

    /// RDS `MaxResults` per page of a database listing, 1 to 100 (default 100).
    pub fn with_database_page_size(mut self, page_size: u32) -> AliyunBuilder {
        self.database_page_size = Some(page_size);
        self
    }

    /// Where `DescribeRegions` is asked for the region's endpoint when no endpoint
    /// override is set (default: the region's documented endpoint, which is also where
    /// requests go when the answer does not tell).
    pub fn with_regions_endpoint(mut self, url: impl Into<String>) -> AliyunBuilder {
        self.regions_endpoint = Some(url.into());
        self
    }

    /// Builds the client. Makes no request.
    ///
    /// Errors are [`InvalidInput`](cmdb_core::ErrorKind::InvalidInput) about one field:
    /// `api_key`/`api_secret` missing or empty, `region` missing or not a region id,
    /// `address` not a valid URL, `page_size` out of 1..=100.
    pub fn build_client(&self) -> Result<AliyunClient> {
        let credentials = self.settings.credentials()?;
        let region = self.settings.region("cn-hangzhou")?;
        let page_size = self.page_size.unwrap_or(MAX_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
            return Err(Error::invalid_field(
                "page_size",
                "must be between 1 and 100",
            ));
        }
        let rds_endpoint = match self.settings.endpoint()? {
            Some(endpoint) => endpoint,
            None => Endpoint::https_host(&rds_endpoint_host(&region))?,
        };
        let endpoint = match self.settings.endpoint()? {
            Some(endpoint) => EndpointChoice::Override(endpoint),
            None => {
                let fallback = Endpoint::https_host(&default_endpoint_host(&region))?;
                let discovery = match &self.regions_endpoint {
                    Some(url) => Endpoint::parse(url)
                        .map_err(|e| Error::invalid_field("regions_endpoint", e.message()))?,
                    None => fallback.clone(),
                };
                EndpointChoice::Discover {
                    discovery,
                    fallback,
                    resolved: OnceCell::new(),
                }
            }
        };
        let http = self.settings.http_client(
            self.settings.http.clone(),
            Vendor::Aliyun,
            AliyunClassifier,
        )?;
        Ok(AliyunClient::new(
            http,
            credentials,
            region,
            endpoint,
            rds_endpoint,
            page_size,
            self.settings.clock(),
        ))
    }

    /// Builds the host provider. Makes no request.
    pub fn build(&self) -> Result<AliyunHostProvider> {
        Ok(AliyunHostProvider::new(self.build_client()?))
    }

    /// Builds the database (RDS) provider, on the same client as the hosts' (signer,
    /// rate limiter, retries, STS token); RDS calls go to the endpoint override when set,
    /// else to the region's RDS host ([`rds_endpoint_host`]). Makes no request.
    ///
    /// Fails as [`build_client`](Self::build_client) does, and when the database page
    /// size is not 1 to 100 (`page_size`).
    pub fn build_databases(&self) -> Result<AliyunDatabaseProvider> {
        let page_size = self.database_page_size.unwrap_or(MAX_DATABASE_PAGE_SIZE);
        if !(1..=MAX_DATABASE_PAGE_SIZE).contains(&page_size) {
            return Err(Error::invalid_field(
                "page_size",
                format!("must be between 1 and {MAX_DATABASE_PAGE_SIZE}"),
            ));
        }
        Ok(AliyunDatabaseProvider::new(self.build_client()?, page_size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials::new("LTAI5tTestKey0001", "top-secret-value")
    }

    #[test]
    fn build_checks_every_field() {
        let field = |b: AliyunBuilder| b.build().unwrap_err().field();
        assert_eq!(
            field(AliyunBuilder::new().with_region("cn-hangzhou")),
            Some("api_key")
        );
        assert_eq!(
            field(
                AliyunBuilder::new()
                    .with_credentials(Credentials::new("ak", ""))
                    .with_region("r")
            ),
            Some("api_secret")
        );
        assert_eq!(
            field(AliyunBuilder::new().with_credentials(creds())),
            Some("region")
        );
        assert_eq!(
            field(
                AliyunBuilder::new()
                    .with_credentials(creds())
                    .with_region("cn/../x")
            ),
            Some("region")
        );
        assert_eq!(
            field(
                AliyunBuilder::new()
                    .with_credentials(creds())
                    .with_region("cn-hangzhou")
                    .with_endpoint("ftp://x")
            ),
            Some("address")
        );
        assert_eq!(
            field(
                AliyunBuilder::new()
                    .with_credentials(creds())
                    .with_region("cn-hangzhou")
                    .with_page_size(101)
            ),
            Some("page_size")
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let b = AliyunBuilder::new()
            .with_credentials(creds())
            .with_region("cn-beijing");
        let shown = format!("{b:?}");
        assert!(!shown.contains("top-secret-value"), "{shown}");
        assert!(!shown.contains("LTAI5tTestKey0001"), "{shown}");
        let client = b.build_client().unwrap();
        let shown = format!("{client:?}");
        assert!(!shown.contains("top-secret-value"), "{shown}");
        assert!(shown.contains("cn-beijing"), "{shown}");
        assert!(shown.contains("ecs.cn-beijing.aliyuncs.com"), "{shown}");
    }

    /// Every region of the ECS "Regions and zones" and "Endpoints" pages, and the
    /// exceptions of the official SDKs' endpoint map (`services/ecs/endpoint.go`).
    #[test]
    fn default_endpoints_of_every_documented_region() {
        let regional = [
            "cn-qingdao",
            "cn-beijing",
            "cn-zhangjiakou",
            "cn-huhehaote",
            "cn-wulanchabu",
            "cn-shanghai",
            "cn-nanjing",
            "cn-fuzhou",
            "cn-shenzhen",
            "cn-heyuan",
            "cn-guangzhou",
            "cn-chengdu",
            "cn-wuhan-lr",
            "cn-hongkong",
            "ap-northeast-1",
            "ap-northeast-2",
            "ap-southeast-1",
            "ap-southeast-3",
            "ap-southeast-5",
            "ap-southeast-6",
            "ap-southeast-7",
            "us-east-1",
            "us-west-1",
            "na-south-1",
            "eu-west-1",
            "eu-central-1",
            "me-east-1",
            "me-central-1",
            "cn-shanghai-finance-1",
            "cn-shenzhen-finance-1",
            "cn-beijing-finance-1",
        ];
        for region in regional {
            assert_eq!(
                default_endpoint_host(region),
                format!("ecs.{region}.aliyuncs.com")
            );
        }
        assert_eq!(
            default_endpoint_host("cn-hangzhou"),
            "ecs-cn-hangzhou.aliyuncs.com"
        );
        for central in ["cn-hangzhou-finance", "cn-north-2-gov-1"] {
            assert_eq!(default_endpoint_host(central), "ecs.aliyuncs.com");
        }
    }
}
