//! A simulated Tencent Cloud API 3.0 (CVM `DescribeInstances`, region `DescribeRegions`)
//! on wiremock.
//!
//! It checks every request as Tencent Cloud does: a `TC3-HMAC-SHA256` `Authorization`
//! recomputed here with an implementation of its own (this crate never depends on the
//! provider it tests), the timestamp within 5 minutes, the signed `Content-Type` and
//! `Host`, the service in the scope matching the action's (`cvm`, `region`). It answers
//! errors the Tencent way, HTTP 200 with `Response.Error`, with Tencent's codes. It serves
//! generated instances in the real JSON shape (GiB memory, `null` public IPs and expiry,
//! `Z` and `+00:00` times, every `InstanceState`, Chinese names, tags), pages them with
//! `Offset`/`Limit` (Limit over 100 rejected), and injects throttling, 5xx and latency.
//! The instances live in one region; the other regions `DescribeRegions` lists answer
//! an empty listing, and a region it does not list `UnsupportedRegion`.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use cmdb_testkit::tencent::SimulatedTencent;
//!
//! let sim = SimulatedTencent::start(250).await;
//! assert_eq!(sim.instance_ids().len(), 250);
//! sim.throttle_every(5); // every 5th request answers RequestLimitExceeded
//! sim.remove_instance(&sim.instance_ids()[0]);
//! assert_eq!(sim.instance_ids().len(), 249);
//! assert!(sim.uri().starts_with("http://127.0.0.1:"));
//! # });
//! ```

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The SecretId the simulator accepts by default.
pub const SECRET_ID: &str = "AKIDsimulatedTencent0000000000000001";
/// The SecretKey the simulator accepts by default.
pub const SECRET_KEY: &str = "simulated-tencent-secret-key-0001";
/// The region of the generated instances by default.
pub const REGION: &str = "ap-guangzhou";
/// How far a request's `X-TC-Timestamp` may be from the simulator's clock.
pub const MAX_SKEW_SECONDS: i64 = 300;
/// The largest `Limit` `DescribeInstances` accepts.
pub const MAX_LIMIT: u64 = 100;

/// Every `InstanceState` CVM documents, in the order generated instances cycle through.
pub const INSTANCE_STATES: &[&str] = &[
    "RUNNING",
    "PENDING",
    "LAUNCH_FAILED",
    "STOPPED",
    "STARTING",
    "STOPPING",
    "REBOOTING",
    "SHUTDOWN",
    "TERMINATING",
    "ENTER_RESCUE_MODE",
    "RESCUE_MODE",
    "EXIT_RESCUE_MODE",
    "ENTER_SERVICE_LIVE_MIGRATE",
    "SERVICE_LIVE_MIGRATE",
    "EXIT_SERVICE_LIVE_MIGRATE",
];

/// The regions `DescribeRegions` lists.
const REGIONS: &[(&str, &str)] = &[
    ("ap-guangzhou", "华南地区(广州)"),
    ("ap-shanghai", "华东地区(上海)"),
    ("ap-beijing", "华北地区(北京)"),
    ("ap-shanghai-fsi", "华东地区(上海金融)"),
    ("ap-singapore", "亚太东南(新加坡)"),
];

/// One instance of the inventory. Generated ones are kept as their number and rendered
/// when a page is served, so a million-instance simulator costs 16 bytes an instance, not
/// a parsed JSON tree each; an instance becomes JSON once a test changes it.
enum Entry {
    Generated(u64),
    Json(Box<Value>),
}

impl Entry {
    fn id(&self) -> Option<String> {
        match self {
            Entry::Generated(i) => Some(instance_id(*i)),
            Entry::Json(v) => v["InstanceId"].as_str().map(str::to_owned),
        }
    }

    fn is(&self, id: &str) -> bool {
        match self {
            Entry::Generated(i) => instance_id(*i) == id,
            Entry::Json(v) => v["InstanceId"] == id,
        }
    }

    fn json(&self, region: &str) -> Value {
        match self {
            Entry::Generated(i) => generate_instance(region, *i),
            Entry::Json(v) => (**v).clone(),
        }
    }
}

fn instance_id(i: u64) -> String {
    format!("ins-{i:08x}")
}

