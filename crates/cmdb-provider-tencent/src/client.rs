//! One method per Tencent Cloud API call, signed with TC3 and sent through `cmdb-http`.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use cmdb_core::{Database, Error, FailedRecord, Host, Result};
use cmdb_http::{map_records, sensitive_header_value, Clock, Endpoint, HttpClient, RawResponse};
use cmdb_secret::Credentials;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::HeaderValue;
use reqwest::Method;
use serde::Serialize;

use crate::map::{to_database, to_host};
use crate::model::{
    DescribeDbInstancesByIdsRequest, DescribeDbInstancesRequest, DescribeDbInstancesResponse,
    DescribeInstancesByIdsRequest, DescribeInstancesRequest, DescribeInstancesResponse,
    DescribeRegionsRequest, DescribeRegionsResponse, Envelope,
};
use crate::sign::{sign, SignInput};

/// The most ids one `DescribeInstances` `InstanceIds` lookup takes.
pub const MAX_LOOKUP_IDS: usize = 100;

/// The most instances `DescribeInstances` returns per call (its `Limit` maximum).
pub const MAX_PAGE_SIZE: u64 = 100;

/// The one `Content-Type` sent, and therefore the one signed.
pub(crate) const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// The root domain of the public endpoints.
const ROOT_DOMAIN: &str = "tencentcloudapi.com";

/// One API of one service: what is signed (`service`) is the API's, never the host's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Api {
    pub(crate) service: &'static str,
    pub(crate) version: &'static str,
    pub(crate) action: &'static str,
    /// Whether `X-TC-Region` is sent.
    pub(crate) regional: bool,
}

/// CVM `DescribeInstances`, version 2017-03-12.
pub(crate) const DESCRIBE_INSTANCES: Api = Api {
    service: "cvm",
    version: "2017-03-12",
    action: "DescribeInstances",
    regional: true,
};

/// CDB (TencentDB for MySQL) `DescribeDBInstances`, version 2017-03-20, signed for the
/// service `cdb`.
pub(crate) const DESCRIBE_DB_INSTANCES: Api = Api {
    service: "cdb",
    version: "2017-03-20",
    action: "DescribeDBInstances",
    regional: true,
};

/// The largest `Limit` CDB `DescribeDBInstances` accepts, and the page size of database
/// listings by default.
pub const MAX_DATABASE_PAGE_SIZE: u64 = 2000;

/// The ids one CDB `DescribeDBInstances` by-id lookup sends (`InstanceIds`), with a
/// `Limit` as large, so that every instance found comes back in one answer.
pub const MAX_DATABASE_LOOKUP_IDS: usize = 100;

/// One page of CDB `DescribeDBInstances`, mapped.
#[derive(Debug, Clone, PartialEq)]
pub struct DbInstancePage {
    /// The instances of the page, as databases of the client's region.
    pub databases: Vec<Database>,
    /// The instances of the page that could not be decoded or mapped.
    pub failed: Vec<FailedRecord>,
    /// `TotalCount`: instances in the whole listing when this page was answered.
    pub total_count: u64,
    /// Tencent's `RequestId`.
    pub request_id: Option<String>,
}

/// Region `DescribeRegions`, version 2022-06-27.
pub(crate) const DESCRIBE_REGIONS: Api = Api {
    service: "region",
    version: "2022-06-27",
    action: "DescribeRegions",
    regional: false,
};

/// One page of `DescribeInstances`, mapped.
#[derive(Debug, Clone, PartialEq)]
pub struct InstancePage {
    /// The instances of the page, as hosts of the client's region.
    pub hosts: Vec<Host>,
    /// The instances of the page that could not be decoded or mapped.
    pub failed: Vec<FailedRecord>,
    /// `TotalCount`: instances in the whole listing when this page was answered.
    pub total_count: u64,
    /// Tencent's `RequestId`.
    pub request_id: Option<String>,
}

/// One region of `DescribeRegions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TencentRegion {
    /// The region id, e.g. `ap-guangzhou`.
    pub region: String,
    /// Its display name, e.g. `South China (Guangzhou)`.
    pub name: Option<String>,
    /// `AVAILABLE` or another state word.
    pub state: Option<String>,
}

/// A Tencent Cloud API client for one secret and one region: built by
/// [`TencentBuilder::build_client`](crate::TencentBuilder::build_client).
///
/// Every call is a `POST` of a JSON body to `/`, signed with `TC3-HMAC-SHA256` afresh for
/// each attempt. The body is serialized once; the same bytes are hashed and sent. With an
/// endpoint override, every call (CVM and region service alike) goes there, and is still
/// signed for its API's service. Cloning is cheap.
#[derive(Clone)]
pub struct TencentClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: HttpClient,
    credentials: Credentials,
    region: String,
    endpoint: Option<Endpoint>,
    clock: Clock,
}

