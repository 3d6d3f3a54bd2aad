//! [`AliyunClient`]: one method per ECS API call, and [`AliyunHostProvider`], the
//! [`HostProvider`] built on it.

use std::fmt;
use std::sync::Arc;

use cmdb_core::{Error, ErrorKind, Host, HostPage, HostProvider, Result, Vendor};
use cmdb_http::{
    clock_now, sensitive_header_value, token_pages_pipelined, ClientStats, Clock, Endpoint,
    HttpClient, RawResponse,
};
use cmdb_secret::Credentials;
use futures::stream::BoxStream;
use http::{HeaderName, HeaderValue, Method};
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::map;
use crate::model::{self, DescribeInstancesResponse, DescribeRegionsResponse, Instance};
use crate::sign::{canonical_query, hex_sha256, sign, SigningRequest};

/// The ECS API version every request names.
pub const API_VERSION: &str = "2014-05-26";

/// The largest `MaxResults` ECS accepts, and the page size used by default.
pub const MAX_PAGE_SIZE: u32 = 100;

/// The public ECS host of `region` when `DescribeRegions` cannot tell:
/// `ecs.<region>.aliyuncs.com`, except for the regions whose documented endpoint differs.
pub fn default_endpoint_host(region: &str) -> String {
    match region {
        // The SDKs' endpoint table sends the first region to its historical host.
        "cn-hangzhou" => "ecs-cn-hangzhou.aliyuncs.com".to_owned(),
        _ => format!("ecs.{region}.aliyuncs.com"),
    }
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
    /// The token of the next page; `None` (or empty) after the last one.
    pub next_token: Option<String>,
    /// `TotalCount`: the instances of the whole listing.
    pub total: Option<u64>,
    /// The request id of the answer.
    pub request_id: String,
}