struct State {
    secret_id: String,
    secret_key: String,
    region: String,
    instances: Vec<Entry>,
    next_index: u64,
    requests: u64,
    describe_calls: u64,
    throttle_every: Option<u64>,
    fail_every: Option<(u64, u16)>,
    fail_next: Vec<u16>,
    latency: Option<Duration>,
    grow_after: Option<(u64, u64)>,
    /// Instances to remove right after the n-th `DescribeInstances` listing call.
    remove_after: Vec<(u64, Vec<String>)>,
    fail_pages_from: Option<u64>,
    clock_offset: i64,
    /// The error code by-id lookups (`InstanceIds`) answer with, when set.
    lookup_failure: Option<&'static str>,
    /// The STS token the key needs (`X-TC-Token`), when it is a temporary one.
    session_token: Option<String>,
    /// Whether that token has expired.
    token_expired: bool,
}

/// A Tencent Cloud API simulator on a wiremock server of its own.
///
/// The knobs act on the next requests and may be turned between runs of a sync.
pub struct SimulatedTencent {
    server: MockServer,
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for SimulatedTencent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("SimulatedTencent")
            .field("uri", &self.server.uri())
            .field("region", &s.region)
            .field("instances", &s.instances.len())
            .field("requests", &s.requests)
            .finish_non_exhaustive()
    }
}

impl SimulatedTencent {
    /// A simulator with `count` generated instances in [`REGION`], accepting
    /// [`SECRET_ID`] / [`SECRET_KEY`].
    pub async fn start(count: u64) -> SimulatedTencent {
        SimulatedTencent::start_with(SECRET_ID, SECRET_KEY, REGION, count).await
    }

    /// A simulator with `count` generated instances in `region`, accepting only this key
    /// pair.
    pub async fn start_with(
        secret_id: &str,
        secret_key: &str,
        region: &str,
        count: u64,
    ) -> SimulatedTencent {
        let state = Arc::new(Mutex::new(State {
            secret_id: secret_id.to_owned(),
            secret_key: secret_key.to_owned(),
            region: region.to_owned(),
            instances: (0..count).map(Entry::Generated).collect(),
            next_index: count,
            requests: 0,
            describe_calls: 0,
            throttle_every: None,
            fail_every: None,
            fail_next: Vec::new(),
            latency: None,
            grow_after: None,
            remove_after: Vec::new(),
            fail_pages_from: None,
            clock_offset: 0,
            lookup_failure: None,
            session_token: None,
            token_expired: false,
        }));
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(Responder(Arc::clone(&state)))
            .mount(&server)
            .await;
        SimulatedTencent { server, state }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The base URL, `http://127.0.0.1:<port>`: the endpoint override to use.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// Accepts this key pair from now on, and no longer the previous one (a key revoked
    /// or rotated in the console).
    pub fn set_credentials(&self, secret_id: &str, secret_key: &str) {
        let mut s = self.lock();
        s.secret_id = secret_id.to_owned();
        s.secret_key = secret_key.to_owned();
    }

    /// Makes the key a temporary (STS) one: every request must carry `token` in
    /// `X-TC-Token` (not a signed header, as in the official SDKs), else
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

    /// The region of the instances.
    pub fn region(&self) -> String {
        self.lock().region.clone()
    }

    /// Answers every `k`-th request (counting all requests) with
    /// `RequestLimitExceeded`, HTTP 200; `0` stops it.
    pub fn throttle_every(&self, k: u64) {
        self.lock().throttle_every = (k > 0).then_some(k);
    }

    /// Answers the next `n` requests with HTTP `status` and a non-JSON body, as a gateway
    /// in front of the API would.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.lock().fail_next.extend(std::iter::repeat_n(status, n));
    }

    /// Answers every `k`-th request (counting all requests) with HTTP `status` and a
    /// non-JSON body, as [`fail_next`](Self::fail_next) does, until called again; `k` = 0
    /// stops it.
    pub fn fail_every(&self, k: u64, status: u16) {
        self.lock().fail_every = (k > 0).then_some((k, status));
    }

    /// Refuses for good every `DescribeInstances` page from page `k` on (0-based:
    /// `Offset >= k * Limit`) with `UnauthorizedOperation`, HTTP 200 as the API answers
    /// errors: a permission error the client must not retry. Earlier pages are served
    /// normally. `None` clears it.
    pub fn fail_pages_from(&self, k: Option<u64>) {
        self.lock().fail_pages_from = k;
    }