impl fmt::Debug for TencentClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TencentClient")
            .field("region", &self.inner.region)
            .field("endpoint", &self.inner.endpoint)
            // Credentials' own Debug masks the key and hides the secret.
            .field("credentials", &self.inner.credentials)
            .field("http", &self.inner.http)
            .finish()
    }
}

impl TencentClient {
    pub(crate) fn new(
        http: HttpClient,
        credentials: Credentials,
        region: String,
        endpoint: Option<Endpoint>,
        clock: Clock,
    ) -> TencentClient {
        TencentClient {
            inner: Arc::new(Inner {
                http,
                credentials,
                region,
                endpoint,
                clock,
            }),
        }
    }

    /// The region listed.
    pub fn region(&self) -> &str {
        &self.inner.region
    }

    /// The HTTP client (for its [`stats`](HttpClient::stats)).
    pub fn http(&self) -> &HttpClient {
        &self.inner.http
    }

    /// Where `service`'s calls go: the override, else the public host. The finance
    /// regions (`*-fsi`) are only served by their regional host
    /// `<service>.<region>.tencentcloudapi.com`; others use `<service>.tencentcloudapi.com`
    /// with the region in `X-TC-Region`.
    pub(crate) fn endpoint_for(&self, api: Api) -> Result<Endpoint> {
        if let Some(endpoint) = &self.inner.endpoint {
            return Ok(endpoint.clone());
        }
        let region = &self.inner.region;
        if api.regional && region.ends_with("-fsi") {
            Endpoint::https_host(&format!("{}.{region}.{ROOT_DOMAIN}", api.service))
        } else {
            Endpoint::https_host(&format!("{}.{ROOT_DOMAIN}", api.service))
        }
    }

    /// Sends one call: serializes `body` once, then signs and sends the same bytes on
    /// every attempt, and returns the response the classifier accepted.
    async fn call(&self, api: Api, body: &impl Serialize) -> Result<RawResponse> {
        let body = Bytes::from(serde_json::to_vec(body)?);
        let endpoint = self.endpoint_for(api)?;
        let host = endpoint.host_header();
        let url = endpoint.join("/");
        let inner = &self.inner;
        tracing::debug!(
            service = api.service,
            action = api.action,
            host = %host,
            "tencent call"
        );
        inner
            .http
            .send(api.action, || {
                let timestamp = (inner.clock)();
                let signed = sign(
                    &SignInput {
                        method: "POST",
                        query: "",
                        headers: &[("Content-Type", JSON_CONTENT_TYPE), ("Host", host.as_str())],
                        body: &body,
                        service: api.service,
                        timestamp,
                    },
                    inner.credentials.api_key(),
                    inner.credentials.api_secret(),
                )?;
                let mut request = reqwest::Request::new(Method::POST, url.clone());
                let headers = request.headers_mut();
                headers.insert(CONTENT_TYPE, HeaderValue::from_static(JSON_CONTENT_TYPE));
                headers.insert("X-TC-Action", HeaderValue::from_static(api.action));
                headers.insert("X-TC-Version", HeaderValue::from_static(api.version));
                headers.insert("X-TC-Timestamp", HeaderValue::from(timestamp));
                if api.regional {
                    let region = HeaderValue::from_str(&inner.region)
                        .map_err(|_| Error::invalid_field("region", "is not a header value"))?;
                    headers.insert("X-TC-Region", region);
                }
                // Temporary (STS) credentials: the token travels in `X-TC-Token`, which,
                // as in the official SDKs, is not among the signed headers.
                if let Some(token) = inner.credentials.session_token() {
                    headers.insert("X-TC-Token", sensitive_header_value(token)?);
                }
                headers.insert(
                    AUTHORIZATION,
                    sensitive_header_value(&signed.authorization)?,
                );
                *request.body_mut() = Some(reqwest::Body::from(body.clone()));
                Ok(request)
            })
            .await
    }