#[derive(Debug)]
pub(crate) enum EndpointChoice {
    /// The secret's override: used for every call.
    Override(Endpoint),
    /// Ask `DescribeRegions` at `fallback` once, use the endpoint it reports, else
    /// `fallback`.
    Discover {
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
    page_size: u32,
    clock: Clock,
}

impl fmt::Debug for AliyunClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AliyunClient")
            .field("region", &self.inner.region)
            .field("credentials", &self.inner.credentials)
            .field("endpoint", &self.inner.endpoint)
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
        page_size: u32,
        clock: Clock,
    ) -> AliyunClient {
        AliyunClient {
            inner: Arc::new(Inner {
                http,
                credentials,
                region,
                endpoint,
                page_size,
                clock,
            }),
        }
    }

    /// The region this client lists.
    pub fn region(&self) -> &str {
        &self.inner.region
    }

    /// Requests, retries and throttled answers so far.
    pub fn stats(&self) -> ClientStats {
        self.inner.http.stats()
    }

    /// The endpoint requests go to: the override when set; else the one `DescribeRegions`
    /// reports for the region (asked once, then remembered); else
    /// [`default_endpoint_host`]. Authentication errors of `DescribeRegions` are returned,
    /// other failures fall back to the default host.
    pub async fn endpoint(&self) -> Result<Endpoint> {
        match &self.inner.endpoint {
            EndpointChoice::Override(e) => Ok(e.clone()),
            EndpointChoice::Discover { fallback, resolved } => resolved
                .get_or_try_init(|| async {
                    match self.regions_at(fallback).await {
                        Ok(regions) => Ok(pick_endpoint(&regions, &self.inner.region)
                            .unwrap_or_else(|| fallback.clone())),
                        Err(e)
                            if matches!(
                                e.kind(),
                                ErrorKind::Unauthenticated | ErrorKind::PermissionDenied
                            ) =>
                        {
                            Err(e)
                        }
                        Err(e) => {
                            tracing::warn!(region = %self.inner.region, error = %e,
                                "DescribeRegions failed; using the default ECS endpoint");
                            Ok(fallback.clone())
                        }
                    }
                })
                .await
                .cloned(),
        }
    }

    /// `DescribeRegions`: the regions the key can use, with their endpoints. Sent to the
    /// override when set, else to the default endpoint of the client's region.
    pub async fn describe_regions(&self) -> Result<Vec<AliyunRegion>> {
        let endpoint = match &self.inner.endpoint {
            EndpointChoice::Override(e) => e.clone(),
            EndpointChoice::Discover { fallback, .. } => fallback.clone(),
        };
        self.regions_at(&endpoint).await
    }

    async fn regions_at(&self, endpoint: &Endpoint) -> Result<Vec<AliyunRegion>> {
        let params = vec![("RegionId".to_owned(), self.inner.region.clone())];
        let response = self.call(endpoint, "DescribeRegions", &params).await?;
        let (value, header_id) = json_body(&response, "DescribeRegions")?;
        let body: DescribeRegionsResponse = model::decode(&value)
            .map_err(|(field, e)| decode_error("DescribeRegions", field, &e, &header_id))?;
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

    /// `DescribeInstances` without decoding the instances: the answer and the
    /// `NextToken` it carries, read without building a single instance. A body that no
    /// token can be read from is the same error [`describe_instances`] gives; a token
    /// read is certain only once the answer is decoded: see [`decode_checked`].
    ///
    /// [`describe_instances`]: AliyunClient::describe_instances
    async fn describe_instances_raw(
        &self,
        next_token: Option<&str>,
    ) -> Result<(RawResponse, Option<String>)> {
        let response = self.describe_instances_response(next_token).await?;
        let token = next_page_token(&response, &self.inner.region)?;
        Ok((response, token))
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
        let response = self.call(&endpoint, "DescribeInstances", &params).await?;
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
        self.call(&endpoint, "DescribeInstances", &params).await
    }

    /// Sends one signed RPC call, retrying as the HTTP client is configured to.
    async fn call(
        &self,
        endpoint: &Endpoint,
        action: &str,
        params: &[(String, String)],
    ) -> Result<RawResponse> {
        self.inner
            .http
            .send(|| self.signed_request(endpoint, action, params))
            .await
    }

    /// Builds and signs one attempt: a fresh nonce and the current date every time.
    fn signed_request(
        &self,
        endpoint: &Endpoint,
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
            ("x-acs-version", API_VERSION.to_owned()),
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

/// The `NextToken` of a `DescribeInstances` answer of `region` (`None` when absent or
/// empty), read with serde without building a single instance (the rest of the answer
/// is skipped). A body it cannot read a token from is the error [`decode_instances`]
/// gives. The token is checked against the decoded page: [`decode_checked`].
pub(crate) fn next_page_token(response: &RawResponse, region: &str) -> Result<Option<String>> {
    match serde_json::from_slice::<model::NextTokenOnly>(&response.body) {
        Ok(head) => Ok(head.next_token.filter(|t| !t.is_empty())),
        Err(_) => Ok(decode_instances(response, region)?.next_token),
    }
}

/// [`decode_instances`] of an answer whose `NextToken` was read as `token` before: a
/// [`Decode`](ErrorKind::Decode) error if decoding reads another, so that the request
/// sent with `token` is not followed. Only an answer with the key twice decodes with
/// another token (one that is not JSON does not decode at all).
pub(crate) fn decode_checked(
    response: &RawResponse,
    token: Option<&str>,
    region: &str,
) -> Result<InstancePage> {
    let page = decode_instances(response, region)?;
    if page.next_token.as_deref() != token {
        return Err(Error::decode(format!(
            "DescribeInstances: the answer's NextToken was read as {token:?} from its top \
             level but decodes as {:?}; is the key there twice? [request id {}]",
            page.next_token, page.request_id
        )));
    }
    Ok(page)
}

/// Decodes and maps a `DescribeInstances` answer of `region`.
///
/// The answer is decoded straight into typed instances; only when that fails is it read
/// again as a JSON tree, instance by instance, to say which field of which instance is
/// wrong. Building the tree first for every page cost more than half of the decoding.
pub(crate) fn decode_instances(response: &RawResponse, region: &str) -> Result<InstancePage> {
    // One UTF-8 check of the whole body, so that serde_json takes each string as it is
    // rather than checking it again. A body that is not UTF-8 throughout is decoded as
    // bytes, as it always was: serde_json checks only the strings it reads.
    let typed = match std::str::from_utf8(&response.body) {
        Ok(text) => serde_json::from_str::<model::TypedDescribeInstancesResponse<'_>>(text),
        Err(_) => {
            serde_json::from_slice::<model::TypedDescribeInstancesResponse<'_>>(&response.body)
        }
    };
    match typed {
        Ok(body) if body.instances.is_some() => {
            let request_id = if body.request_id.is_empty() {
                cmdb_http::request_id(&response.headers).unwrap_or_default()
            } else {
                body.request_id
            };
            let instances = body.instances.map(|i| i.instance).unwrap_or_default();
            let hosts = instances
                .into_iter()
                .map(|instance| map::to_host(instance, region, &request_id))
                .collect::<Result<Vec<_>>>()?;
            Ok(InstancePage {
                hosts,
                next_token: body.next_token.filter(|t| !t.is_empty()),
                total: body.total_count,
                request_id,
            })
        }
        _ => decode_instances_diagnosed(response, region),
    }
}

/// [`decode_instances`] through a JSON tree, naming the field that does not fit.
fn decode_instances_diagnosed(response: &RawResponse, region: &str) -> Result<InstancePage> {
    let (value, header_id) = json_body(response, "DescribeInstances")?;
    let body: DescribeInstancesResponse = model::decode(&value)
        .map_err(|(field, e)| decode_error("DescribeInstances", field, &e, &header_id))?;
    let request_id = if body.request_id.is_empty() {
        header_id.unwrap_or_default()
    } else {
        body.request_id
    };
    let Some(instances) = body.instances else {
        return Err(Error::decode(format!(
            "DescribeInstances: field `Instances` is missing [request id {request_id}]"
        )));
    };
    let mut hosts = Vec::with_capacity(instances.instance.len());
    for raw in &instances.instance {
        let instance: Instance<'_> = model::decode(raw).map_err(|(field, e)| {
            let id = raw.get("InstanceId").and_then(Value::as_str).unwrap_or("?");
            Error::decode(format!(
                "DescribeInstances: field `{}` of instance {id:?}: {e} [request id {request_id}]",
                field.as_deref().unwrap_or("?")
            ))
            .with_source(e)
        })?;
        hosts.push(map::to_host(instance, region, &request_id)?);
    }
    Ok(InstancePage {
        hosts,
        next_token: body.next_token.filter(|t| !t.is_empty()),
        total: body.total_count,
        request_id,
    })
}

