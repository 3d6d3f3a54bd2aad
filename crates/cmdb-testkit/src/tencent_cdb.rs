//! A simulated Tencent Cloud CDB (TencentDB for MySQL) API: `DescribeDBInstances`,
//! version 2017-03-20, on wiremock.
//!
//! [`SimulatedTencentCdb`] checks every request as Tencent Cloud's API 3.0 gateway does,
//! with the same check as the CVM simulator ([`crate::tencent`]): a `TC3-HMAC-SHA256`
//! `Authorization` whose scope names the service `cdb`, the timestamp within 5 minutes,
//! signed `Content-Type` and `Host`. Errors come the Tencent way, HTTP 200 with
//! `Response.Error`. It serves generated instances shaped like the official example
//! output: integer `Status` (0 creating, 1 running, 4 isolating, 5 isolated), `PayType`
//! (0 prepaid, 1 postpaid) and `InstanceType` (1 primary, 2 disaster recovery, 3
//! read-only), `Memory` in MB, `Volume` in GB, `CreateTime` and `DeadlineTime` in China
//! Standard Time without an offset (`"2023-08-29 08:37:33"`; pay-as-you-go instances have
//! the zero date `"0000-00-00 00:00:00"`), the public endpoint in `WanDomain`/`WanPort`
//! only while `WanStatus` is 1, tags in `TagList[{TagKey, TagValue}]`.
//!
//! Paging is `Offset` (from 0) and `Limit` (default 20, at most 2000) with `TotalCount`;
//! `InstanceIds` looks instances up by id. It can throttle (`RequestLimitExceeded`), fail
//! with a gateway's 5xx and slow down; tests add, remove and change instances.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use cmdb_testkit::tencent_cdb::SimulatedTencentCdb;
//!
//! let sim = SimulatedTencentCdb::start("ap-guangzhou", 50).await;
//! assert_eq!(sim.instance_ids().len(), 50);
//! assert_eq!(sim.instance(&sim.instance_id(0)).unwrap()["Status"], 1); // running
//! # });
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::tencent::{header, tencent_error, verify_tc3, Tc3Key};

/// The SecretId the simulator accepts by default.
pub const SECRET_ID: &str = "AKIDsimulatedTencentCdb000000000001";
/// The SecretKey the simulator accepts by default.
pub const SECRET_KEY: &str = "simulated-tencent-cdb-secret-key-01";
/// The API version of CDB.
pub const VERSION: &str = "2017-03-20";
/// The service named in the signature's credential scope.
pub const SERVICE: &str = "cdb";
/// The largest `Limit` `DescribeDBInstances` accepts.
pub const MAX_LIMIT: u64 = 2000;
/// `Limit` when not given.
pub const DEFAULT_LIMIT: u64 = 20;

/// The integer `Status` values generated instances cycle through.
pub const STATUSES: &[u64] = &[1, 0, 4, 5];

struct State {
    secret_id: String,
    secret_key: String,
    session_token: Option<String>,
    token_expired: bool,
    region: String,
    instances: Vec<Value>,
    next_index: u64,
    requests: u64,
    throttle_every: u64,
    fail_next: VecDeque<u16>,
    latency: Option<Duration>,
    clock_offset: i64,
    listings: u64,
    lookups: u64,
}

/// A simulated CDB endpoint holding one region's instances. See the [module docs](self).
pub struct SimulatedTencentCdb {
    server: MockServer,
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for SimulatedTencentCdb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("SimulatedTencentCdb")
            .field("uri", &self.server.uri())
            .field("region", &s.region)
            .field("instances", &s.instances.len())
            .finish_non_exhaustive()
    }
}