    /// Answers every request `latency` after the simulator began to handle it (real
    /// time): building the answer is part of the latency, as it is for a vendor.
    pub fn set_latency(&self, latency: Option<Duration>) {
        self.lock().latency = latency;
    }

    /// Moves the simulator's clock by `seconds`, to make requests look early or late.
    pub fn set_clock_offset(&self, seconds: i64) {
        self.lock().clock_offset = seconds;
    }

    /// Adds `count` instances right after the `call`-th `DescribeInstances` call is
    /// answered (1-based, counted from now): the `TotalCount` of later pages grows.
    pub fn grow_after(&self, call: u64, count: u64) {
        let mut s = self.lock();
        s.grow_after = Some((s.describe_calls + call, count));
    }

    /// Removes the instances `ids` right after the `call`-th `DescribeInstances`
    /// listing call is answered (1-based, counted from now; by-id lookups not counted):
    /// instances released while a listing runs, so that later offsets shift.
    pub fn remove_after(&self, call: u64, ids: Vec<String>) {
        let mut s = self.lock();
        let call = s.describe_calls + call;
        s.remove_after.push((call, ids));
    }

    /// Adds `count` newly generated instances at the end; returns their ids.
    pub fn add_instances(&self, count: u64) -> Vec<String> {
        add(&mut self.lock(), count)
    }

    /// Answers every by-id lookup (`DescribeInstances` with `InstanceIds`) with the error
    /// `code` (e.g. `RequestLimitExceeded`, `InternalError`); `None` stops it.
    pub fn fail_lookups(&self, code: Option<&'static str>) {
        self.lock().lookup_failure = code;
    }

    /// Removes an instance; whether it was there.
    pub fn remove_instance(&self, id: &str) -> bool {
        let mut s = self.lock();
        let before = s.instances.len();
        s.instances.retain(|i| !i.is(id));
        s.instances.len() != before
    }

    /// Changes an instance's JSON in place; whether it existed.
    pub fn update_instance(&self, id: &str, change: impl FnOnce(&mut Value)) -> bool {
        let mut s = self.lock();
        let region = s.region.clone();
        match s.instances.iter_mut().find(|i| i.is(id)) {
            Some(entry) => {
                let mut instance = entry.json(&region);
                change(&mut instance);
                *entry = Entry::Json(Box::new(instance));
                true
            }
            None => false,
        }
    }

    /// The ids of the instances listed now, in listing order.
    pub fn instance_ids(&self) -> Vec<String> {
        self.lock().instances.iter().filter_map(Entry::id).collect()
    }

    /// The JSON of one instance as the API returns it.
    pub fn instance(&self, id: &str) -> Option<Value> {
        let s = self.lock();
        s.instances
            .iter()
            .find(|i| i.is(id))
            .map(|i| i.json(&s.region))
    }

    /// Requests answered so far, whatever the answer.
    pub fn requests(&self) -> u64 {
        self.lock().requests
    }

    /// `DescribeInstances` calls answered with instances so far.
    pub fn describe_instances_calls(&self) -> u64 {
        self.lock().describe_calls
    }
}

fn add(s: &mut State, count: u64) -> Vec<String> {
    (0..count)
        .map(|_| {
            let i = s.next_index;
            s.next_index += 1;
            s.instances.push(Entry::Generated(i));
            instance_id(i)
        })
        .collect()
}

