//! A simulated Alibaba Cloud RDS API (`DescribeDBInstances`, version 2014-08-15) on
//! wiremock.
//!
//! [`SimulatedAliyunRds`] answers RPC-style requests (`POST /`, parameters in the query)
//! as the RDS endpoint does: it checks every request's `ACS3-HMAC-SHA256` signature, date
//! and nonce with the same gateway check as the ECS simulator ([`crate::aliyun`]), checks
//! the action and the version, and answers errors in Alibaba Cloud's JSON envelope
//! (`RequestId`, `HostId`, `Code`, `Message`, `Recommend`). It serves generated
//! instances in the documented shape: `Items.DBInstance[]` wrapped, `DBInstanceCPU` a
//! string, `DBInstanceMemory` in MB, empty strings for absent values (`ExpireTime` of a
//! pay-as-you-go instance, `VpcId` of a classic one), read-only instances wrapped in
//! `ReadOnlyDBInstanceIds.ReadOnlyDBInstanceId[]`, every documented status, and four
//! engines. No storage size and no tags: the list does not carry them.
//!
//! Paging is as documented: `MaxResults` (1 to 100, default 30) with `NextToken` until
//! the answer's `NextToken` is empty, or `PageNumber` (from 1) with `PageSize` (30 to 100,
//! default 30). `DBInstanceId` (comma-separated ids) looks instances up by id. It can
//! throttle (`Throttling.User`), fail (`ServiceUnavailable`, `InternalError`) and slow
//! down, and tests add, remove and change instances between requests.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use cmdb_testkit::aliyun_rds::SimulatedAliyunRds;
//!
//! let sim = SimulatedAliyunRds::start("cn-hangzhou", 120).await;
//! assert_eq!(sim.instance_ids().len(), 120);
//! let gone = sim.instance_id(7);
//! assert!(sim.remove_instance(&gone));
//! assert_eq!(sim.add_instances(2).len(), 2);
//! assert_eq!(sim.instance_ids().len(), 121);
//! # });
//! ```

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::aliyun::{error, header, server_error, verify_acs3, AcsKey, Answer};

/// The access key id the simulator accepts unless told otherwise.
pub const DEFAULT_ACCESS_KEY_ID: &str = "LTAI5tSimulatedRdsKey01";
/// The access key secret the simulator accepts unless told otherwise.
pub const DEFAULT_ACCESS_KEY_SECRET: &str = "simulated-rds-access-key-secret";
/// The API version of RDS.
pub const VERSION: &str = "2014-08-15";
/// The largest `MaxResults` and `PageSize`.
pub const MAX_RESULTS: usize = 100;
/// `MaxResults` and `PageSize` when not given.
pub const DEFAULT_PAGE_SIZE: usize = 30;

/// The `DBInstanceStatus` words the API reference documents; generated instances cycle
/// through them.
pub const STATUSES: &[&str] = &[
    "Running",
    "Creating",
    "Deleting",
    "Rebooting",
    "DBInstanceClassChanging",
    "TRANSING",
    "EngineVersionUpgrading",
    "TransingToOthers",
    "GuardDBInstanceCreating",
    "Restoring",
    "Importing",
    "ImportingFromOthers",
    "DBInstanceNetTypeChanging",
    "GuardSwitching",
    "INS_CLONING",
    "Released",
];

struct State {
    region: String,
    access_key_id: String,
    access_key_secret: String,
    security_token: Option<String>,
    token_expired: bool,
    instances: Vec<Value>,
    next_index: u64,
    nonces: HashSet<String>,
    /// `NextToken` -> (the `DBInstanceId` filter it pages, the offset it continues at).
    tokens: HashMap<String, (String, usize)>,
    received: u64,
    accepted: u64,
    throttle_every: u64,
    failures: VecDeque<u16>,
    latency: Option<Duration>,
    listings: u64,
    lookups: u64,
}