impl SimulatedTencentCdb {
    /// A simulator with `count` generated instances in `region`, accepting
    /// [`SECRET_ID`] / [`SECRET_KEY`].
    pub async fn start(region: &str, count: u64) -> SimulatedTencentCdb {
        let state = Arc::new(Mutex::new(State {
            secret_id: SECRET_ID.to_owned(),
            secret_key: SECRET_KEY.to_owned(),
            session_token: None,
            token_expired: false,
            region: region.to_owned(),
            instances: (0..count).map(|i| instance_json(region, i)).collect(),
            next_index: count,
            requests: 0,
            throttle_every: 0,
            fail_next: VecDeque::new(),
            latency: None,
            clock_offset: 0,
            listings: 0,
            lookups: 0,
        }));
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(Responder(Arc::clone(&state)))
            .mount(&server)
            .await;
        SimulatedTencentCdb { server, state }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The base URL, `http://127.0.0.1:<port>`: the endpoint override to use.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// The region of the instances.
    pub fn region(&self) -> String {
        self.lock().region.clone()
    }

    /// The SecretId accepted.
    pub fn secret_id(&self) -> String {
        self.lock().secret_id.clone()
    }

    /// The SecretKey accepted.
    pub fn secret_key(&self) -> String {
        self.lock().secret_key.clone()
    }

    /// Accepts this key pair from now on, and no longer the previous one.
    pub fn set_credentials(&self, secret_id: &str, secret_key: &str) {
        let mut s = self.lock();
        s.secret_id = secret_id.to_owned();
        s.secret_key = secret_key.to_owned();
    }

    /// Makes the key a temporary one: requests must carry `token` in `X-TC-Token`, else
    /// `AuthFailure.TokenFailure`; `None` goes back to a permanent key.
    pub fn set_session_token(&self, token: Option<&str>) {
        let mut s = self.lock();
        s.session_token = token.map(str::to_owned);
        s.token_expired = false;
    }

    /// Expires the session token: requests then answer `AuthFailure.TokenFailure`.
    pub fn expire_session_token(&self) {
        self.lock().token_expired = true;
    }

    /// Moves the simulator's clock by `seconds`, to make requests look early or late.
    pub fn set_clock_offset(&self, seconds: i64) {
        self.lock().clock_offset = seconds;
    }

    /// The instance id of generated instance number `i`.
    pub fn instance_id(&self, i: u64) -> String {
        instance_id(i)
    }

    /// The ids of the instances listed now, in listing order.
    pub fn instance_ids(&self) -> Vec<String> {
        let s = self.lock();
        let ids = s.instances.iter().filter_map(|v| v["InstanceId"].as_str());
        ids.map(str::to_owned).collect()
    }

    /// The JSON of one instance as the API lists it.
    pub fn instance(&self, id: &str) -> Option<Value> {
        let s = self.lock();
        s.instances.iter().find(|v| v["InstanceId"] == id).cloned()
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

    /// Removes an instance; whether it was there.
    pub fn remove_instance(&self, id: &str) -> bool {
        let mut s = self.lock();
        let before = s.instances.len();
        s.instances.retain(|v| v["InstanceId"] != id);
        s.instances.len() != before
    }

    /// Changes an instance's JSON in place (e.g. `v["Status"] = 5.into()`); whether it
    /// was there.
    pub fn update_instance(&self, id: &str, change: impl FnOnce(&mut Value)) -> bool {
        let mut s = self.lock();
        match s.instances.iter_mut().find(|v| v["InstanceId"] == id) {
            Some(v) => {
                change(v);
                true
            }
            None => false,
        }
    }

    /// Answers every `k`-th request (counting all requests) with `RequestLimitExceeded`,
    /// HTTP 200; `0` stops it.
    pub fn throttle_every(&self, k: u64) {
        self.lock().throttle_every = k;
    }

    /// Answers the next `n` requests with HTTP `status` and a non-JSON body, as a gateway
    /// in front of the API would.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.lock().fail_next.extend(std::iter::repeat_n(status, n));
    }

    /// Answers every request `latency` after the simulator began to handle it.
    pub fn set_latency(&self, latency: Option<Duration>) {
        self.lock().latency = latency;
    }

    /// Requests received, whatever the answer.
    pub fn requests(&self) -> u64 {
        self.lock().requests
    }

    /// Listing pages served (by-id lookups not counted).
    pub fn listings(&self) -> u64 {
        self.lock().listings
    }

    /// By-id lookups (`InstanceIds`) served.
    pub fn lookups(&self) -> u64 {
        self.lock().lookups
    }
}

fn instance_id(i: u64) -> String {
    format!("cdb-{i:08x}")
}

/// Generated instance number `i` of `region`, shaped like the official example of
/// `DescribeDBInstances`: every [`STATUSES`] value, prepaid (`PayType` 0, a deadline) and
/// postpaid (1, the zero date), primaries with read-only groups and read-only instances
/// with their `MasterInfo`, the public endpoint on some, Chinese names, tags or none.
pub fn instance_json(region: &str, i: u64) -> Value {
    let status = STATUSES[(i % STATUSES.len() as u64) as usize];
    let prepaid = i % 3 == 0;
    let readonly = i % 6 == 5;
    let wan = i % 4 == 1;
    let (cpu, memory_mb, volume_gb) = [
        (1, 1000, 50),
        (2, 4000, 100),
        (4, 8000, 200),
        (8, 32000, 1000),
    ][(i % 4) as usize];
    let day = 1 + i % 28;
    let zone_n = 1 + i % 3;
    let id = instance_id(i);
    let zone_name = format!(
        "{region} {}",
        ["一区", "二区", "三区"][(zone_n - 1) as usize]
    );
    let vip = format!("10.{}.{}.{}", i / 65536 % 256, i / 256 % 256, i % 256);
    let master_info = if readonly {
        json!({
            "InstanceId": instance_id(i - 1), "InstanceName": format!("cdb-master-{}", i - 1),
            "Region": region, "Zone": format!("{region}-{zone_n}"), "Status": 1,
            "InstanceType": 1, "VpcId": 0, "SubnetId": 0, "Memory": 0, "Volume": 0,
            "DeviceType": "UNIVERSAL", "Qps": 0, "TaskStatus": 0, "RegionId": 0, "ZoneId": 0,
            "ResourceId": "", "ExClusterId": "", "ExClusterName": ""
        })
    } else {
        Value::Null
    };
    let ro_groups = if i % 6 == 4 {
        json!([{
            "RoGroupId": format!("cdbrg-{i:08x}"), "RoGroupName": format!("ro-{i}"),
            "RoGroupMode": "alone", "RoGroupZone": format!("{region}-{zone_n}"),
            "RoGroupRegion": region, "RoMaxDelayTime": 1, "RoOfflineDelay": 0,
            "MinRoInGroup": 1, "WeightMode": "system", "Weight": 0, "DelayReplicationTime": 0,
            "Vip": format!("10.200.{}.{}", i / 256 % 256, i % 256), "Vport": 3306,
            "UniqVpcId": format!("vpc-{:08x}", i % 3), "UniqSubnetId": format!("subnet-{:08x}", i % 7),
            "RoInstances": [{"InstanceId": instance_id(i + 1), "MasterInstanceId": id}]
        }])
    } else {
        json!([])
    };
    let mut instance = json!({
        "InstanceId": id,
        "InstanceName": if i % 2 == 0 { format!("订单库-{i}") } else { format!("cdb-{i}") },
        "Region": region,
        "Zone": format!("{region}-{zone_n}"),
        "ZoneId": 100_000 + zone_n,
        "ZoneName": zone_name,
        "Status": status,
        "TaskStatus": 0,
        "InitFlag": 1,
        "Vip": vip,
        "Vport": 3306,
        "WanStatus": u8::from(wan),
        "WanDomain": if wan { format!("gz-cdb-{i:08x}.sql.tencentcdb.com") } else { String::new() },
        "WanPort": if wan { 20_000 + i % 10_000 } else { 0 },
        "Cpu": cpu,
        "CpuModel": "Intel",
        "Memory": memory_mb,
        "Volume": volume_gb,
    });
    // Two objects: one would pass the `json!` macro's recursion limit.
    let rest = json!({
        "Qps": 0,
        "EngineVersion": if i % 2 == 0 { "5.7" } else { "8.0" },
        "EngineType": "InnoDB",
        "DeviceType": if i % 5 == 0 { "EXCLUSIVE" } else { "UNIVERSAL" },
        "DeviceClass": "",
        "DiskType": if i % 2 == 0 { "CLOUD_SSD" } else { "LOCAL_SSD" },
        "InstanceType": if readonly { 3 } else { 1 },
        "InstanceNodes": if readonly { 1 } else { 2 },
        "PayType": if prepaid { 0 } else { 1 },
        "AutoRenew": u8::from(prepaid),
        "CreateTime": format!("2023-08-{day:02} 0{}:37:33", i % 10),
        "DeadlineTime": if prepaid { format!("2026-08-{day:02} 0{}:37:33", i % 10) } else { "0000-00-00 00:00:00".to_owned() },
        "ProjectId": (i % 2) * 1_000_000,
        "VpcId": 500_000 + i % 3,
        "SubnetId": 100_000 + i % 7,
        "UniqVpcId": format!("vpc-{:08x}", i % 3),
        "UniqSubnetId": format!("subnet-{:08x}", i % 7),
        "ProtectMode": 0,
        "DeployMode": 0,
        "DeployGroupId": "",
        "CdbError": 0,
        "PhysicalId": format!("{}", 100_000 + i),
        "MaxDelayTime": 0,
        "MasterInfo": master_info,
        "RoGroups": ro_groups,
        "RoVipInfo": Value::Null,
        "SlaveInfo": Value::Null,
        "DrInfo": Value::Null,
        "TagList": if i % 3 == 2 { Value::Null } else { json!([{"TagKey": "env", "TagValue": "sim"}, {"TagKey": "序号", "TagValue": i.to_string()}]) },
    });
    if let (Some(object), Value::Object(rest)) = (instance.as_object_mut(), rest) {
        object.extend(rest);
    }
    instance
}

struct Responder(Arc<Mutex<State>>);

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let started = std::time::Instant::now();
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        s.requests += 1;
        let request_id = format!("cdb-sim-{:04x}-{:08x}", s.requests % 0xffff, s.requests);
        let answer = answer(&mut s, request, &request_id);
        crate::with_latency(answer, s.latency, started)
    }
}

