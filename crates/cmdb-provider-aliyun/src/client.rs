//! [`AliyunClient`]: one method per ECS and RDS API call.

use std::fmt;
use std::sync::Arc;

use cmdb_core::{Database, Error, ErrorKind, FailedRecord, Host, Result};
use cmdb_http::{
    clock_now, map_records, sensitive_header_value, ClientStats, Clock, Endpoint, HttpClient,
    RawResponse,
};
use cmdb_secret::Credentials;
use http::{HeaderName, HeaderValue, Method};
use tokio::sync::OnceCell;

use crate::map;
use crate::model::{
    DbInstance, DescribeDbInstancesResponse, DescribeInstancesResponse, DescribeRegionsResponse,
    Instance, RequestIdOnly,
};
use crate::sign::{canonical_query, hex_sha256, sign, SigningRequest};

/// The most ids one `DescribeInstances` `InstanceIds` filter takes.
pub const MAX_LOOKUP_IDS: usize = 100;

/// The header carrying the session token of temporary (STS) credentials.
const SECURITY_TOKEN_HEADER: &str = "x-acs-security-token";

/// The ECS API version every request names.
pub const API_VERSION: &str = "2014-05-26";

/// The largest `MaxResults` ECS accepts, and the page size used by default.
pub const MAX_PAGE_SIZE: u32 = 100;

/// The documented public ECS host of `region`, used when `DescribeRegions` cannot tell:
/// `ecs.<region>.aliyuncs.com` (the regional endpoints of the ECS "Endpoints" page), except
/// where the official SDKs' endpoint map (`services/ecs/endpoint.go`) says otherwise:
/// `cn-hangzhou` keeps its historical host `ecs-cn-hangzhou.aliyuncs.com`, and the
/// regions without a regional host (`cn-hangzhou-finance`, `cn-north-2-gov-1`) use the
/// central `ecs.aliyuncs.com`.
pub fn default_endpoint_host(region: &str) -> String {
    match region {
        "cn-hangzhou" => "ecs-cn-hangzhou.aliyuncs.com".to_owned(),
        "cn-hangzhou-finance" | "cn-north-2-gov-1" => "ecs.aliyuncs.com".to_owned(),
        _ => format!("ecs.{region}.aliyuncs.com"),
    }
}

/// The RDS API version every RDS request names.
pub const RDS_API_VERSION: &str = "2014-08-15";

/// The largest `MaxResults` RDS `DescribeDBInstances` accepts (1 to 100), and the page
/// size of database listings by default.
pub const MAX_DATABASE_PAGE_SIZE: u32 = 100;

/// The ids one `DescribeDBInstances` by-id lookup sends (`DBInstanceId`, comma-separated):
/// as many as one page of the answer holds, so that every instance found comes back in
/// one answer.
pub const MAX_DATABASE_LOOKUP_IDS: usize = MAX_DATABASE_PAGE_SIZE as usize;

/// The regions the official SDKs' RDS endpoint map (`services/rds/endpoint.go` of
/// alibaba-cloud-sdk-go) sends to the central host `rds.aliyuncs.com`: the big public
/// regions, the finance and government regions, and a few special ones.
const RDS_CENTRAL_REGIONS: &[&str] = &[
    "cn-hangzhou",
    "cn-shanghai",
    "cn-beijing",
    "cn-shenzhen",
    "cn-qingdao",
    "cn-hongkong",
    "cn-heyuan",
    "cn-wuhan",
    "cn-zhangbei",
    "cn-fujian",
    "cn-edge-1",
    "ap-southeast-1",
    "us-west-1",
    "us-east-1",
    "cn-shanghai-finance-1",
    "cn-shenzhen-finance-1",
    "cn-beijing-finance-1",
    "cn-beijing-finance-pop",
    "cn-hongkong-finance-pop",
    "cn-north-2-gov-1",
    "cn-beijing-gov-1",
    "cn-qingdao-nebula",
    "cn-zhengzhou-nebula-1",
    "cn-yushanfang",
    "rus-west-1-pop",
    "eu-west-1-oxs",
    "ap-northeast-2-pop",
];