/// A simulated RDS endpoint of one region. See the [module docs](self).
pub struct SimulatedAliyunRds {
    server: MockServer,
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for SimulatedAliyunRds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("SimulatedAliyunRds")
            .field("uri", &self.server.uri())
            .field("region", &s.region)
            .field("instances", &s.instances.len())
            .field("access_key_secret", &"******")
            .finish_non_exhaustive()
    }
}

impl SimulatedAliyunRds {
    /// Starts a simulator of `region` holding `count` generated instances, accepting
    /// [`DEFAULT_ACCESS_KEY_ID`] / [`DEFAULT_ACCESS_KEY_SECRET`].
    pub async fn start(region: &str, count: u64) -> SimulatedAliyunRds {
        let state = Arc::new(Mutex::new(State {
            region: region.to_owned(),
            access_key_id: DEFAULT_ACCESS_KEY_ID.to_owned(),
            access_key_secret: DEFAULT_ACCESS_KEY_SECRET.to_owned(),
            security_token: None,
            token_expired: false,
            instances: (0..count).map(|i| instance_json(region, i)).collect(),
            next_index: count,
            nonces: HashSet::new(),
            tokens: HashMap::new(),
            received: 0,
            accepted: 0,
            throttle_every: 0,
            failures: VecDeque::new(),
            latency: None,
            listings: 0,
            lookups: 0,
        }));
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/"))
            .respond_with(Responder(Arc::clone(&state)))
            .mount(&server)
            .await;
        SimulatedAliyunRds { server, state }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The base URL, `http://127.0.0.1:PORT`: a secret's endpoint override.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// The region simulated.
    pub fn region(&self) -> String {
        self.lock().region.clone()
    }

    /// The access key id accepted.
    pub fn access_key_id(&self) -> String {
        self.lock().access_key_id.clone()
    }

    /// The access key secret accepted.
    pub fn access_key_secret(&self) -> String {
        self.lock().access_key_secret.clone()
    }

    /// Accepts another key pair (and no longer the previous one).
    pub fn set_credentials(&self, access_key_id: &str, access_key_secret: &str) {
        let mut s = self.lock();
        s.access_key_id = access_key_id.to_owned();
        s.access_key_secret = access_key_secret.to_owned();
    }

    /// Makes the key a temporary (STS) one: requests must carry `token` in a signed
    /// `x-acs-security-token`; `None` goes back to a permanent key.
    pub fn set_security_token(&self, token: Option<&str>) {
        let mut s = self.lock();
        s.security_token = token.map(str::to_owned);
        s.token_expired = false;
    }

    /// Expires the security token: requests then answer `InvalidSecurityToken.Expired`.
    pub fn expire_security_token(&self) {
        self.lock().token_expired = true;
    }

    /// The instance id of generated instance number `i`.
    pub fn instance_id(&self, i: u64) -> String {
        instance_id(i)
    }

    /// The ids of the instances listed now, in listing order.
    pub fn instance_ids(&self) -> Vec<String> {
        let s = self.lock();
        let ids = s
            .instances
            .iter()
            .filter_map(|v| v["DBInstanceId"].as_str());
        ids.map(str::to_owned).collect()
    }

    /// The JSON of one instance as the API lists it.
    pub fn instance(&self, id: &str) -> Option<Value> {
        let s = self.lock();
        s.instances
            .iter()
            .find(|v| v["DBInstanceId"] == id)
            .cloned()
    }

    /// Adds `n` generated instances at the end of the listing; answers their ids.
    pub fn add_instances(&self, n: u64) -> Vec<String> {
        let mut s = self.lock();
        let start = s.next_index;
        s.next_index += n;
        let region = s.region.clone();
        s.instances
            .extend((start..start + n).map(|i| instance_json(&region, i)));
        (start..start + n).map(instance_id).collect()
    }

    /// Removes an instance (released in the console); whether it was there.
    pub fn remove_instance(&self, id: &str) -> bool {
        let mut s = self.lock();
        let before = s.instances.len();
        s.instances.retain(|v| v["DBInstanceId"] != id);
        s.instances.len() != before
    }

    /// Changes an instance's JSON in place (e.g. `v["DBInstanceStatus"] =
    /// "Rebooting".into()`); whether it was there.
    pub fn update_instance(&self, id: &str, change: impl FnOnce(&mut Value)) -> bool {
        let mut s = self.lock();
        match s.instances.iter_mut().find(|v| v["DBInstanceId"] == id) {
            Some(v) => {
                change(v);
                true
            }
            None => false,
        }
    }

    /// Answers every `k`-th authenticated request with HTTP 400 `Throttling.User` and
    /// `x-acs-retry-after` (0: never).
    pub fn throttle_every(&self, k: u64) {
        self.lock().throttle_every = k;
    }

    /// Answers the next `n` authenticated requests with `status`: 503 is
    /// `ServiceUnavailable`, others `InternalError` with that status.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.lock().failures.extend(std::iter::repeat_n(status, n));
    }

