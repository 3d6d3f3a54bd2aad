//! One method per Huawei Cloud API call: IAM KeystoneListProjects, ECS
//! ListServersDetails and ShowServer, RDS ListInstances, signed with [`crate::sign`].

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use cmdb_core::{Database, Error, ErrorKind, FailedRecord, Host, HostPage, Result};
use cmdb_http::{
    clock_now, map_records, sensitive_header_value, Clock, Endpoint, HttpClient, PageInfo,
    RawResponse,
};
use cmdb_secret::Credentials;
use reqwest::header::HeaderValue;
use reqwest::Method;

use crate::map::{db_instance_to_database, server_to_host};
use crate::model::{DbInstancesResponse, ProjectsResponse, ServerResponse, ServersResponse};
use crate::sign::{self, SignInput, DATE_FORMAT};

/// Largest `limit` ListServersDetails accepts.
pub(crate) const MAX_PAGE_SIZE: u32 = 1000;

/// Largest `limit` RDS ListInstances accepts (1 to 100), and the page size of database
/// listings by default.
pub const MAX_DATABASE_PAGE_SIZE: u32 = 100;

/// One page of RDS ListInstances, mapped.
#[derive(Debug, Clone, PartialEq)]
pub struct DbInstancePage {
    /// The instances of the page, as databases of the client's region.
    pub databases: Vec<Database>,
    /// The instances of the page that could not be decoded or mapped.
    pub failed: Vec<FailedRecord>,
    /// `total_count`: instances in the whole listing when this page was answered.
    pub total_count: Option<u64>,
}

/// Where each service's calls go: the public hosts of the region, or the override for all.
#[derive(Debug, Clone)]
pub(crate) struct ServiceEndpoints {
    pub(crate) iam: Endpoint,
    pub(crate) ecs: Endpoint,
    pub(crate) rds: Endpoint,
}

/// Project ids by (IAM endpoint, AK, region).
type ProjectCache = Mutex<HashMap<(String, String, String), String>>;

/// Project ids looked up so far in this process: a project id never changes, and every
/// lookup is one more signed request against the key's budget.
fn project_cache() -> &'static ProjectCache {
    static CACHE: OnceLock<ProjectCache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// A client of Huawei Cloud's IAM and ECS APIs for one access key and region.
///
/// Built by [`HuaweiBuilder::build_client`](crate::HuaweiBuilder::build_client). Cloning
/// is cheap; clones share the HTTP client, its rate limiter and statistics.
#[derive(Clone)]
pub struct HuaweiClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: HttpClient,
    credentials: Credentials,
    region: String,
    iam: Endpoint,
    ecs: Endpoint,
    rds: Endpoint,
    project_id: Option<String>,
    clock: Clock,
}

impl fmt::Debug for HuaweiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HuaweiClient")
            .field("credentials", &self.inner.credentials)
            .field("region", &self.inner.region)
            .field("iam", &self.inner.iam)
            .field("ecs", &self.inner.ecs)
            .field("rds", &self.inner.rds)
            .field("project_id", &self.inner.project_id)
            .field("http", &self.inner.http)
            .finish()
    }
}

impl HuaweiClient {
    pub(crate) fn new(
        http: HttpClient,
        credentials: Credentials,
        region: String,
        endpoints: ServiceEndpoints,
        project_id: Option<String>,
        clock: Clock,
    ) -> HuaweiClient {
        let ServiceEndpoints { iam, ecs, rds } = endpoints;
        HuaweiClient {
            inner: Arc::new(Inner {
                http,
                credentials,
                region,
                iam,
                ecs,
                rds,
                project_id,
                clock,
            }),
        }
    }

    /// The region this client lists.
    pub fn region(&self) -> &str {
        &self.inner.region
    }

    /// The HTTP client (for its [`stats`](HttpClient::stats)).
    pub fn http(&self) -> &HttpClient {
        &self.inner.http
    }

    /// Where RDS calls go: the endpoint override when set, else
    /// `rds.<region>.myhuaweicloud.com`.
    pub fn rds_endpoint(&self) -> &Endpoint {
        &self.inner.rds
    }

    /// The IAM and ECS endpoints, in that order.
    #[cfg(test)]
    pub(crate) fn endpoints(&self) -> (&Endpoint, &Endpoint) {
        (&self.inner.iam, &self.inner.ecs)
    }