/// The `i`-th generated instance of `region`, in DescribeInstances' JSON shape.
///
/// Cycles through every [`INSTANCE_STATES`] and the charge types PREPAID,
/// POSTPAID_BY_HOUR and SPOTPAID; pay-as-you-go instances have a `null` `ExpiredTime`;
/// every fourth has `null` `PublicIpAddresses`; times alternate `Z` and `+00:00`; names
/// alternate Chinese and ASCII; every seventh has a GPU (every fourteenth a vGPU share).
pub fn generate_instance(region: &str, i: u64) -> Value {
    let state = INSTANCE_STATES[(i % INSTANCE_STATES.len() as u64) as usize];
    let charge = ["PREPAID", "POSTPAID_BY_HOUR", "SPOTPAID"][(i % 3) as usize];
    let suffix = if i % 2 == 0 { "Z" } else { "+00:00" };
    let day = 1 + i % 28;
    let created = format!("2024-03-{day:02}T0{}:15:30{suffix}", i % 10);
    let expired = (charge == "PREPAID").then(|| format!("2027-03-{day:02}T00:00:00{suffix}"));
    let memory_gib = [1u64, 2, 4, 8, 16, 32][(i % 6) as usize];
    let cpu = (memory_gib / 2).max(1);
    let name = if i % 2 == 0 {
        format!("测试实例-{i}")
    } else {
        format!("web-{i}")
    };
    let public = (i % 4 != 3).then(|| {
        json!([format!(
            "43.{}.{}.{}",
            i / 65536 % 256,
            i / 256 % 256,
            i % 256
        )])
    });
    let restrict = if i % 11 == 0 {
        "PROTECTIVELY_ISOLATED"
    } else if charge == "PREPAID" && i % 5 == 0 {
        "EXPIRED"
    } else {
        "NORMAL"
    };
    let gpu = match i % 14 {
        6 => json!({"GPUCount": 1.0, "GPUType": "NVIDIA T4", "GPUId": [format!("gpu-{i}")]}),
        13 => json!({"GPUCount": 0.25, "GPUType": "NVIDIA A10", "GPUId": []}),
        _ => Value::Null,
    };
    let os = if i % 5 == 4 {
        "Windows Server 2019 数据中心版 64位中文版"
    } else {
        "TencentOS Server 3.1 (TK4)"
    };
    json!({
        "Placement": {
            "Zone": format!("{region}-{}", 1 + i % 3),
            "ProjectId": (i % 2) * 1_000_000,
            "HostIds": null,
            "HostId": null
        },
        "InstanceId": instance_id(i),
        "InstanceType": format!("S5.{}", ["SMALL1", "SMALL2", "MEDIUM4", "LARGE8", "2XLARGE16", "4XLARGE32"][(i % 6) as usize]),
        "CPU": cpu,
        "Memory": memory_gib,
        "RestrictState": restrict,
        "InstanceName": name,
        "InstanceChargeType": charge,
        "SystemDisk": {"DiskType": "CLOUD_BSSD", "DiskId": format!("disk-s{i:07x}"), "DiskSize": 50},
        "DataDisks": null,
        "PrivateIpAddresses": [format!("10.{}.{}.{}", i / 65536 % 256, i / 256 % 256, i % 256)],
        "PublicIpAddresses": public,
        "InternetAccessible": {"InternetChargeType": "TRAFFIC_POSTPAID_BY_HOUR", "InternetMaxBandwidthOut": 1},
        "VirtualPrivateCloud": {
            "VpcId": format!("vpc-{:08x}", i % 3),
            "SubnetId": format!("subnet-{:08x}", i % 7),
            "AsVpcGateway": false,
            "PrivateIpAddresses": null
        },
        "ImageId": format!("img-{:08x}", i % 4),
        "RenewFlag": if charge == "PREPAID" { Value::from("NOTIFY_AND_MANUAL_RENEW") } else { Value::Null },
        "CreatedTime": created,
        "ExpiredTime": expired,
        "OsName": os,
        "SecurityGroupIds": [format!("sg-{:08x}", i % 5)],
        "LoginSettings": {"KeyIds": if i % 3 == 0 { json!([format!("skey-{:08x}", i % 9)]) } else { Value::Null }},
        "InstanceState": state,
        "Tags": [{"Key": "env", "Value": "sim"}, {"Key": "序号", "Value": i.to_string()}],
        "StopChargingMode": "NOT_APPLICABLE",
        "Uuid": format!("{:08x}-0000-4000-8000-{:012x}", i, i),
        "LatestOperation": null,
        "LatestOperationState": null,
        "LatestOperationRequestId": null,
        "DisasterRecoverGroupId": "",
        "IPv6Addresses": null,
        "CamRoleName": "",
        "HpcClusterId": "",
        "RdmaIpAddresses": [],
        "IsolatedSource": "NOTISOLATED",
        "GPUInfo": gpu,
        "LicenseType": "TencentCloud",
        "DisableApiTermination": false,
        "DefaultLoginUser": "root",
        "DefaultLoginPort": 22,
        "LatestOperationErrorMsg": null
    })
}

struct Responder(Arc<Mutex<State>>);