    /// CVM `DescribeInstances` with `Offset` and `Limit` (at most [`MAX_PAGE_SIZE`]).
    ///
    /// Errors: the classified `Response.Error`, or [`Decode`](cmdb_core::ErrorKind::Decode)
    /// naming the field when the body does not fit the schema.
    pub async fn describe_instances(&self, offset: u64, limit: u64) -> Result<InstancePage> {
        if limit == 0 || limit > MAX_PAGE_SIZE {
            return Err(Error::invalid_field(
                "limit",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        let response = self
            .call(
                DESCRIBE_INSTANCES,
                &DescribeInstancesRequest { offset, limit },
            )
            .await?;
        decode_instances(&response, &self.inner.region)
    }

    /// CVM `DescribeInstances` with `InstanceIds` (at most [`MAX_LOOKUP_IDS`]): those of
    /// the instances the region still has, mapped as listing maps them; ids it no
    /// longer has are simply absent.
    pub async fn describe_instances_by_ids(&self, instance_ids: &[String]) -> Result<InstancePage> {
        if instance_ids.len() > MAX_LOOKUP_IDS {
            return Err(Error::invalid_field(
                "instance_ids",
                format!("at most {MAX_LOOKUP_IDS} ids a request"),
            ));
        }
        let response = self
            .call(
                DESCRIBE_INSTANCES,
                &DescribeInstancesByIdsRequest {
                    instance_ids,
                    limit: MAX_LOOKUP_IDS as u64,
                },
            )
            .await?;
        decode_instances(&response, &self.inner.region)
    }

    /// CDB `DescribeDBInstances` with `Offset` and `Limit` (1 to
    /// [`MAX_DATABASE_PAGE_SIZE`]), sent to `cdb.tencentcloudapi.com` (a finance region's
    /// own host; the override when set) and signed for the service `cdb`.
    ///
    /// Errors: the classified `Response.Error`, or [`Decode`](cmdb_core::ErrorKind::Decode)
    /// naming the field when the body does not fit the schema.
    pub async fn describe_db_instances(&self, offset: u64, limit: u64) -> Result<DbInstancePage> {
        if limit == 0 || limit > MAX_DATABASE_PAGE_SIZE {
            return Err(Error::invalid_field(
                "limit",
                format!("must be between 1 and {MAX_DATABASE_PAGE_SIZE}"),
            ));
        }
        let response = self
            .call(
                DESCRIBE_DB_INSTANCES,
                &DescribeDbInstancesRequest { offset, limit },
            )
            .await?;
        decode_db_instances(&response, &self.inner.region)
    }

    /// CDB `DescribeDBInstances` with `InstanceIds` (at most [`MAX_DATABASE_LOOKUP_IDS`]):
    /// the instances the region still has, mapped as listing maps them; ids it no longer
    /// has are simply absent.
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
        let response = self
            .call(
                DESCRIBE_DB_INSTANCES,
                &DescribeDbInstancesByIdsRequest {
                    instance_ids,
                    limit: MAX_DATABASE_LOOKUP_IDS as u64,
                },
            )
            .await?;
        decode_db_instances(&response, &self.inner.region)
    }

    /// The regions where CVM is offered: the `region` service's `DescribeRegions` with
    /// `{"Product": "cvm"}`.
    pub async fn describe_regions(&self) -> Result<Vec<TencentRegion>> {
        let response = self
            .call(DESCRIBE_REGIONS, &DescribeRegionsRequest { product: "cvm" })
            .await?;
        let body: Envelope<DescribeRegionsResponse> = response.json()?;
        body.response
            .region_set
            .ok_or_else(|| Error::decode("DescribeRegions: Response.RegionSet is missing"))?
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                Ok(TencentRegion {
                    region: r.region.filter(|r| !r.is_empty()).ok_or_else(|| {
                        Error::decode(format!(
                            "DescribeRegions: Response.RegionSet[{i}].Region is missing"
                        ))
                    })?,
                    name: r.region_name,
                    state: r.region_state,
                })
            })
            .collect()
    }
}

/// Decodes and maps a `DescribeInstances` answer of `region`: its hosts, and the
/// instances that could not be decoded or mapped as failed records. An answer without
/// `TotalCount` or `InstanceSet` is a [`Decode`](cmdb_core::ErrorKind::Decode) error.
pub(crate) fn decode_instances(response: &RawResponse, region: &str) -> Result<InstancePage> {
    let Envelope { response: body } = response
        .json::<Envelope<DescribeInstancesResponse<'_>>>()
        .map_err(|e| e.context("DescribeInstances"))?;
    let context = match &body.request_id {
        Some(id) => format!("DescribeInstances [request id {id}]"),
        None => "DescribeInstances".to_owned(),
    };
    let Some(total_count) = body.total_count else {
        return Err(Error::decode("Response.TotalCount is missing").context(context));
    };
    let Some(instances) = body.instance_set else {
        return Err(Error::decode("Response.InstanceSet is missing").context(context));
    };
    let (hosts, failed) = map_records(&context, &instances, "InstanceId", |instance| {
        to_host(instance, region)
    });
    Ok(InstancePage {
        hosts,
        failed,
        total_count,
        request_id: body.request_id,
    })
}