/// The public RDS host of `region`, after the official SDKs' endpoint map: `rds.aliyuncs.com`
/// for the regions it names (`cn-hangzhou`, `cn-shanghai`, `cn-beijing`, `cn-shenzhen`,
/// `cn-qingdao`, `cn-hongkong`, `ap-southeast-1`, `us-west-1`, `us-east-1`, the finance
/// and government regions, ...), `rds-vpc.cn-hangzhou-finance.aliyuncs.com` for
/// `cn-hangzhou-finance`, and `rds.<region>.aliyuncs.com` for every other region.
pub fn rds_endpoint_host(region: &str) -> String {
    if region == "cn-hangzhou-finance" {
        return "rds-vpc.cn-hangzhou-finance.aliyuncs.com".to_owned();
    }
    if RDS_CENTRAL_REGIONS.contains(&region) {
        "rds.aliyuncs.com".to_owned()
    } else {
        format!("rds.{region}.aliyuncs.com")
    }
}

/// One page of RDS `DescribeDBInstances`, mapped to databases.
#[derive(Debug, Clone, PartialEq)]
pub struct DbInstancePage {
    /// The instances of the page.
    pub databases: Vec<Database>,
    /// The instances of the page that could not be decoded or mapped.
    pub failed: Vec<FailedRecord>,
    /// The token of the next page; `None` after the last one.
    pub next_token: Option<String>,
    /// `TotalRecordCount`: the instances of the whole listing.
    pub total: Option<u64>,
    /// The request id of the answer.
    pub request_id: String,
}

/// One region as `DescribeRegions` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliyunRegion {
    /// The region id, e.g. `cn-hangzhou`.
    pub region_id: String,
    /// The region's ECS endpoint host (`RegionEndpoint`), when reported.
    pub endpoint: Option<String>,
    /// The region's display name.
    pub local_name: String,
}

/// One page of `DescribeInstances`, mapped to hosts.
#[derive(Debug, Clone, PartialEq)]
pub struct InstancePage {
    /// The hosts of the page.
    pub hosts: Vec<Host>,
    /// The instances of the page that could not be decoded or mapped.
    pub failed: Vec<FailedRecord>,
    /// The token of the next page; `None` (or empty) after the last one.
    pub next_token: Option<String>,
    /// `TotalCount`: the instances of the whole listing.
    pub total: Option<u64>,
    /// The request id of the answer.
    pub request_id: String,
}

#[derive(Debug)]
// One per client: the size of the larger variant does not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum EndpointChoice {
    /// The secret's override: used for every call.
    Override(Endpoint),
    /// Ask `DescribeRegions` at `discovery`, use the endpoint it reports (remembered),
    /// else `fallback`, the region's documented endpoint.
    Discover {
        discovery: Endpoint,
        fallback: Endpoint,
        resolved: OnceCell<Endpoint>,
    },
}

/// A client of the ECS API for one region and one access key. Cheap to clone.
///
/// Every attempt of every request is signed afresh (`ACS3-HMAC-SHA256`, a new nonce and
/// the current UTC date), inside [`HttpClient::send`]'s per-attempt closure, so retries
/// never reuse a nonce.
#[derive(Clone)]
pub struct AliyunClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: HttpClient,
    credentials: Credentials,
    region: String,
    endpoint: EndpointChoice,
    /// Where RDS calls go: the override, else the region's RDS host.
    rds_endpoint: Endpoint,
    page_size: u32,
    clock: Clock,
}

impl fmt::Debug for AliyunClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AliyunClient")
            .field("region", &self.inner.region)
            .field("credentials", &self.inner.credentials)
            .field("endpoint", &self.inner.endpoint)
            .field("rds_endpoint", &self.inner.rds_endpoint)
            .field("page_size", &self.inner.page_size)
            .field("http", &self.inner.http)
            .finish()
    }
}

impl AliyunClient {
    pub(crate) fn new(
        http: HttpClient,
        credentials: Credentials,
        region: String,
        endpoint: EndpointChoice,
        rds_endpoint: Endpoint,
        page_size: u32,
        clock: Clock,
    ) -> AliyunClient {
        AliyunClient {
            inner: Arc::new(Inner {
                http,
                credentials,
                region,
                endpoint,
                rds_endpoint,
                page_size,
                clock,
            }),
        }
    }

    /// The region this client lists.
    pub fn region(&self) -> &str {
        &self.inner.region
    }

    /// Where RDS calls go: the endpoint override when set, else the region's RDS host
    /// ([`rds_endpoint_host`]).
    pub fn rds_endpoint(&self) -> &Endpoint {
        &self.inner.rds_endpoint
    }