    /// Answers every request `latency` after the simulator began to handle it.
    pub fn set_latency(&self, latency: Option<Duration>) {
        self.lock().latency = latency;
    }

    /// Requests received, rejected ones included.
    pub fn requests(&self) -> u64 {
        self.lock().received
    }

    /// `DescribeDBInstances` listing pages served (by-id lookups not counted).
    pub fn listings(&self) -> u64 {
        self.lock().listings
    }

    /// `DescribeDBInstances` by-id lookups (`DBInstanceId`) served.
    pub fn lookups(&self) -> u64 {
        self.lock().lookups
    }
}

fn instance_id(i: u64) -> String {
    format!("rm-sim{i:011x}")
}

/// Whether generated instance `i` is a read-only instance (of `i - 1`): every fifth,
/// unless its primary runs SQL Server.
fn is_readonly(i: u64) -> bool {
    i % 5 == 4 && (i - 1) % 4 != 2
}

/// Generated instance number `i` of `region`, as `DescribeDBInstances` lists it: the
/// engines MySQL, PostgreSQL, SQLServer and MariaDB in turn, every [`STATUSES`] word,
/// `Prepaid` with an `ExpireTime` and `Postpaid` with an empty one, VPC and classic
/// networks, intranet and internet connection strings, read-only instances of a primary,
/// Chinese descriptions.
pub fn instance_json(region: &str, i: u64) -> Value {
    // Every fifth is a read-only instance of the generated primary before it, on its
    // primary's engine.
    let readonly = is_readonly(i);
    let (engine, version, class) = match if readonly { i - 1 } else { i } % 4 {
        0 => ("MySQL", "8.0", "mysql.n2.medium.1"),
        1 => ("PostgreSQL", "14.0", "pg.n2.medium.2c"),
        2 => ("SQLServer", "2019_std_ha", "mssql.x4.medium.e2"),
        _ => ("MariaDB", "10.3", "mariadb.n2.medium.2c"),
    };
    let (cpu, memory_mb) =
        [("1", 2048), ("2", 4096), ("4", 8192), ("8", 32768)][(i % 7 % 4) as usize];
    let status = STATUSES[(i % STATUSES.len() as u64) as usize];
    let prepaid = i % 3 == 0;
    let classic = i % 10 == 9;
    let internet = i % 4 == 2;
    let day = 1 + i % 28;
    let id = instance_id(i);
    let domain = match engine {
        "MySQL" => "mysql",
        "PostgreSQL" => "pg",
        "SQLServer" => "sqlserver",
        _ => "mariadb",
    };
    let read_only_ids: Vec<Value> = if is_readonly(i + 1) {
        vec![json!({"DBInstanceId": instance_id(i + 1)})]
    } else {
        Vec::new()
    };
    json!({
        "DBInstanceId": id,
        "DBInstanceDescription": if i % 2 == 0 { format!("订单库-{i}") } else { format!("db-{i}") },
        "Engine": engine,
        "EngineVersion": version,
        "DBInstanceStatus": status,
        "DBInstanceClass": class,
        "DBInstanceCPU": cpu,
        "DBInstanceMemory": memory_mb,
        "DBInstanceStorageType": if i % 2 == 0 { "cloud_essd" } else { "local_ssd" },
        "DBInstanceType": if readonly { "Readonly" } else { "Primary" },
        "Category": if i % 6 == 1 { "Basic" } else { "HighAvailability" },
        "DBInstanceNetType": if internet { "Internet" } else { "Intranet" },
        "InstanceNetworkType": if classic { "Classic" } else { "VPC" },
        "ConnectionMode": "Standard",
        "ConnectionString": format!("{id}{}.{domain}.rds.aliyuncs.com", if internet { "o" } else { "" }),
        "PayType": if prepaid { "Prepaid" } else { "Postpaid" },
        "CreateTime": format!("2024-03-{day:02}T0{}:15:30Z", i % 10),
        "ExpireTime": if prepaid { format!("2027-03-{day:02}T16:00:00Z") } else { String::new() },
        "RegionId": region,
        "ZoneId": format!("{region}-{}", ["h", "i", "j"][(i % 3) as usize]),
        "VpcId": if classic { String::new() } else { format!("vpc-sim{}", i % 3) },
        "VSwitchId": if classic { String::new() } else { format!("vsw-sim{}", i % 6) },
        "VpcCloudInstanceId": if classic { String::new() } else { format!("{id}_vpc") },
        "ResourceGroupId": "rg-acfmsim0000001",
        "MasterInstanceId": if readonly { instance_id(i - 1) } else { String::new() },
        "GuardDBInstanceId": "",
        "TempDBInstanceId": "",
        "ReadOnlyDBInstanceIds": {"ReadOnlyDBInstanceId": read_only_ids},
        "LockMode": if status == "Released" { "ManualLock" } else { "Unlock" },
        "LockReason": "",
        "MutriORsignle": false,
        "DeletionProtection": i % 8 == 0,
        "TipsLevel": 1,
        "Tips": "",
    })
}