/// An error the Tencent way: HTTP 200, `Response.Error`.
pub(crate) fn tencent_error(code: &str, message: &str, request_id: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "Response": {
            "Error": {"Code": code, "Message": message},
            "RequestId": request_id
        }
    }))
}

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let started = std::time::Instant::now();
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        s.requests += 1;
        let request_id = format!("sim-{:04x}-{:08x}", s.requests % 0xffff, s.requests);
        let answer = answer(&mut s, request, &request_id);
        crate::with_latency(answer, s.latency, started)
    }
}

pub(crate) fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.headers.get(name).and_then(|v| v.to_str().ok())
}

fn answer(s: &mut State, request: &Request, request_id: &str) -> ResponseTemplate {
    let periodic = s
        .fail_every
        .filter(|(k, _)| s.requests % k == 0)
        .map(|(_, status)| status);
    if periodic.is_some() || !s.fail_next.is_empty() {
        let status = periodic.unwrap_or_else(|| s.fail_next.remove(0));
        return ResponseTemplate::new(status).set_body_raw(
            "<html><body>upstream unavailable</body></html>",
            "text/html",
        );
    }
    if let Some(k) = s.throttle_every {
        if s.requests % k == 0 {
            return tencent_error(
                "RequestLimitExceeded",
                "Your current request times equals to `41` in a second, which exceeds the frequency limit `40` for a second. Please reduce the frequency of calls.",
                request_id,
            );
        }
    }
    if request.method.as_str() != "POST" || request.url.path() != "/" {
        return tencent_error("InvalidParameter", "API 3.0 calls are POST /", request_id);
    }
    let action = header(request, "x-tc-action")
        .unwrap_or_default()
        .to_owned();
    let (service, version) = match action.as_str() {
        "DescribeInstances" => ("cvm", "2017-03-12"),
        "DescribeRegions" => ("region", "2022-06-27"),
        "" => {
            return tencent_error(
                "MissingParameter",
                "The request is missing a required parameter `Action`.",
                request_id,
            )
        }
        other => {
            return tencent_error(
                "InvalidAction",
                &format!("The action `{other}` is not supported."),
                request_id,
            )
        }
    };
    let now = Utc::now().timestamp() + s.clock_offset;
    if let Err((code, message)) = verify(s, request, service, now) {
        return tencent_error(code, &message, request_id);
    }
    if header(request, "x-tc-version") != Some(version) {
        return tencent_error(
            "InvalidParameterValue",
            &format!("The value of `Version` must be `{version}` for `{action}`."),
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
    match action.as_str() {
        "DescribeInstances" => describe_instances(s, request, &body, request_id),
        _ => describe_regions(&body, request_id),
    }
}

fn describe_instances(
    s: &mut State,
    request: &Request,
    body: &Value,
    request_id: &str,
) -> ResponseTemplate {
    if header(request, "x-tc-region").is_none_or(str::is_empty) {
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
    let (offset, limit) = match (number("Offset", 0), number("Limit", 20)) {
        (Ok(o), Ok(l)) => (o, l),
        (Err(name), _) | (_, Err(name)) => {
            return tencent_error(
                "InvalidParameter",
                &format!("The value of `{name}` is not a non-negative integer."),
                request_id,
            )
        }
    };
    if limit > MAX_LIMIT {
        return tencent_error(
            "InvalidParameterValue.LimitExceeded",
            &format!("The value of `Limit` must be at most {MAX_LIMIT}, not {limit}."),
            request_id,
        );
    }
    // The instances live in the simulator's region; every other region `DescribeRegions`
    // lists is an empty region of the same account, and a region it does not list is
    // one the API does not serve.
    let region = header(request, "x-tc-region").unwrap_or_default();
    if region != s.region {
        if !REGIONS.iter().any(|(r, _)| *r == region) {
            return tencent_error(
                "UnsupportedRegion",
                &format!("The API does not support the region `{region}`."),
                request_id,
            );
        }
        return ResponseTemplate::new(200).set_body_json(json!({
            "Response": {"TotalCount": 0, "InstanceSet": [], "RequestId": request_id}
        }));
    }
    // `InstanceIds` (up to 100, not with `Filters`): only those still there, paged by
    // `Offset`/`Limit` like the listing, as the CVM API reference describes it.
    if let Some(ids) = body.get("InstanceIds") {
        let Some(ids) = ids
            .as_array()
            .and_then(|a| a.iter().map(Value::as_str).collect::<Option<Vec<&str>>>())
        else {
            return tencent_error(
                "InvalidParameter",
                "The value of `InstanceIds` is not an array of strings.",
                request_id,
            );
        };
        if ids.len() > 100 {
            return tencent_error(
                "InvalidParameterValue.LimitExceeded",
                "The number of `InstanceIds` must be at most 100.",
                request_id,
            );
        }
        if body.get("Filters").is_some() {
            return tencent_error(
                "InvalidParameterCombination",
                "`InstanceIds` and `Filters` cannot be specified at the same time.",
                request_id,
            );
        }
        if let Some(code) = s.lookup_failure {
            return tencent_error(code, "The lookup failed (simulated).", request_id);
        }
        let found: Vec<Value> = s
            .instances
            .iter()
            .filter(|e| ids.iter().any(|id| e.is(id)))
            .map(|e| e.json(&s.region))
            .collect();
        let page: Vec<&Value> = found
            .iter()
            .skip(offset as usize)
            .take(limit as usize)
            .collect();
        return ResponseTemplate::new(200).set_body_json(json!({
            "Response": {"TotalCount": found.len(), "InstanceSet": page, "RequestId": request_id}
        }));
    }
    if s.fail_pages_from
        .is_some_and(|k| offset >= k.saturating_mul(limit))
    {
        return tencent_error(
            "UnauthorizedOperation",
            "The request is not authorized. Please check the CAM policy of the SecretId: it does not allow cvm:DescribeInstances.",
            request_id,
        );
    }
    let total = s.instances.len();
    let start = (offset as usize).min(total);
    let end = start.saturating_add(limit as usize).min(total);
    let mut body = format!(r#"{{"Response":{{"TotalCount":{total},"InstanceSet":["#);
    for (n, entry) in s.instances[start..end].iter().enumerate() {
        if n > 0 {
            body.push(',');
        }
        match entry {
            Entry::Generated(i) => body.push_str(&generate_instance(&s.region, *i).to_string()),
            Entry::Json(v) => body.push_str(&v.to_string()),
        }
    }
    body.push_str(&format!(r#"],"RequestId":{}}}}}"#, Value::from(request_id)));
    s.describe_calls += 1;
    if let Some((call, count)) = s.grow_after {
        if s.describe_calls >= call {
            s.grow_after = None;
            add(s, count);
        }
    }
    let calls = s.describe_calls;
    let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut s.remove_after)
        .into_iter()
        .partition(|(call, _)| *call <= calls);
    s.remove_after = later;
    for id in due.iter().flat_map(|(_, ids)| ids) {
        s.instances.retain(|i| !i.is(id));
    }
    ResponseTemplate::new(200).set_body_raw(body, "application/json")
}

fn describe_regions(body: &Value, request_id: &str) -> ResponseTemplate {
    if body.get("Product").and_then(Value::as_str).is_none() {
        return tencent_error(
            "MissingParameter",
            "The request is missing a required parameter `Product`.",
            request_id,
        );
    }
    let regions: Vec<Value> = REGIONS
        .iter()
        .map(|(region, name)| {
            json!({"Region": region, "RegionName": name, "RegionState": "AVAILABLE",
                   "RegionTypeMC": null, "LocationMC": null, "RegionNameMC": null, "RegionIdMC": null})
        })
        .collect();
    ResponseTemplate::new(200).set_body_json(json!({
        "Response": {"TotalCount": regions.len(), "RegionSet": regions, "RequestId": request_id}
    }))
}

/// An authentication failure: Tencent's error code and message.
pub(crate) type Mismatch = (&'static str, String);

/// The key pair a Tencent Cloud simulator accepts, and its STS token if temporary.
pub(crate) struct Tc3Key<'a> {
    pub(crate) secret_id: &'a str,
    pub(crate) secret_key: &'a str,
    /// The token the key needs (`X-TC-Token`), if any.
    pub(crate) session_token: Option<&'a str>,
    /// Whether that token has expired.
    pub(crate) token_expired: bool,
}

/// Checks the `Authorization` header of a request as Tencent Cloud does.
fn verify(s: &State, request: &Request, service: &str, now: i64) -> Result<(), Mismatch> {
    let key = Tc3Key {
        secret_id: &s.secret_id,
        secret_key: &s.secret_key,
        session_token: s.session_token.as_deref(),
        token_expired: s.token_expired,
    };
    verify_tc3(&key, request, service, now)
}

/// Checks a request's `TC3-HMAC-SHA256` `Authorization` for `service` (the scope's
/// service, e.g. `cvm`, `cdb`) at server time `now` (unix seconds), as Tencent Cloud's
/// API 3.0 gateway does for every product.
pub(crate) fn verify_tc3(
    key: &Tc3Key<'_>,
    request: &Request,
    service: &str,
    now: i64,
) -> Result<(), Mismatch> {
    let authorization = header(request, "authorization").ok_or((
        "AuthFailure.InvalidAuthorization",
        "The Authorization header is missing.".to_owned(),
    ))?;
    let parsed = ParsedAuthorization::parse(authorization).ok_or((
        "AuthFailure.InvalidAuthorization",
        "The Authorization header is not TC3-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...".to_owned(),
    ))?;
    if parsed.secret_id != key.secret_id {
        return Err((
            "AuthFailure.SecretIdNotFound",
            "The SecretId is not found, please ensure that your SecretId is correct.".to_owned(),
        ));
    }
    if let Some(token) = key.session_token {
        if header(request, "x-tc-token") != Some(token) || key.token_expired {
            return Err((
                "AuthFailure.TokenFailure",
                "Token verification failed: the token is invalid or has expired.".to_owned(),
            ));
        }
    }
    let timestamp: i64 = header(request, "x-tc-timestamp")
        .and_then(|t| t.parse().ok())
        .ok_or((
            "MissingParameter",
            "The request is missing a required parameter `Timestamp`.".to_owned(),
        ))?;
    if (now - timestamp).abs() > MAX_SKEW_SECONDS {
        return Err((
            "AuthFailure.SignatureExpire",
            format!(
                "Signature expired. Timestamp {timestamp} is more than {MAX_SKEW_SECONDS} s from server time {now}."
            ),
        ));
    }
    let signed: Vec<&str> = parsed.signed_headers.split(';').collect();
    for required in ["content-type", "host"] {
        if !signed.contains(&required) {
            return Err((
                "AuthFailure.SignatureFailure",
                format!("The header `{required}` must be signed."),
            ));
        }
    }
    let content_type = header(request, "content-type").unwrap_or_default();
    let mime = content_type.split(';').next().unwrap_or_default().trim();
    if !mime.eq_ignore_ascii_case("application/json") {
        return Err((
            "InvalidParameter",
            format!("Content-Type {content_type:?} is not supported; use application/json."),
        ));
    }
    let date = DateTime::<Utc>::from_timestamp(timestamp, 0)
        .map(|t| t.date_naive().to_string())
        .unwrap_or_default();
    let expected_scope = format!("{date}/{service}/tc3_request");
    if parsed.scope != expected_scope {
        return Err((
            "AuthFailure.SignatureFailure",
            format!(
                "The credential scope `{}` does not match `{expected_scope}`.",
                parsed.scope
            ),
        ));
    }
    let expected = expected_signature(key.secret_key, request, &parsed, timestamp, &date, service)?;
    if expected != parsed.signature {
        return Err((
            "AuthFailure.SignatureFailure",
            "The provided credentials could not be validated. Please check your signature is correct."
                .to_owned(),
        ));
    }
    Ok(())
}

/// The parts of a `TC3-HMAC-SHA256` `Authorization` header.
pub(crate) struct ParsedAuthorization<'a> {
    pub(crate) secret_id: &'a str,
    pub(crate) scope: &'a str,
    pub(crate) signed_headers: &'a str,
    pub(crate) signature: &'a str,
}

impl<'a> ParsedAuthorization<'a> {
    fn parse(value: &'a str) -> Option<Self> {
        let rest = value.strip_prefix("TC3-HMAC-SHA256 ")?;
        let mut credential = None;
        let mut signed_headers = None;
        let mut signature = None;
        for part in rest.split(',').map(str::trim) {
            let (key, val) = part.split_once('=')?;
            match key {
                "Credential" => credential = Some(val),
                "SignedHeaders" => signed_headers = Some(val),
                "Signature" => signature = Some(val),
                _ => return None,
            }
        }
        let (secret_id, scope) = credential?.split_once('/')?;
        Some(ParsedAuthorization {
            secret_id,
            scope,
            signed_headers: signed_headers?,
            signature: signature?,
        })
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(bytes);
    hex::encode(hasher.finalize())
}

fn mac(key: &[u8], message: &str) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    m.update(message.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// The signature the server expects, from the request as received.
pub(crate) fn expected_signature(
    secret_key: &str,
    request: &Request,
    parsed: &ParsedAuthorization<'_>,
    timestamp: i64,
    date: &str,
    service: &str,
) -> Result<String, Mismatch> {
    let mut canonical_headers = String::new();
    for name in parsed.signed_headers.split(';') {
        if name.is_empty() || name != name.to_ascii_lowercase() {
            return Err((
                "AuthFailure.SignatureFailure",
                format!("SignedHeaders must be lower-case names, not `{name}`."),
            ));
        }
        let value = header(request, name).ok_or((
            "AuthFailure.SignatureFailure",
            format!("The signed header `{name}` was not sent."),
        ))?;
        canonical_headers += &format!("{name}:{}\n", value.trim().to_lowercase());
    }
    let canonical_request = [
        request.method.as_str(),
        "/",
        request.url.query().unwrap_or_default(),
        &canonical_headers,
        parsed.signed_headers,
        &hex_sha256(&request.body),
    ]
    .join("\n");
    let string_to_sign = format!(
        "TC3-HMAC-SHA256\n{timestamp}\n{}\n{}",
        parsed.scope,
        hex_sha256(canonical_request.as_bytes())
    );
    let mut key = format!("TC3{secret_key}").into_bytes();
    for part in [date, service, "tc3_request"] {
        key = mac(&key, part);
    }
    Ok(hex::encode(mac(&key, &string_to_sign)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_instances_cover_the_documented_shape() {
        let all: Vec<Value> = (0..30).map(|i| generate_instance(REGION, i)).collect();
        for state in INSTANCE_STATES {
            assert!(all.iter().any(|i| i["InstanceState"] == *state), "{state}");
        }
        assert!(all.iter().any(|i| i["PublicIpAddresses"].is_null()));
        assert!(all.iter().any(|i| i["ExpiredTime"].is_null()));
        assert!(all
            .iter()
            .any(|i| i["CreatedTime"].as_str().unwrap().ends_with('Z')));
        assert!(all
            .iter()
            .any(|i| i["CreatedTime"].as_str().unwrap().ends_with("+00:00")));
        assert!(all
            .iter()
            .any(|i| i["InstanceName"].as_str().unwrap().starts_with("测试")));
        assert!(all.iter().any(|i| i["GPUInfo"]["GPUCount"] == 0.25));
        for i in &all {
            let postpaid = i["InstanceChargeType"] != "PREPAID";
            assert_eq!(postpaid, i["ExpiredTime"].is_null());
            assert!(i["Memory"].as_u64().unwrap() <= 32, "GiB, not MiB");
        }
    }

    #[test]
    fn authorization_headers_parse() {
        let p = ParsedAuthorization::parse(
            "TC3-HMAC-SHA256 Credential=AKID/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=abc",
        )
        .unwrap();
        assert_eq!(
            (p.secret_id, p.scope, p.signed_headers, p.signature),
            (
                "AKID",
                "2019-02-25/cvm/tc3_request",
                "content-type;host",
                "abc"
            )
        );
        assert!(ParsedAuthorization::parse("HMAC-SHA1 x").is_none());
        assert!(ParsedAuthorization::parse("TC3-HMAC-SHA256 Credential=AKID").is_none());
    }

    /// The server side reproduces Tencent's published example (signature v3 page).
    #[test]
    fn server_side_signature_matches_official_example() {
        let mut headers = wiremock::http::HeaderMap::new();
        headers.insert(
            "content-type",
            "application/json; charset=utf-8".parse().unwrap(),
        );
        headers.insert("host", "cvm.tencentcloudapi.com".parse().unwrap());
        let request = Request {
            url: "https://cvm.tencentcloudapi.com/".parse().unwrap(),
            method: wiremock::http::Method::POST,
            headers,
            body: br#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#.to_vec(),
        };
        let parsed = ParsedAuthorization {
            secret_id: "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
            scope: "2019-02-25/cvm/tc3_request",
            signed_headers: "content-type;host",
            signature: "",
        };
        let signature = expected_signature(
            "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
            &request,
            &parsed,
            1_551_113_065,
            "2019-02-25",
            "cvm",
        )
        .unwrap();
        assert_eq!(
            signature,
            "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
    }
}