    /// Requests, retries and throttled answers so far.
    pub fn stats(&self) -> ClientStats {
        self.inner.http.stats()
    }

    /// The endpoint requests go to: the override when set; else the one `DescribeRegions`
    /// reports for the region (asked once, then remembered); else the region's documented
    /// endpoint ([`default_endpoint_host`]).
    ///
    /// `DescribeRegions` is optional for the key: a permission error (`Forbidden.RAM`,
    /// `NoPermission`) falls back to the documented endpoint for the life of the client. A
    /// transient failure (throttling, 5xx, a timeout, after their retries) falls back for
    /// this call only, and the next call asks again. A wrong key is returned as the error
    /// it is: every other call would fail the same way.
    pub async fn endpoint(&self) -> Result<Endpoint> {
        let (discovery, fallback, resolved) = match &self.inner.endpoint {
            EndpointChoice::Override(e) => return Ok(e.clone()),
            EndpointChoice::Discover {
                discovery,
                fallback,
                resolved,
            } => (discovery, fallback, resolved),
        };
        if let Some(endpoint) = resolved.get() {
            return Ok(endpoint.clone());
        }
        match self.regions_at(discovery).await {
            Ok(regions) => {
                let endpoint =
                    pick_endpoint(&regions, &self.inner.region).unwrap_or_else(|| fallback.clone());
                Ok(resolved.get_or_init(|| async { endpoint }).await.clone())
            }
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                tracing::warn!(region = %self.inner.region, error = %e,
                    "the key may not call DescribeRegions (ecs:DescribeRegions); using the \
                     region's documented ECS endpoint");
                Ok(resolved
                    .get_or_init(|| async { fallback.clone() })
                    .await
                    .clone())
            }
            Err(e) if e.kind() == ErrorKind::Unauthenticated => Err(e),
            Err(e) => {
                tracing::warn!(region = %self.inner.region, error = %e,
                    "DescribeRegions failed; using the region's documented ECS endpoint for \
                     this call");
                Ok(fallback.clone())
            }
        }
    }

    /// `DescribeRegions`: the regions the key can use, with their endpoints. Sent to the
    /// override when set, else to the default endpoint of the client's region.
    pub async fn describe_regions(&self) -> Result<Vec<AliyunRegion>> {
        let endpoint = match &self.inner.endpoint {
            EndpointChoice::Override(e) => e.clone(),
            EndpointChoice::Discover { discovery, .. } => discovery.clone(),
        };
        self.regions_at(&endpoint).await
    }

    async fn regions_at(&self, endpoint: &Endpoint) -> Result<Vec<AliyunRegion>> {
        let params = vec![("RegionId".to_owned(), self.inner.region.clone())];
        let response = self
            .call(endpoint, API_VERSION, "DescribeRegions", &params)
            .await?;
        let body: DescribeRegionsResponse = response
            .json()
            .map_err(|e| e.context(request_context("DescribeRegions", &response)))?;
        Ok(body
            .regions
            .region
            .into_iter()
            .map(|r| AliyunRegion {
                region_id: r.region_id,
                endpoint: Some(r.region_endpoint).filter(|e| !e.trim().is_empty()),
                local_name: r.local_name,
            })
            .collect())
    }

    /// `DescribeInstances`: one page of the region's instances, `MaxResults` per page,
    /// continuing from `next_token`. Malformed answers are
    /// [`Decode`](ErrorKind::Decode) errors naming the field and the request id.
    pub async fn describe_instances(&self, next_token: Option<&str>) -> Result<InstancePage> {
        let response = self.describe_instances_response(next_token).await?;
        decode_instances(&response, &self.inner.region)
    }

    /// `DescribeInstances` of the given instances only (`InstanceIds`, a JSON array of at
    /// most [`MAX_LOOKUP_IDS`] ids): those the region still has, decoded as listing decodes
    /// them. Ids the service no longer has are simply absent from the answer.
    pub async fn describe_instances_by_ids(&self, instance_ids: &[String]) -> Result<InstancePage> {
        if instance_ids.len() > MAX_LOOKUP_IDS {
            return Err(Error::invalid_field(
                "instance_ids",
                format!("at most {MAX_LOOKUP_IDS} ids a request"),
            ));
        }
        let endpoint = self.endpoint().await?;
        let ids = serde_json::to_string(instance_ids)
            .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("instance ids: {e}")))?;
        let params = vec![
            ("RegionId".to_owned(), self.inner.region.clone()),
            ("MaxResults".to_owned(), MAX_LOOKUP_IDS.to_string()),
            ("InstanceIds".to_owned(), ids),
        ];
        let response = self
            .call(&endpoint, API_VERSION, "DescribeInstances", &params)
            .await?;
        decode_instances(&response, &self.inner.region)
    }

    async fn describe_instances_response(&self, next_token: Option<&str>) -> Result<RawResponse> {
        let endpoint = self.endpoint().await?;
        let mut params = vec![
            ("RegionId".to_owned(), self.inner.region.clone()),
            ("MaxResults".to_owned(), self.inner.page_size.to_string()),
        ];
        if let Some(token) = next_token.filter(|t| !t.is_empty()) {
            params.push(("NextToken".to_owned(), token.to_owned()));
        }
        self.call(&endpoint, API_VERSION, "DescribeInstances", &params)
            .await
    }

    /// RDS `DescribeDBInstances`: one page of the region's database instances,
    /// `max_results` (1 to [`MAX_DATABASE_PAGE_SIZE`]) a page, continuing from
    /// `next_token`. Sent to [`rds_endpoint`](Self::rds_endpoint). Malformed answers are
    /// [`Decode`](ErrorKind::Decode) errors naming the field and the request id.
    pub async fn describe_db_instances(
        &self,
        next_token: Option<&str>,
        max_results: u32,
    ) -> Result<DbInstancePage> {
        if !(1..=MAX_DATABASE_PAGE_SIZE).contains(&max_results) {
            return Err(Error::invalid_field(
                "page_size",
                format!("must be between 1 and {MAX_DATABASE_PAGE_SIZE}"),
            ));
        }
        let mut params = vec![
            ("RegionId".to_owned(), self.inner.region.clone()),
            ("MaxResults".to_owned(), max_results.to_string()),
        ];
        if let Some(token) = next_token.filter(|t| !t.is_empty()) {
            params.push(("NextToken".to_owned(), token.to_owned()));
        }
        let response = self
            .call(
                &self.inner.rds_endpoint,
                RDS_API_VERSION,
                "DescribeDBInstances",
                &params,
            )
            .await?;
        decode_db_instances(&response, &self.inner.region)
    }

    /// RDS `DescribeDBInstances` of the given instances only (`DBInstanceId`, at most
    /// [`MAX_DATABASE_LOOKUP_IDS`] ids, comma-separated): those the region still has,
    /// decoded as listing decodes them. Ids RDS no longer has are simply absent.
    pub async fn describe_db_instances_by_ids(
        &self,
        instance_ids: &[String],
    ) -> Result<DbInstancePage> {
        if instance_ids.len() > MAX_DATABASE_LOOKUP_IDS {
            return Err(Error::invalid_field(
                "instance_ids",
                format!("at most {MAX_DATABASE_LOOKUP_IDS} ids a request"),
            ));
        }
        if let Some(bad) = instance_ids.iter().find(|id| id.contains(',')) {
            return Err(Error::invalid_field(
                "instance_ids",
                format!("{bad:?} is not an RDS instance id"),
            ));
        }
        let params = vec![
            ("RegionId".to_owned(), self.inner.region.clone()),
            ("MaxResults".to_owned(), MAX_DATABASE_PAGE_SIZE.to_string()),
            ("DBInstanceId".to_owned(), instance_ids.join(",")),
        ];
        let response = self
            .call(
                &self.inner.rds_endpoint,
                RDS_API_VERSION,
                "DescribeDBInstances",
                &params,
            )
            .await?;
        decode_db_instances(&response, &self.inner.region)
    }

    /// Sends one signed RPC call of the product whose API is `version` (ECS
    /// [`API_VERSION`], RDS [`RDS_API_VERSION`]), retrying as the HTTP client is
    /// configured to.
    pub(crate) async fn call(
        &self,
        endpoint: &Endpoint,
        version: &'static str,
        action: &'static str,
        params: &[(String, String)],
    ) -> Result<RawResponse> {
        self.inner
            .http
            .send(action, || {
                self.signed_request(endpoint, version, action, params)
            })
            .await
    }

    /// Builds and signs one attempt: a fresh nonce and the current date every time.
    fn signed_request(
        &self,
        endpoint: &Endpoint,
        version: &str,
        action: &str,
        params: &[(String, String)],
    ) -> Result<reqwest::Request> {
        let date = clock_now(&self.inner.clock)
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        let body_sha256 = hex_sha256(b"");
        let acs_headers = [
            ("x-acs-action", action.to_owned()),
            ("x-acs-version", version.to_owned()),
            ("x-acs-date", date),
            ("x-acs-signature-nonce", nonce),
            ("x-acs-content-sha256", body_sha256.clone()),
        ];
        let mut url = endpoint.join("/");
        let query = canonical_query(params);
        if !query.is_empty() {
            // Already encoded exactly as signed; `url` leaves these characters alone.
            url.set_query(Some(&query));
        }
        let mut signed: Vec<(String, String)> = vec![("host".into(), endpoint.host_header())];
        signed.extend(
            acs_headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone())),
        );
        // Temporary (STS) credentials: the token travels in `x-acs-security-token`,
        // signed like every `x-acs-*` header, as the official SDKs send it.
        let token = self.inner.credentials.session_token();
        if let Some(token) = token {
            signed.push((SECURITY_TOKEN_HEADER.to_owned(), token.to_owned()));
        }
        let signature = sign(
            &SigningRequest {
                method: "POST",
                path: url.path(),
                query: params,
                headers: &signed,
                body_sha256: &body_sha256,
            },
            self.inner.credentials.api_key(),
            self.inner.credentials.api_secret(),
        );
        let mut request = reqwest::Request::new(Method::POST, url);
        let headers = request.headers_mut();
        for (name, value) in acs_headers {
            let value = HeaderValue::from_str(&value).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!("invalid value for header {name}"),
                )
            })?;
            headers.insert(HeaderName::from_static(name), value);
        }
        if let Some(token) = token {
            headers.insert(
                HeaderName::from_static(SECURITY_TOKEN_HEADER),
                sensitive_header_value(token)?,
            );
        }
        headers.insert(
            http::header::AUTHORIZATION,
            sensitive_header_value(&signature.authorization)?,
        );
        *request.body_mut() = Some(reqwest::Body::from(Vec::<u8>::new()));
        Ok(request)
    }
}