struct Responder(Arc<Mutex<State>>);

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let started = std::time::Instant::now();
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        s.received += 1;
        let request_id = format!(
            "5E0CDB{:02X}-SIMU-4A1B-9C2D-{:012X}",
            s.received % 0xFF,
            s.received
        );
        let (status, mut body, headers) = match handle(&mut s, request) {
            Ok(body) => (200, body, Vec::new()),
            Err(answer) => answer,
        };
        body["RequestId"] = Value::String(request_id.clone());
        if status != 200 {
            body["HostId"] = Value::String("rds.aliyuncs.com".into());
            body["Recommend"] = Value::String(format!(
                "https://api.aliyun.com/troubleshoot?q={}&product=Rds&requestId={request_id}",
                body["Code"].as_str().unwrap_or_default()
            ));
        }
        let mut template = ResponseTemplate::new(status)
            .insert_header("x-acs-request-id", request_id.as_str())
            .set_body_json(body);
        for (name, value) in headers {
            template = template.insert_header(name, value.as_str());
        }
        crate::with_latency(template, s.latency, started)
    }
}

fn handle(s: &mut State, request: &Request) -> Result<Value, Answer> {
    let key = AcsKey {
        access_key_id: &s.access_key_id,
        access_key_secret: &s.access_key_secret,
        security_token: s.security_token.as_deref(),
        token_expired: s.token_expired,
    };
    verify_acs3(&key, &mut s.nonces, request)?;
    s.accepted += 1;
    if let Some(status) = s.failures.pop_front() {
        return Err(server_error(status));
    }
    if s.throttle_every > 0 && s.accepted % s.throttle_every == 0 {
        let (status, body, _) = error(
            400,
            "Throttling.User",
            "Request was denied due to user flow control.",
        );
        return Err((status, body, vec![("x-acs-retry-after", "20".to_owned())]));
    }
    match header(request, "x-acs-action").as_deref() {
        Some("DescribeDBInstances") => {}
        Some(other) => return Err(error(404, "InvalidAction.NotFound", format!("Specified api {other} is not found, please check your url and method."))),
        None => return Err(error(400, "MissingParameter", "The input parameter \"Action\" that is mandatory for processing this request is not supplied.")),
    }
    if header(request, "x-acs-version").as_deref() != Some(VERSION) {
        return Err(error(
            400,
            "InvalidVersion",
            "Specified parameter Version is not valid.",
        ));
    }
    let query: HashMap<String, String> = request.url.query_pairs().into_owned().collect();
    describe_db_instances(s, &query)
}