    /// The project id of the region: the one configured, else the one IAM reports for a
    /// project named after the region (looked up once per IAM endpoint, AK and region
    /// in this process).
    ///
    /// Errors: [`NotFound`](ErrorKind::NotFound) when IAM lists no such project,
    /// [`InvalidInput`](ErrorKind::InvalidInput) when it lists several, and the
    /// request's own errors.
    pub async fn project_id(&self) -> Result<String> {
        if let Some(id) = &self.inner.project_id {
            return Ok(id.clone());
        }
        let key = (
            self.inner.iam.to_string(),
            self.inner.credentials.api_key().to_owned(),
            self.inner.region.clone(),
        );
        if let Some(id) = lock(project_cache()).get(&key) {
            return Ok(id.clone());
        }
        let region = self.inner.region.clone();
        let projects = self.keystone_list_projects(&region).await?;
        let ids: Vec<String> = projects
            .into_iter()
            .filter(|(_, name)| name.as_deref().is_none_or(|n| n == region))
            .map(|(id, _)| id)
            .collect();
        match ids.as_slice() {
            [id] => {
                lock(project_cache()).insert(key, id.clone());
                Ok(id.clone())
            }
            [] => Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "huawei IAM lists no project named {region:?} for this access key: check the \
                     region, or configure the project id"
                ),
            )),
            several => Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "huawei IAM lists {} projects named {region:?} ({}): configure the project id \
                     to use",
                    several.len(),
                    several.join(", ")
                ),
            )),
        }
    }

    /// IAM `GET /v3/projects?name=<name>` (KeystoneListProjects), signed without
    /// `X-Project-Id`: the `(id, name)` of every project listed with an id.
    pub async fn keystone_list_projects(
        &self,
        name: &str,
    ) -> Result<Vec<(String, Option<String>)>> {
        self.projects(vec![("name".to_owned(), name.to_owned())])
            .await
    }

    /// The regions of the key's account: the names of the projects IAM lists (`GET
    /// /v3/projects` with no filter), in its order, keeping only region projects. IAM
    /// also lists `MOS` (the marketplace's project, no region) and the sub-projects a
    /// user creates in a region (named `<region>_<name>`); both are left out.
    pub async fn region_names(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = Vec::new();
        for (_, name) in self.projects(Vec::new()).await? {
            let Some(name) = name.filter(|n| is_region_project(n)) else {
                continue;
            };
            if !names.contains(&name) {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// IAM `GET /v3/projects?<query>`: the `(id, name)` of every project listed with an id.
    async fn projects(
        &self,
        query: Vec<(String, String)>,
    ) -> Result<Vec<(String, Option<String>)>> {
        let response = self
            .inner
            .http
            .send("KeystoneListProjects", || {
                self.signed_get(&self.inner.iam, "/v3/projects", &query, None)
            })
            .await?;
        let body: ProjectsResponse = response.json()?;
        Ok(body
            .projects
            .into_iter()
            .filter_map(|p| Some((p.id.filter(|id| !id.is_empty())?, p.name)))
            .collect())
    }

    /// ECS `GET /v1/<project>/cloudservers/detail?offset=<page>&limit=<limit>`
    /// (ListServersDetails): page `page` (a page number from 1) of `limit` servers
    /// (1 to 1000), mapped to hosts, with the `count` the API reports.
    pub async fn list_servers_details(
        &self,
        project_id: &str,
        page: u64,
        limit: u32,
    ) -> Result<HostPage> {
        let (hosts, failed, info) = self.servers_page(project_id, page, limit).await?;
        Ok(HostPage::new(hosts, info.total).with_failed(failed))
    }

    /// [`list_servers_details`](Self::list_servers_details) with what the pager needs:
    /// the servers that could not be mapped, and the number of servers in the page
    /// (those included).
    pub(crate) async fn servers_page(
        &self,
        project_id: &str,
        page: u64,
        limit: u32,
    ) -> Result<(Vec<Host>, Vec<FailedRecord>, PageInfo)> {
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(Error::invalid_field(
                "limit",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        let path = format!("/v1/{project_id}/cloudservers/detail");
        let query = vec![
            ("limit".to_owned(), limit.to_string()),
            ("offset".to_owned(), page.max(1).to_string()),
        ];
        let response = self
            .inner
            .http
            .send("ListServersDetails", || {
                self.signed_get(&self.inner.ecs, &path, &query, Some(project_id))
            })
            .await?;
        decode_servers(&response, &self.inner.region, page, limit)
    }

    /// ECS `GET /v1/<project>/cloudservers/<server_id>` (ShowServer): the server mapped
    /// to a host, or `None` when ECS answers 404 `Ecs.0114` ("could not be found"), the
    /// only answer taken as proof that the server is gone.
    ///
    /// Any other error is returned as is, a 404 of the API gateway (`APIGW.0101`, a
    /// wrong endpoint) included; an id that cannot be a server id (anything but ASCII
    /// letters, digits and `-`) is [`InvalidInput`](ErrorKind::InvalidInput).
    pub async fn show_server(&self, project_id: &str, server_id: &str) -> Result<Option<Host>> {
        if server_id.is_empty()
            || !server_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(Error::invalid_field(
                "server_id",
                "not a Huawei Cloud server id (ASCII letters, digits and '-')",
            ));
        }
        let path = format!("/v1/{project_id}/cloudservers/{server_id}");
        let sent = self
            .inner
            .http
            .send("ShowServer", || {
                self.signed_get(&self.inner.ecs, &path, &[], Some(project_id))
            })
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) if is_server_not_found(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        let body: ServerResponse = response
            .json()
            .map_err(|e| e.context(format_args!("huawei ShowServer {server_id}")))?;
        let server = body.server.ok_or_else(|| {
            Error::decode(format!(
                "huawei ShowServer {server_id}: the answer has no server"
            ))
        })?;
        server_to_host(server, &self.inner.region)
            .map(Some)
            .map_err(|e| e.context(format_args!("huawei ShowServer {server_id}")))
    }

    /// RDS `GET /v3/<project>/instances?offset=<offset>&limit=<limit>` (ListInstances):
    /// `limit` instances (1 to [`MAX_DATABASE_PAGE_SIZE`]) from record `offset` (from 0),
    /// mapped to databases, with the `total_count` the API reports.
    pub async fn list_instances(
        &self,
        project_id: &str,
        offset: u64,
        limit: u32,
    ) -> Result<DbInstancePage> {
        if !(1..=MAX_DATABASE_PAGE_SIZE).contains(&limit) {
            return Err(Error::invalid_field(
                "limit",
                format!("must be between 1 and {MAX_DATABASE_PAGE_SIZE}"),
            ));
        }
        let query = vec![
            ("limit".to_owned(), limit.to_string()),
            ("offset".to_owned(), offset.to_string()),
        ];
        self.db_instances(project_id, query, &format!("offset {offset}"))
            .await
    }

    /// RDS ListInstances of one instance (the `id` query parameter, which takes one id):
    /// a page holding it when it exists, an empty page when RDS no longer has it. An id
    /// that cannot be an RDS instance id (anything but ASCII letters, digits and `-`; a
    /// leading `*` would ask for a fuzzy match) is [`InvalidInput`](ErrorKind::InvalidInput).
    pub async fn list_instances_by_id(
        &self,
        project_id: &str,
        instance_id: &str,
    ) -> Result<DbInstancePage> {
        if instance_id.is_empty()
            || !instance_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(Error::invalid_field(
                "instance_id",
                "not a Huawei Cloud RDS instance id (ASCII letters, digits and '-')",
            ));
        }
        let query = vec![
            ("id".to_owned(), instance_id.to_owned()),
            ("limit".to_owned(), MAX_DATABASE_PAGE_SIZE.to_string()),
        ];
        let page = self
            .db_instances(project_id, query, &format!("id {instance_id}"))
            .await?;
        // Only the exact id counts, whatever the server matched.
        Ok(DbInstancePage {
            databases: page
                .databases
                .into_iter()
                .filter(|d| d.instance_id == instance_id)
                .collect(),
            ..page
        })
    }

    /// One signed ListInstances request with `query`, decoded; `what` names the page in
    /// failure reasons.
    async fn db_instances(
        &self,
        project_id: &str,
        query: Vec<(String, String)>,
        what: &str,
    ) -> Result<DbInstancePage> {
        let path = format!("/v3/{project_id}/instances");
        let response = self
            .inner
            .http
            .send("ListInstances", || {
                self.signed_get(&self.inner.rds, &path, &query, Some(project_id))
            })
            .await?;
        decode_db_instances(&response, &self.inner.region, what)
    }

    /// A GET to `endpoint` + `path`, signed now: `Host` exactly as sent, `X-Sdk-Date`,
    /// `X-Project-Id` when given and `X-Security-Token` with temporary credentials. The query sent is the canonical one.
    fn signed_get(
        &self,
        endpoint: &Endpoint,
        path: &str,
        query: &[(String, String)],
        project_id: Option<&str>,
    ) -> Result<reqwest::Request> {
        let mut url = endpoint.join(path);
        let canonical_query = sign::canonical_query(query);
        url.set_query((!canonical_query.is_empty()).then_some(canonical_query.as_str()));
        // What reqwest sends as `Host`: the port only when it is not the default one.
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        let date = clock_now(&self.inner.clock).format(DATE_FORMAT).to_string();
        let mut headers = vec![("Host", host.as_str()), ("X-Sdk-Date", date.as_str())];
        if let Some(project_id) = project_id {
            headers.push(("X-Project-Id", project_id));
        }
        // Temporary (STS) credentials: the token travels in `X-Security-Token`, signed
        // like every other header, as the official SDKs send it.
        let token = self.inner.credentials.session_token();
        if let Some(token) = token {
            headers.push(("X-Security-Token", token));
        }
        let signed = sign::sign(
            &SignInput {
                method: "GET",
                path: url.path(),
                query,
                headers: &headers,
                body: b"",
            },
            self.inner.credentials.api_secret(),
        )?;
        let authorization =
            sensitive_header_value(&signed.authorization(self.inner.credentials.api_key()))?;
        let mut request = reqwest::Request::new(Method::GET, url);
        let h = request.headers_mut();
        h.insert("X-Sdk-Date", header_value(&date)?);
        if let Some(project_id) = project_id {
            h.insert("X-Project-Id", header_value(project_id)?);
        }
        if let Some(token) = token {
            h.insert("X-Security-Token", sensitive_header_value(token)?);
        }
        h.insert(reqwest::header::AUTHORIZATION, authorization);
        Ok(request)
    }
}

/// Whether an IAM project named `name` is a region's own project: not `MOS`, not a
/// sub-project (`cn-north-4_dev`: IAM names them `<region>_<name>`), and not empty.
fn is_region_project(name: &str) -> bool {
    !name.is_empty() && name != "MOS" && !name.contains('_')
}

fn header_value(value: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(value).map_err(|_| {
        Error::new(
            ErrorKind::InvalidInput,
            "invalid characters in a header value",
        )
    })
}

/// Whether `e` is ECS saying that a server does not exist: HTTP 404 with `Ecs.0114`
/// ("Instance[…] could not be found") or `Ecs.0614` ("the ECS does not exist").
fn is_server_not_found(e: &Error) -> bool {
    e.vendor_error().is_some_and(|v| {
        v.http_status == Some(404) && matches!(v.code.as_deref(), Some("Ecs.0114" | "Ecs.0614"))
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Decodes and maps page `page` (of `limit` servers) of a ListServersDetails answer of
/// `region`: its hosts, and the servers that could not be mapped (no id).
pub(crate) fn decode_servers(
    response: &RawResponse,
    region: &str,
    page: u64,
    limit: u32,
) -> Result<(Vec<Host>, Vec<FailedRecord>, PageInfo)> {
    let body: ServersResponse<'_> = response
        .json()
        .map_err(|e| e.context(format_args!("huawei ListServersDetails page {page}")))?;
    let items = body.servers.len();
    let what = format!("huawei ListServersDetails page {page}");
    let (hosts, failed) = map_records(&what, &body.servers, "id", |server| {
        server_to_host(server, region)
    });
    Ok((
        hosts,
        failed,
        PageInfo::new(items, limit as usize, body.count),
    ))
}

/// Decodes and maps a ListInstances answer of `region` (`what`: which page, for failure
/// reasons): its databases, and the instances that could not be mapped.
pub(crate) fn decode_db_instances(
    response: &RawResponse,
    region: &str,
    what: &str,
) -> Result<DbInstancePage> {
    let what = format!("huawei ListInstances {what}");
    let body: DbInstancesResponse<'_> = response.json().map_err(|e| e.context(&what))?;
    let (databases, failed) = map_records(&what, &body.instances, "id", |instance| {
        db_instance_to_database(instance, region)
    });
    Ok(DbInstancePage {
        databases,
        failed,
        total_count: body.total_count,
    })
}

#[cfg(test)]
mod tests {
    use super::decode_servers;
    use crate::HuaweiBuilder;
    use cmdb_core::ErrorKind;
    use cmdb_http::RawResponse;
    use cmdb_secret::Credentials;
    use reqwest::StatusCode;

    fn response(body: impl Into<Vec<u8>>) -> RawResponse {
        RawResponse::new(StatusCode::OK, Default::default(), body.into())
    }

    #[test]
    fn a_page_that_does_not_decode_is_an_error_a_server_a_failed_record() {
        let bodies: [&[u8]; 4] = [
            b"<html>gateway</html>",
            br#"{"count": 1, "servers": "nope"}"#,
            br#"{"servers": [{"id": "s-1"}"#,
            b"{\"servers\": []} \xff",
        ];
        for body in bodies {
            let e = decode_servers(&response(body), "cn-north-4", 3, 10).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Decode);
            assert!(
                e.message()
                    .starts_with("huawei ListServersDetails page 3: invalid JSON"),
                "{e}"
            );
        }
        let r = response(
            br#"{"servers": [{"id": "s-1", "metadata": ["x"]}, {"id": "s-2", "flavor": {"vcpus": 1e999}}, {"id": "s-3"}]}"#.to_vec(),
        );
        let (hosts, failed, info) = decode_servers(&r, "cn-north-4", 3, 10).unwrap();
        assert_eq!((hosts.len(), info.items), (1, 3));
        let ids: Vec<_> = failed.iter().map(|f| f.instance_id.as_deref()).collect();
        assert_eq!(ids, [Some("s-1"), Some("s-2")]);
        assert!(failed[0].reason.contains("field `metadata`"), "{failed:?}");
    }

    #[test]
    fn a_server_without_an_id_is_a_failed_record_not_dropped() {
        let r = response(
            r#"{"count": 2, "servers": [{"id": "s-1"}, {"name": "no-id-vm", "status": "ACTIVE"}]}"#,
        );
        let (hosts, failed, info) = decode_servers(&r, "cn-north-4", 4, 10).unwrap();
        assert_eq!((hosts.len(), info.items), (1, 2));
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].instance_id, None);
        assert!(failed[0].reason.contains("page 4: record 1"), "{failed:?}");
        assert!(failed[0].reason.contains("no-id-vm"), "{failed:?}");
    }

    fn signed_request(endpoint: &str, project: Option<&str>) -> reqwest::Request {
        let client = HuaweiBuilder::new()
            .with_credentials(Credentials::new("AK-HOST", "sk"))
            .with_region("cn-north-4")
            .with_endpoint(endpoint)
            .build_client()
            .unwrap();
        let query = vec![("name".to_owned(), "a b".to_owned())];
        client
            .signed_get(&client.inner.ecs, "/v3/projects", &query, project)
            .unwrap()
    }

    fn authorization(request: &reqwest::Request) -> &str {
        let value = request.headers().get("authorization").unwrap();
        assert!(value.is_sensitive(), "Authorization is marked sensitive");
        value.to_str().unwrap()
    }

    #[test]
    fn the_host_signed_carries_the_port_only_when_it_is_not_the_default() {
        // The signed Host is recomputed from the URL sent; a default port is dropped by
        // the URL itself, so both sides agree.
        for (endpoint, host) in [
            ("https://ecs.example.test:443", "ecs.example.test"),
            ("http://ecs.example.test:80/", "ecs.example.test"),
            ("https://ecs.example.test:8443", "ecs.example.test:8443"),
            ("http://127.0.0.1:9000/base", "127.0.0.1:9000"),
        ] {
            let request = signed_request(endpoint, None);
            let sent = request.url().host_str().unwrap().to_owned()
                + &request
                    .url()
                    .port()
                    .map(|p| format!(":{p}"))
                    .unwrap_or_default();
            assert_eq!(sent, host, "{endpoint}");
            let date = request.headers()["x-sdk-date"].to_str().unwrap().to_owned();
            let signed = crate::sign::sign(
                &crate::sign::SignInput {
                    method: "GET",
                    path: request.url().path(),
                    query: &[("name".to_owned(), "a b".to_owned())],
                    headers: &[("host", host), ("x-sdk-date", &date)],
                    body: b"",
                },
                "sk",
            )
            .unwrap();
            assert_eq!(authorization(&request), signed.authorization("AK-HOST"));
        }
    }

    #[test]
    fn signatures_are_timestamped_by_the_injected_clock() {
        let client = HuaweiBuilder::new()
            .with_credentials(Credentials::new("AK-HOST", "sk"))
            .with_region("cn-north-4")
            .with_endpoint("https://ecs.example.test")
            .with_clock(|| 1_700_000_000)
            .build_client()
            .unwrap();
        let request = client
            .signed_get(&client.inner.ecs, "/v3/projects", &[], None)
            .unwrap();
        assert_eq!(request.headers()["x-sdk-date"], "20231114T221320Z");
    }

    #[test]
    fn the_query_sent_is_the_canonical_one_and_the_project_header_is_signed() {
        let request = signed_request("http://127.0.0.1:9000/base", Some("p-1"));
        assert_eq!(request.url().path(), "/base/v3/projects");
        assert_eq!(request.url().query(), Some("name=a%20b"));
        assert_eq!(request.headers()["x-project-id"], "p-1");
        assert!(authorization(&request).contains("SignedHeaders=host;x-project-id;x-sdk-date,"));
        let without = signed_request("http://127.0.0.1:9000", None);
        assert!(without.headers().get("x-project-id").is_none());
        assert!(authorization(&without).contains("SignedHeaders=host;x-sdk-date,"));
    }
}