fn answer(s: &mut State, request: &Request, request_id: &str) -> ResponseTemplate {
    if let Some(status) = s.fail_next.pop_front() {
        return ResponseTemplate::new(status).set_body_raw(
            "<html><body>upstream unavailable</body></html>",
            "text/html",
        );
    }
    if s.throttle_every > 0 && s.requests % s.throttle_every == 0 {
        return tencent_error(
            "RequestLimitExceeded",
            "Your current request times equals to `21` in a second, which exceeds the frequency limit `20` for a second. Please reduce the frequency of calls.",
            request_id,
        );
    }
    if request.method.as_str() != "POST" || request.url.path() != "/" {
        return tencent_error("InvalidParameter", "API 3.0 calls are POST /", request_id);
    }
    match header(request, "x-tc-action") {
        Some("DescribeDBInstances") => {}
        None | Some("") => {
            return tencent_error(
                "MissingParameter",
                "The request is missing a required parameter `Action`.",
                request_id,
            )
        }
        Some(other) => {
            return tencent_error(
                "InvalidAction",
                &format!("The action `{other}` is not supported."),
                request_id,
            )
        }
    }
    let now = Utc::now().timestamp() + s.clock_offset;
    let key = Tc3Key {
        secret_id: &s.secret_id,
        secret_key: &s.secret_key,
        session_token: s.session_token.as_deref(),
        token_expired: s.token_expired,
    };
    if let Err((code, message)) = verify_tc3(&key, request, SERVICE, now) {
        return tencent_error(code, &message, request_id);
    }
    if header(request, "x-tc-version") != Some(VERSION) {
        return tencent_error(
            "InvalidParameterValue",
            &format!("The value of `Version` must be `{VERSION}` for `DescribeDBInstances`."),
            request_id,
        );
    }
    let body: Value = match serde_json::from_slice(&request.body) {
        Ok(Value::Object(body)) => Value::Object(body),
        _ => {
            return tencent_error(
                "InvalidParameter",
                "The request body is not a JSON object.",
                request_id,
            )
        }
    };
    describe_db_instances(s, request, &body, request_id)
}