/// Decodes and maps a CDB `DescribeDBInstances` answer of `region`: its databases, and
/// the instances that could not be decoded or mapped as failed records. An answer
/// without `TotalCount` or `Items` is a [`Decode`](cmdb_core::ErrorKind::Decode) error.
pub(crate) fn decode_db_instances(response: &RawResponse, region: &str) -> Result<DbInstancePage> {
    let Envelope { response: body } = response
        .json::<Envelope<DescribeDbInstancesResponse<'_>>>()
        .map_err(|e| e.context("DescribeDBInstances"))?;
    let context = match &body.request_id {
        Some(id) => format!("DescribeDBInstances [request id {id}]"),
        None => "DescribeDBInstances".to_owned(),
    };
    let Some(total_count) = body.total_count else {
        return Err(Error::decode("Response.TotalCount is missing").context(context));
    };
    let Some(items) = body.items else {
        return Err(Error::decode("Response.Items is missing").context(context));
    };
    let (databases, failed) = map_records(&context, &items, "InstanceId", |instance| {
        to_database(instance, region)
    });
    Ok(DbInstancePage {
        databases,
        failed,
        total_count,
        request_id: body.request_id,
    })
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, StatusCode};
    use serde_json::{json, Value};

    use super::*;

    fn response(body: &Value) -> RawResponse {
        RawResponse::new(StatusCode::OK, HeaderMap::new(), body.to_string())
    }

    fn instance(i: u32) -> Value {
        json!({
            "InstanceId": format!("ins-{i}"),
            "InstanceName": format!("名字 \"{i}\""),
            "InstanceState": "RUNNING",
            "InstanceChargeType": "PREPAID",
            "Memory": 4,
            "CreatedTime": "2024-01-01T08:00:00+08:00",
            "ExpiredTime": " ",
            "PrivateIpAddresses": ["10.0.0.1", "", " "],
            "Placement": {"Zone": "ap-guangzhou-3", "ProjectId": 7},
            "Tags": [{"Key": " ", "Value": "dropped"}, {"Key": "env", "Value": null}],
            "Unknown": {"Nested": [1, 2.5, null]}
        })
    }

    #[test]
    fn a_page_maps_every_instance() {
        let body = json!({"Response": {
            "TotalCount": 9,
            "InstanceSet": [instance(1), instance(2)],
            "RequestId": "rid-1"
        }});
        let page = decode_instances(&response(&body), "ap-guangzhou").unwrap();
        assert_eq!(
            (page.total_count, page.request_id.as_deref()),
            (9, Some("rid-1"))
        );
        assert!(page.failed.is_empty());
        let h = &page.hosts[1];
        assert_eq!(h.name, "名字 \"2\"");
        assert_eq!(h.private_ips, vec!["10.0.0.1"]);
        assert_eq!(h.expire_at, None);
        assert_eq!(h.tags.len(), 1);
        assert_eq!(h.tags.get("env").map(String::as_str), Some(""));
    }

    #[test]
    fn an_instance_that_does_not_fit_is_a_failed_record_naming_field_and_request_id() {
        let mut bad = instance(2);
        bad["CPU"] = json!("eight");
        let mut late = instance(3);
        late["CreatedTime"] = json!("yesterday");
        let body = json!({"Response": {
            "TotalCount": 3, "InstanceSet": [instance(1), bad, late], "RequestId": "rid-2"
        }});
        let page = decode_instances(&response(&body), "ap-guangzhou").unwrap();
        assert_eq!(page.hosts.len(), 1);
        let failed: Vec<_> = page
            .failed
            .iter()
            .map(|f| (f.instance_id.as_deref(), f.reason.as_str()))
            .collect();
        assert_eq!(failed[0].0, Some("ins-2"));
        assert!(failed[0].1.contains("field `CPU`"), "{}", failed[0].1);
        assert!(failed[0].1.contains("request id rid-2"), "{}", failed[0].1);
        assert_eq!(failed[1].0, Some("ins-3"));
        assert!(failed[1].1.contains("CreatedTime"), "{}", failed[1].1);

        let e =
            decode_instances(&response(&json!({"Response": {"TotalCount": 1}})), "x").unwrap_err();
        assert!(
            e.to_string().contains("Response.InstanceSet is missing"),
            "{e}"
        );
        let r = RawResponse::new(StatusCode::OK, HeaderMap::new(), "{\"Response\":");
        let e = decode_instances(&r, "x").unwrap_err();
        assert!(
            e.to_string().contains("invalid JSON in HTTP 200 response"),
            "{e}"
        );
    }
}