fn json_body(response: &RawResponse, action: &str) -> Result<(Value, Option<String>)> {
    let header_id = cmdb_http::request_id(&response.headers);
    let value: Value = serde_json::from_slice(&response.body).map_err(|e| {
        Error::decode(format!(
            "{action}: the answer is not JSON ({e}), {} [request id {}]",
            response.body_summary(),
            header_id.as_deref().unwrap_or("unknown")
        ))
        .with_source(e)
    })?;
    if !value.is_object() {
        return Err(Error::decode(format!(
            "{action}: the answer is not a JSON object [request id {}]",
            header_id.as_deref().unwrap_or("unknown")
        )));
    }
    let body_id = value
        .get("RequestId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok((value, body_id.or(header_id)))
}

fn decode_error(
    action: &str,
    field: Option<String>,
    e: &serde_json::Error,
    request_id: &Option<String>,
) -> Error {
    Error::decode(format!(
        "{action}: field `{}`: {e} [request id {}]",
        field.as_deref().unwrap_or("?"),
        request_id.as_deref().unwrap_or("unknown")
    ))
}

/// The ECS hosts of one region, as a [`HostProvider`]: one `DescribeInstances` request
/// per page, made only when the page is polled.
///
/// An empty first page is not an error (a RAM user without permission gets an empty list
/// too, not an error): it is logged as a warning, and the sync's release guard refuses to
/// release a whole scope on such a listing.
#[derive(Debug, Clone)]
pub struct AliyunHostProvider {
    client: AliyunClient,
}

impl AliyunHostProvider {
    /// A provider listing through `client`.
    pub fn new(client: AliyunClient) -> AliyunHostProvider {
        AliyunHostProvider { client }
    }

    /// The client underneath.
    pub fn client(&self) -> &AliyunClient {
        &self.client
    }
}

/// The most ids one `DescribeInstances` `InstanceIds` filter takes.
pub const MAX_LOOKUP_IDS: usize = 100;

impl HostProvider for AliyunHostProvider {
    fn vendor(&self) -> Vendor {
        Vendor::Aliyun
    }

    fn region(&self) -> &str {
        self.client.region()
    }

    /// One request in flight: the next page is asked for as soon as an answer's
    /// `NextToken` is read, while that answer's instances are still being decoded.
    fn pages(&self) -> BoxStream<'static, Result<HostPage>> {
        let client = self.client.clone();
        let region = self.client.region().to_owned();
        let mut first = true;
        token_pages_pipelined(
            move |token: Option<String>| {
                let client = client.clone();
                async move {
                    let (response, next) = client.describe_instances_raw(token.as_deref()).await?;
                    Ok(((response, next.clone()), next))
                }
            },
            move |(response, next): (RawResponse, Option<String>)| {
                // The request for `next` is already out; a page that decodes with another
                // token ends the listing instead.
                let page = decode_checked(&response, next.as_deref(), &region)?;
                if std::mem::take(&mut first) && page.hosts.is_empty() && page.next_token.is_none()
                {
                    tracing::warn!(
                        region = %region,
                        request_id = %page.request_id,
                        "aliyun listed no instances in this region; if it has some, check that \
                         the AccessKey's RAM policy allows ecs:DescribeInstances"
                    );
                }
                Ok(HostPage::new(page.hosts, page.total))
            },
        )
    }

    /// `DescribeInstances` with `InstanceIds`, 100 ids a request, one page per request.
    fn lookup(&self, instance_ids: Vec<String>) -> Option<BoxStream<'static, Result<HostPage>>> {
        let client = self.client.clone();
        Some(cmdb_http::id_batches(
            instance_ids,
            MAX_LOOKUP_IDS,
            move |batch: Vec<String>| {
                let client = client.clone();
                async move {
                    let page = client.describe_instances_by_ids(&batch).await?;
                    Ok(HostPage::new(page.hosts, None))
                }
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(body: impl Into<Vec<u8>>) -> RawResponse {
        RawResponse::new(http::StatusCode::OK, http::HeaderMap::new(), body.into())
    }

    #[test]
    fn next_page_token_reads_the_top_level_token_only() {
        for (body, token) in [
            (
                r#"{"RequestId":"R","Instances":{"Instance":[{"InstanceId":"i-1","NextToken":"no"}]},"NextToken":"t-2"}"#,
                Some("t-2"),
            ),
            (
                r#"{"NextToken":"t-1","Instances":{"Instance":[]}}"#,
                Some("t-1"),
            ),
            (r#"{"NextToken":"","Instances":{"Instance":[]}}"#, None),
            (r#"{"NextToken":null,"Instances":{"Instance":[]}}"#, None),
            (r#"{"Instances":{"Instance":[]}}"#, None),
            (
                r#"{"NextToken":"a\u0062","Instances":{"Instance":[]}}"#,
                Some("ab"),
            ),
            (
                r#"{"Next\u0054oken":"t-3","Instances":{"Instance":[]}}"#,
                Some("t-3"),
            ),
        ] {
            assert_eq!(
                next_page_token(&answer(body), "r").unwrap().as_deref(),
                token,
                "{body}"
            );
        }
        for body in ["<html>proxy</html>", r#"{"NextToken":7}"#, r#"{"A":"t"#] {
            let e = next_page_token(&answer(body), "r").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Decode, "{body}");
        }
        // The key twice: the token read is the one the page decodes with (the last).
        let twice = answer(r#"{"NextToken":"t-4","NextToken":"t-5","Instances":{"Instance":[]}}"#);
        let read = next_page_token(&twice, "r").unwrap();
        assert_eq!(read.as_deref(), Some("t-5"));
        decode_checked(&twice, read.as_deref(), "r").unwrap();
        // A token read first is the one the page decodes with.
        let response = answer(r#"{"Instances":{"Instance":[]},"NextToken":"t-6"}"#);
        let read = next_page_token(&response, "r").unwrap();
        let page = decode_checked(&response, read.as_deref(), "r").unwrap();
        assert_eq!(page.next_token.as_deref(), Some("t-6"));
        let e = decode_checked(&response, Some("t-5"), "r").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Decode);
    }

    /// Whatever is cut from an answer, the listing never goes on with a token the page
    /// does not decode with: reading the token fails, or decoding does, or both agree.
    #[test]
    fn no_cut_of_an_answer_lists_on_with_a_wrong_token() {
        let instance = r#"{"InstanceId":"i-1","InstanceName":"a\"b","Tags":{"Tag":[{"TagKey":"NextToken","TagValue":"}"}]}}"#;
        for body in [
            format!(
                r#"{{"RequestId":"R","Instances":{{"Instance":[{instance}]}},"NextToken":"t-7","TotalCount":2}}"#
            ),
            format!(
                r#"{{"NextToken":"t-7","RequestId":"R","Instances":{{"Instance":[{instance}]}},"TotalCount":2}}"#
            ),
        ] {
            let mut decoded = 0;
            for cut in 0..=body.len() {
                let response = answer(&body.as_bytes()[..cut]);
                let Ok(read) = next_page_token(&response, "r") else {
                    continue;
                };
                match decode_checked(&response, read.as_deref(), "r") {
                    Ok(page) => {
                        assert_eq!(page.next_token.as_deref(), Some("t-7"));
                        assert_eq!(page.hosts.len(), 1);
                        decoded += 1;
                    }
                    Err(e) => assert_eq!(e.kind(), ErrorKind::Decode, "{e}"),
                }
            }
            assert_eq!(decoded, 1, "only the whole answer decodes: {body}");
        }
    }

    #[test]
    fn bodies_not_utf8_decode_as_before() {
        // Bytes that are not UTF-8 in a field cmdb skips: serde_json never read them.
        let mut body =
            br#"{"RequestId":"R","Instances":{"Instance":[{"InstanceId":"i-1","Skipped":""#
                .to_vec();
        body.extend([0xff, 0xfe]);
        body.extend(br#""}]}}"#);
        let page = decode_instances(&answer(body), "r").unwrap();
        assert_eq!(page.hosts[0].instance_id, "i-1");
        // In a field it reads: the answer is not JSON.
        let mut body =
            br#"{"RequestId":"R","Instances":{"Instance":[{"InstanceId":"i-1","InstanceName":""#
                .to_vec();
        body.extend([0xff, 0xfe]);
        body.extend(br#""}]}}"#);
        let e = decode_instances(&answer(body), "r").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Decode);
        assert!(e.message().contains("not JSON"), "{e}");
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