/// The endpoint `DescribeRegions` reports for `region`, if any.
pub(crate) fn pick_endpoint(regions: &[AliyunRegion], region: &str) -> Option<Endpoint> {
    let host = regions
        .iter()
        .find(|r| r.region_id == region)?
        .endpoint
        .as_deref()?;
    match Endpoint::https_host(host) {
        Ok(e) => Some(e),
        Err(_) => {
            tracing::warn!(
                region,
                "DescribeRegions reported an invalid endpoint; ignoring it"
            );
            None
        }
    }
}

/// Decodes and maps a `DescribeInstances` answer of `region`: its hosts, and the instances
/// that could not be decoded or mapped as failed records. An answer without `Instances`
/// is a [`Decode`](ErrorKind::Decode) error.
pub(crate) fn decode_instances(response: &RawResponse, region: &str) -> Result<InstancePage> {
    let body: DescribeInstancesResponse<'_> = response
        .json()
        .map_err(|e| e.context(request_context("DescribeInstances", response)))?;
    let request_id = if body.request_id.is_empty() {
        cmdb_http::request_id(&response.headers).unwrap_or_default()
    } else {
        body.request_id
    };
    let Some(instances) = body.instances else {
        return Err(Error::decode(format!(
            "DescribeInstances: field `Instances` is missing [request id {request_id}]"
        )));
    };
    let (hosts, failed) = map_records(
        "DescribeInstances",
        &instances.instance,
        "InstanceId",
        |instance: Instance<'_>| map::to_host(instance, region, &request_id),
    );
    Ok(InstancePage {
        hosts,
        failed,
        next_token: body.next_token.filter(|t| !t.is_empty()),
        total: body.total_count,
        request_id,
    })
}