fn describe_db_instances(
    s: &mut State,
    request: &Request,
    body: &Value,
    request_id: &str,
) -> ResponseTemplate {
    let region = header(request, "x-tc-region").unwrap_or_default();
    if region.is_empty() {
        return tencent_error(
            "MissingParameter",
            "The request is missing a required parameter `Region`.",
            request_id,
        );
    }
    let number = |name: &str, default: u64| match body.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v.as_u64().ok_or(name.to_owned()),
    };
    let (offset, limit) = match (number("Offset", 0), number("Limit", DEFAULT_LIMIT)) {
        (Ok(o), Ok(l)) => (o, l),
        (Err(name), _) | (_, Err(name)) => {
            return tencent_error(
                "InvalidParameterValue",
                &format!("The value of `{name}` is not a non-negative integer."),
                request_id,
            )
        }
    };
    if limit > MAX_LIMIT {
        return tencent_error(
            "InvalidParameterValue",
            &format!("The value of `Limit` must be at most {MAX_LIMIT}, not {limit}."),
            request_id,
        );
    }
    let ids: Option<Vec<&str>> = match body.get("InstanceIds") {
        None | Some(Value::Null) => None,
        Some(ids) => match ids
            .as_array()
            .and_then(|a| a.iter().map(Value::as_str).collect::<Option<Vec<&str>>>())
        {
            Some(ids) => Some(ids),
            None => {
                return tencent_error(
                    "InvalidParameter",
                    "The value of `InstanceIds` is not an array of strings.",
                    request_id,
                )
            }
        },
    };
    // The instances live in the simulator's region; any other region is an empty one.
    let matching: Vec<&Value> = s
        .instances
        .iter()
        .filter(|_| region == s.region)
        .filter(|v| {
            ids.as_ref()
                .is_none_or(|ids| ids.iter().any(|id| v["InstanceId"] == *id))
        })
        .collect();
    let page: Vec<&Value> = matching
        .iter()
        .skip(offset as usize)
        .take(limit as usize)
        .copied()
        .collect();
    let answer = json!({
        "Response": {"TotalCount": matching.len(), "Items": page, "RequestId": request_id}
    });
    if ids.is_some() {
        s.lookups += 1;
    } else {
        s.listings += 1;
    }
    ResponseTemplate::new(200).set_body_json(answer)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::DateTime;

    use super::*;
    use crate::tencent::{expected_signature, ParsedAuthorization};

    /// Sends `DescribeDBInstances` with `body`, signed with `secret_key` (the
    /// simulator's unless told otherwise) as the official SDKs sign it (`content-type;host`);
    /// answers the `Response` object.
    async fn call(sim: &SimulatedTencentCdb, body: Value, secret_key: Option<&str>) -> Value {
        let url = url::Url::parse(&sim.uri()).unwrap();
        let host = url[url::Position::BeforeHost..url::Position::AfterPort].to_owned();
        let timestamp = Utc::now().timestamp();
        let date = DateTime::<Utc>::from_timestamp(timestamp, 0)
            .unwrap()
            .date_naive()
            .to_string();
        let body = body.to_string().into_bytes();
        let mut headers = wiremock::http::HeaderMap::new();
        for (name, value) in [
            ("content-type", "application/json; charset=utf-8"),
            ("host", host.as_str()),
            ("x-tc-action", "DescribeDBInstances"),
            ("x-tc-version", VERSION),
            ("x-tc-timestamp", &timestamp.to_string()),
            ("x-tc-region", &sim.region()),
        ] {
            headers.insert(name, value.parse().unwrap());
        }
        let unsigned = Request {
            url: url.clone(),
            method: wiremock::http::Method::POST,
            headers: headers.clone(),
            body: body.clone(),
        };
        let secret_id = sim.secret_id();
        let scope = format!("{date}/{SERVICE}/tc3_request");
        let parsed = ParsedAuthorization {
            secret_id: &secret_id,
            scope: &scope,
            signed_headers: "content-type;host",
            signature: "",
        };
        let secret_key = secret_key.map_or_else(|| sim.secret_key(), str::to_owned);
        let signature =
            expected_signature(&secret_key, &unsigned, &parsed, timestamp, &date, SERVICE).unwrap();
        headers.remove("host");
        let response = reqwest::Client::new()
            .post(url)
            .headers(headers)
            .header(
                "authorization",
                format!("TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders=content-type;host, Signature={signature}"),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "errors come with HTTP 200");
        let answer: Value = response.json().await.unwrap();
        answer["Response"].clone()
    }

    fn ids(response: &Value) -> Vec<String> {
        response["Items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["InstanceId"].as_str().unwrap().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn offset_paging_lists_every_instance_once() {
        let sim = SimulatedTencentCdb::start("ap-guangzhou", 45).await;
        let mut seen = Vec::new();
        for offset in (0..45).step_by(20) {
            let response = call(&sim, json!({"Offset": offset, "Limit": 20}), None).await;
            assert_eq!(response["TotalCount"], 45, "{response}");
            seen.extend(ids(&response));
        }
        assert_eq!(seen, sim.instance_ids());
        assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 45);
        // Past the end: an empty page, the same total.
        let response = call(&sim, json!({"Offset": 45, "Limit": 20}), None).await;
        assert_eq!(
            (response["Items"].clone(), response["TotalCount"].clone()),
            (json!([]), json!(45))
        );
        // The default limit is 20; 2000 is allowed, 2001 is not.
        assert_eq!(ids(&call(&sim, json!({}), None).await).len(), 20);
        assert_eq!(
            ids(&call(&sim, json!({"Limit": 2000}), None).await).len(),
            45
        );
        let response = call(&sim, json!({"Limit": 2001}), None).await;
        assert_eq!(response["Error"]["Code"], "InvalidParameterValue");
        assert_eq!(sim.listings(), 6);
    }

    #[tokio::test]
    async fn instance_ids_answer_those_still_there() {
        let sim = SimulatedTencentCdb::start("ap-guangzhou", 10).await;
        let (a, gone) = (sim.instance_id(2), sim.instance_id(3));
        assert!(sim.remove_instance(&gone));
        let response = call(&sim, json!({"InstanceIds": [a, gone]}), None).await;
        assert_eq!(ids(&response), vec![a]);
        assert_eq!(response["TotalCount"], 1);
        assert_eq!((sim.lookups(), sim.listings()), (1, 0));
        let response = call(&sim, json!({"InstanceIds": "cdb-1"}), None).await;
        assert_eq!(response["Error"]["Code"], "InvalidParameter");
    }

    #[tokio::test]
    async fn instances_carry_the_documented_quirks() {
        let sim = SimulatedTencentCdb::start("ap-guangzhou", 24).await;
        let all = call(&sim, json!({"Limit": 100}), None).await["Items"].clone();
        let all = all.as_array().unwrap();
        let statuses: BTreeSet<u64> = all.iter().map(|v| v["Status"].as_u64().unwrap()).collect();
        assert_eq!(statuses, STATUSES.iter().copied().collect());
        for v in all {
            assert!(v["Memory"].as_u64().unwrap() >= 1000, "MB");
            assert!(v["Volume"].as_u64().unwrap() <= 1000, "GB");
            let created = v["CreateTime"].as_str().unwrap();
            assert!(
                chrono::NaiveDateTime::parse_from_str(created, "%Y-%m-%d %H:%M:%S").is_ok(),
                "{created}"
            );
            assert_eq!(
                v["PayType"] == 1,
                v["DeadlineTime"] == "0000-00-00 00:00:00",
                "{v}"
            );
            assert_eq!(v["WanStatus"] == 1, v["WanDomain"] != "", "{v}");
        }
        assert!(all
            .iter()
            .any(|v| v["InstanceType"] == 3 && v["MasterInfo"]["InstanceId"].is_string()));
        assert!(all.iter().any(|v| v["TagList"].is_null()));
        assert!(all.iter().any(|v| v["TagList"][1]["TagKey"] == "序号"));
    }

    #[tokio::test]
    async fn a_bad_signature_is_refused() {
        let sim = SimulatedTencentCdb::start("ap-guangzhou", 3).await;
        let response = call(&sim, json!({}), Some("not-the-key")).await;
        assert_eq!(response["Error"]["Code"], "AuthFailure.SignatureFailure");
        assert_eq!(sim.listings(), 0);
        sim.set_clock_offset(600);
        let response = call(&sim, json!({}), None).await;
        assert_eq!(response["Error"]["Code"], "AuthFailure.SignatureExpire");
    }

    #[tokio::test]
    async fn throttles_answer_request_limit_exceeded() {
        let sim = SimulatedTencentCdb::start("ap-guangzhou", 3).await;
        sim.throttle_every(2);
        assert_eq!(call(&sim, json!({}), None).await["TotalCount"], 3);
        let response = call(&sim, json!({}), None).await;
        assert_eq!(response["Error"]["Code"], "RequestLimitExceeded");
        assert!(response["RequestId"].is_string());
        assert_eq!(call(&sim, json!({}), None).await["TotalCount"], 3);
    }
}