fn invalid(name: &str) -> Answer {
    error(
        400,
        "InvalidParameter",
        format!("The specified parameter \"{name}\" is not valid."),
    )
}

/// A page size parameter: `default` when absent, else a number in `range`.
fn size(
    query: &HashMap<String, String>,
    name: &str,
    range: std::ops::RangeInclusive<usize>,
) -> Result<usize, Answer> {
    match query.get(name).map(|v| v.parse::<usize>()) {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(Ok(n)) if range.contains(&n) => Ok(n),
        Some(_) => Err(invalid(name)),
    }
}

fn describe_db_instances(s: &mut State, query: &HashMap<String, String>) -> Result<Value, Answer> {
    match query.get("RegionId") {
        None => return Err(error(400, "MissingParameter", "The input parameter \"RegionId\" that is mandatory for processing this request is not supplied.")),
        Some(r) if *r != s.region => return Err(error(400, "InvalidRegionId.NotFound", "The specified RegionId does not exist.")),
        Some(_) => {}
    }
    // `DBInstanceId`: comma-separated ids; the others filter the listing the same way.
    let filter = query.get("DBInstanceId").cloned().unwrap_or_default();
    let ids: Vec<&str> = filter
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .collect();
    let matching: Vec<&Value> = s
        .instances
        .iter()
        .filter(|v| ids.is_empty() || ids.iter().any(|id| v["DBInstanceId"] == *id))
        .collect();
    let total = matching.len();
    let token_mode = query.contains_key("MaxResults") || query.contains_key("NextToken");
    let (offset, size, page_number) = if token_mode {
        let max = size(query, "MaxResults", 1..=MAX_RESULTS)?;
        let offset = match query.get("NextToken").filter(|t| !t.is_empty()) {
            None => 0,
            Some(token) => match s.tokens.get(token) {
                Some((paged, offset)) if *paged == filter => *offset,
                _ => return Err(invalid("NextToken")),
            },
        };
        (offset, max, None)
    } else {
        let size = size(query, "PageSize", DEFAULT_PAGE_SIZE..=MAX_RESULTS)?;
        let number = match query.get("PageNumber").map(|v| v.parse::<usize>()) {
            None => 1,
            Some(Ok(n)) if n >= 1 => n,
            Some(_) => return Err(invalid("PageNumber")),
        };
        ((number - 1).saturating_mul(size), size, Some(number))
    };
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(size)
        .map(|v| (*v).clone())
        .collect();
    let end = offset.saturating_add(page.len());
    let mut answer = json!({
        "Items": {"DBInstance": page},
        "TotalRecordCount": total,
        "PageRecordCount": end - offset.min(end),
    });
    if let Some(number) = page_number {
        answer["PageNumber"] = json!(number);
    } else {
        let next = if end < total {
            let token = hex::encode(&Sha256::digest(format!("{}:{filter}:{end}", s.region))[..16]);
            s.tokens.insert(token.clone(), (filter.clone(), end));
            token
        } else {
            String::new()
        };
        answer["NextToken"] = json!(next);
    }
    if ids.is_empty() {
        s.listings += 1;
    } else {
        s.lookups += 1;
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::Utc;

    use super::*;
    use crate::aliyun::{acs3_signature, acs3_string_to_sign};

    /// Sends `DescribeDBInstances` with `params`, signed with `secret` (the simulator's
    /// unless told otherwise) as the official SDKs sign it; answers status and body.
    async fn call(
        sim: &SimulatedAliyunRds,
        params: &[(&str, &str)],
        secret: Option<&str>,
    ) -> (u16, Value) {
        let mut url = url::Url::parse(&sim.uri()).unwrap();
        url.query_pairs_mut()
            .append_pair("RegionId", &sim.region())
            .extend_pairs(params);
        let mut headers = wiremock::http::HeaderMap::new();
        let host = url[url::Position::BeforeHost..url::Position::AfterPort].to_owned();
        let nonce = format!("{:032x}", rand::random::<u128>());
        for (name, value) in [
            ("host", host.as_str()),
            ("x-acs-action", "DescribeDBInstances"),
            ("x-acs-version", VERSION),
            (
                "x-acs-date",
                &Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            ),
            ("x-acs-signature-nonce", &nonce),
            ("x-acs-content-sha256", &hex::encode(Sha256::digest(b""))),
        ] {
            headers.insert(name, value.parse().unwrap());
        }
        let names: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        let unsigned = Request {
            url: url.clone(),
            method: wiremock::http::Method::POST,
            headers: headers.clone(),
            body: Vec::new(),
        };
        let string_to_sign = acs3_string_to_sign(&unsigned, &names);
        let secret = secret.map_or_else(|| sim.access_key_secret(), str::to_owned);
        let authorization = format!(
            "ACS3-HMAC-SHA256 Credential={},SignedHeaders={},Signature={}",
            sim.access_key_id(),
            {
                let mut sorted = names.clone();
                sorted.sort_unstable();
                sorted.join(";")
            },
            acs3_signature(&secret, &string_to_sign)
        );
        headers.remove("host");
        let response = reqwest::Client::new()
            .post(url)
            .headers(headers)
            .header("authorization", authorization)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    fn ids(page: &Value) -> Vec<String> {
        page["Items"]["DBInstance"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["DBInstanceId"].as_str().unwrap().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn next_token_paging_lists_every_instance_once() {
        let sim = SimulatedAliyunRds::start("cn-hangzhou", 237).await;
        let mut seen = Vec::new();
        let mut token = String::new();
        let mut pages = 0;
        loop {
            let mut params = vec![("MaxResults", "100")];
            if !token.is_empty() {
                params.push(("NextToken", token.as_str()));
            }
            let (status, page) = call(&sim, &params, None).await;
            assert_eq!(status, 200, "{page}");
            assert_eq!(page["TotalRecordCount"], 237);
            assert_eq!(page["PageRecordCount"], ids(&page).len());
            seen.extend(ids(&page));
            pages += 1;
            token = page["NextToken"].as_str().unwrap().to_owned();
            if token.is_empty() {
                break;
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(seen, sim.instance_ids());
        assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 237);
        assert_eq!(sim.listings(), 3);
    }

    #[tokio::test]
    async fn page_number_paging_lists_every_instance_once() {
        let sim = SimulatedAliyunRds::start("cn-hangzhou", 65).await;
        let mut seen = Vec::new();
        for number in ["1", "2", "3"] {
            let (status, page) =
                call(&sim, &[("PageSize", "30"), ("PageNumber", number)], None).await;
            assert_eq!(status, 200, "{page}");
            assert!(page.get("NextToken").is_none());
            seen.extend(ids(&page));
        }
        assert_eq!(seen, sim.instance_ids());
    }

    #[tokio::test]
    async fn max_results_out_of_range_is_refused() {
        let sim = SimulatedAliyunRds::start("cn-hangzhou", 5).await;
        for bad in ["0", "101", "x"] {
            let (status, body) = call(&sim, &[("MaxResults", bad)], None).await;
            assert_eq!(
                (status, body["Code"].as_str()),
                (400, Some("InvalidParameter")),
                "{bad}"
            );
        }
        let (status, body) = call(&sim, &[("PageSize", "10")], None).await;
        assert_eq!(
            (status, body["Code"].as_str()),
            (400, Some("InvalidParameter"))
        );
        let (status, body) = call(&sim, &[("NextToken", "forged")], None).await;
        assert_eq!(
            (status, body["Code"].as_str()),
            (400, Some("InvalidParameter"))
        );
    }

    #[tokio::test]
    async fn comma_separated_ids_answer_those_still_there() {
        let sim = SimulatedAliyunRds::start("cn-hangzhou", 20).await;
        let (a, b, gone) = (sim.instance_id(3), sim.instance_id(11), sim.instance_id(12));
        assert!(sim.remove_instance(&gone));
        let wanted = format!("{a},{b},{gone}");
        let (status, page) = call(
            &sim,
            &[("DBInstanceId", &wanted), ("MaxResults", "100")],
            None,
        )
        .await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(ids(&page), vec![a, b]);
        assert_eq!(page["TotalRecordCount"], 2);
        assert_eq!(page["NextToken"], "");
        assert_eq!((sim.lookups(), sim.listings()), (1, 0));
    }

    #[tokio::test]
    async fn instances_carry_the_documented_quirks() {
        let sim = SimulatedAliyunRds::start("cn-shanghai", 40).await;
        let all: Vec<Value> = sim
            .instance_ids()
            .iter()
            .map(|id| sim.instance(id).unwrap())
            .collect();
        for v in &all {
            assert!(v["DBInstanceCPU"].is_string(), "{v}");
            assert!(v["DBInstanceMemory"].as_u64().unwrap() >= 1024, "MB");
            assert_eq!(v["PayType"] == "Postpaid", v["ExpireTime"] == "", "{v}");
            assert!(v["ReadOnlyDBInstanceIds"]["ReadOnlyDBInstanceId"].is_array());
        }
        for engine in ["MySQL", "PostgreSQL", "SQLServer", "MariaDB"] {
            assert!(all.iter().any(|v| v["Engine"] == engine), "{engine}");
        }
        assert!(all
            .iter()
            .any(|v| v["InstanceNetworkType"] == "Classic" && v["VpcId"] == ""));
        assert!(all
            .iter()
            .any(|v| v["DBInstanceType"] == "Readonly" && v["MasterInstanceId"] != ""));
        let statuses: BTreeSet<String> = (0..STATUSES.len() as u64)
            .map(|i| instance_json("r", i)["DBInstanceStatus"].to_string())
            .collect();
        assert_eq!(statuses.len(), STATUSES.len());
        for v in all.iter().filter(|v| v["DBInstanceType"] == "Readonly") {
            let primary = sim
                .instance(v["MasterInstanceId"].as_str().unwrap())
                .unwrap();
            assert_eq!(primary["Engine"], v["Engine"]);
            let listed = &primary["ReadOnlyDBInstanceIds"]["ReadOnlyDBInstanceId"][0];
            assert_eq!(listed["DBInstanceId"], v["DBInstanceId"]);
        }
    }

    #[tokio::test]
    async fn a_bad_signature_is_refused() {
        let sim = SimulatedAliyunRds::start("cn-hangzhou", 3).await;
        let (status, body) = call(&sim, &[], Some("not-the-secret")).await;
        assert_eq!(
            (status, body["Code"].as_str()),
            (400, Some("SignatureDoesNotMatch"))
        );
        assert!(body["RequestId"].is_string() && body["Recommend"].is_string());
        assert_eq!(sim.listings(), 0);
        sim.set_credentials("LTAI5tOther", "other-secret");
        let (status, body) = call(&sim, &[], Some("other-secret")).await;
        assert_eq!(status, 200, "{body}");
    }

    #[tokio::test]
    async fn throttles_and_failures_answer_the_vendor_codes() {
        let sim = SimulatedAliyunRds::start("cn-hangzhou", 3).await;
        sim.throttle_every(2);
        assert_eq!(call(&sim, &[], None).await.0, 200);
        let (status, body) = call(&sim, &[], None).await;
        assert_eq!(
            (status, body["Code"].as_str()),
            (400, Some("Throttling.User"))
        );
        sim.throttle_every(0);
        sim.fail_next(1, 503);
        let (status, body) = call(&sim, &[], None).await;
        assert_eq!(
            (status, body["Code"].as_str()),
            (503, Some("ServiceUnavailable"))
        );
        assert_eq!(call(&sim, &[], None).await.0, 200);
        assert_eq!(sim.requests(), 4);
    }
}