/// Decodes and maps a `DescribeDBInstances` answer of `region`: its databases, and the
/// instances that could not be decoded or mapped as failed records. An answer without
/// `Items` is a [`Decode`](ErrorKind::Decode) error.
pub(crate) fn decode_db_instances(response: &RawResponse, region: &str) -> Result<DbInstancePage> {
    let body: DescribeDbInstancesResponse<'_> = response
        .json()
        .map_err(|e| e.context(request_context("DescribeDBInstances", response)))?;
    let request_id = if body.request_id.is_empty() {
        cmdb_http::request_id(&response.headers).unwrap_or_default()
    } else {
        body.request_id
    };
    let Some(items) = body.items else {
        return Err(Error::decode(format!(
            "DescribeDBInstances: field `Items` is missing [request id {request_id}]"
        )));
    };
    let (databases, failed) = map_records(
        "DescribeDBInstances",
        &items.db_instance,
        "DBInstanceId",
        |instance: DbInstance| map::to_database(instance, region, &request_id),
    );
    Ok(DbInstancePage {
        databases,
        failed,
        next_token: body.next_token.filter(|t| !t.is_empty()),
        total: body.total_record_count,
        request_id,
    })
}

/// `action [request id …]`, for the context of a decode error: the body's `RequestId`
/// when it can be read, else the header's.
fn request_context(action: &str, response: &RawResponse) -> String {
    let id = serde_json::from_slice::<RequestIdOnly>(&response.body)
        .ok()
        .and_then(|b| b.request_id)
        .or_else(|| cmdb_http::request_id(&response.headers));
    format!(
        "{action} [request id {}]",
        id.as_deref().unwrap_or("unknown")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(body: impl Into<Vec<u8>>) -> RawResponse {
        RawResponse::new(http::StatusCode::OK, http::HeaderMap::new(), body.into())
    }

    #[test]
    fn a_body_not_utf8_is_a_decode_error_naming_where() {
        let mut body =
            br#"{"RequestId":"R","Instances":{"Instance":[{"InstanceId":"i-1","Skipped":""#
                .to_vec();
        body.extend([0xff, 0xfe]);
        body.extend(br#""}]}}"#);
        let e = decode_instances(&answer(body), "r").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Decode);
        assert!(e.message().contains("Instances.Instance[0]"), "{e}");
    }

    #[test]
    fn instances_that_do_not_map_are_failed_records() {
        let body = r#"{"RequestId":"R","NextToken":"t","TotalCount":3,"Instances":{"Instance":[
            {"InstanceId":"i-1"},{"InstanceId":"i-2","Cpu":"two"},{"InstanceName":"no id"}]}}"#;
        let page = decode_instances(&answer(body), "r").unwrap();
        assert_eq!(page.hosts.len(), 1);
        assert_eq!(
            (page.next_token.as_deref(), page.total),
            (Some("t"), Some(3))
        );
        assert_eq!(page.failed.len(), 2);
        assert_eq!(page.failed[0].instance_id.as_deref(), Some("i-2"));
        assert!(
            page.failed[0].reason.contains("field `Cpu`"),
            "{:?}",
            page.failed
        );
        assert_eq!(page.failed[1].instance_id, None);
        let e = decode_instances(&answer(r#"{"RequestId":"R"}"#), "r").unwrap_err();
        assert!(e.message().contains("`Instances` is missing"), "{e}");
    }

    fn region(id: &str, endpoint: &str) -> AliyunRegion {
        AliyunRegion {
            region_id: id.into(),
            endpoint: Some(endpoint.to_owned()).filter(|e| !e.is_empty()),
            local_name: id.into(),
        }
    }

    #[test]
    fn discovered_endpoints_are_used_when_valid() {
        let regions = [
            region("cn-hangzhou", "ecs.aliyuncs.com"),
            region("cn-qingdao-nebula", "ecs.cn-qingdao-nebula.aliyuncs.com"),
            region("cn-empty", ""),
            region("cn-bad", "evil.example/x"),
        ];
        assert_eq!(
            pick_endpoint(&regions, "cn-hangzhou")
                .unwrap()
                .host_header(),
            "ecs.aliyuncs.com"
        );
        assert_eq!(
            pick_endpoint(&regions, "cn-qingdao-nebula")
                .unwrap()
                .base_url()
                .as_str(),
            "https://ecs.cn-qingdao-nebula.aliyuncs.com/"
        );
        assert!(pick_endpoint(&regions, "cn-empty").is_none());
        assert!(pick_endpoint(&regions, "cn-bad").is_none());
        assert!(pick_endpoint(&regions, "us-west-1").is_none());
    }
}
