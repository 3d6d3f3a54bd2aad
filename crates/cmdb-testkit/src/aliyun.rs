//! A simulated Alibaba Cloud ECS API on wiremock.
//!
//! [`SimulatedAliyun`] answers `DescribeInstances` and `DescribeRegions` (RPC style: `POST /`
//! with the parameters in the query) like the real service: it verifies every request's
//! `ACS3-HMAC-SHA256` signature with its own implementation (this crate never depends on
//! the provider it tests), rejects a date more than 15 minutes off and a reused nonce,
//! and answers errors with the service's codes in its JSON envelope. It serves generated
//! hosts in the real JSON shape, `NextToken`-paged, and can throttle, fail, slow down and
//! change its hosts between runs.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use cmdb_testkit::aliyun::SimulatedAliyun;
//!
//! let sim = SimulatedAliyun::start("cn-hangzhou", 250).await;
//! assert_eq!(sim.host_count(), 250);
//! sim.remove_host(&sim.instance_id(3));
//! assert_eq!(sim.host_count(), 249);
//! assert!(sim.uri().starts_with("http://"));
//! # });
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The access key id the simulator accepts unless told otherwise.
pub const DEFAULT_ACCESS_KEY_ID: &str = "LTAI5tSimulatedKey0001";
/// The access key secret the simulator accepts unless told otherwise.
pub const DEFAULT_ACCESS_KEY_SECRET: &str = "simulated-access-key-secret";

/// How far `x-acs-date` may be from the simulator's clock.
const MAX_SKEW_SECONDS: i64 = 15 * 60;

/// One host of the listing. Generated ones are kept as their number and rendered when a
/// page is served, so a million-host simulator costs 16 bytes a host, not a parsed JSON
/// tree each; a host becomes JSON once a test changes it.
enum Entry {
    Generated(u64),
    Json(Box<Value>),
}

impl Entry {
    fn is(&self, id: &str) -> bool {
        match self {
            Entry::Generated(i) => instance_id(*i) == id,
            Entry::Json(v) => v["InstanceId"] == id,
        }
    }

    fn json(&self, region: &str) -> Value {
        match self {
            Entry::Generated(i) => instance_json(region, *i),
            Entry::Json(v) => (**v).clone(),
        }
    }
}

struct State {
    region: String,
    access_key_id: String,
    access_key_secret: String,
    hosts: Vec<Entry>,
    next_index: u64,
    nonces: HashSet<String>,
    tokens: HashMap<String, usize>,
    accepted: u64,
    received: u64,
    throttle_every: u64,
    fail_every: Option<(u64, u16)>,
    failures: Vec<u16>,
    latency: Option<Duration>,
    fail_pages_from: Option<u64>,
    /// Page (0-based) -> the statuses its next requests answer with.
    page_failures: HashMap<u64, Vec<u16>>,
    answered: Vec<String>,
    request_serial: u64,
    /// The instances of the DescribeInstances page being answered, as JSON text.
    page_text: Option<String>,
    /// Status by-id lookups (`InstanceIds`) answer with, when set.
    lookup_failure: Option<u16>,
    /// `DescribeInstances` listing requests answered (by-id lookups not counted).
    listings: u64,
    /// Changes to apply right after the n-th listing request is answered.
    changes: Vec<(u64, Change)>,
    /// The STS security token the access key needs, when it is a temporary one.
    security_token: Option<String>,
    /// Whether that token has expired.
    token_expired: bool,
}

/// A change of the simulated inventory, made while a listing runs.
type Change = Box<dyn FnOnce(&mut State) + Send>;

/// A simulated ECS endpoint. See the [module docs](self).
pub struct SimulatedAliyun {
    server: MockServer,
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for SimulatedAliyun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = lock(&self.state);
        f.debug_struct("SimulatedAliyun")
            .field("uri", &self.server.uri())
            .field("region", &s.region)
            .field("hosts", &s.hosts.len())
            .field("access_key_secret", &"******")
            .finish_non_exhaustive()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl SimulatedAliyun {
    /// Starts a simulator of `region` holding `hosts` generated hosts, accepting
    /// [`DEFAULT_ACCESS_KEY_ID`] / [`DEFAULT_ACCESS_KEY_SECRET`].
    pub async fn start(region: &str, hosts: u64) -> SimulatedAliyun {
        let state = Arc::new(Mutex::new(State {
            region: region.to_owned(),
            access_key_id: DEFAULT_ACCESS_KEY_ID.to_owned(),
            access_key_secret: DEFAULT_ACCESS_KEY_SECRET.to_owned(),
            hosts: (0..hosts).map(Entry::Generated).collect(),
            next_index: hosts,
            nonces: HashSet::new(),
            tokens: HashMap::new(),
            accepted: 0,
            received: 0,
            throttle_every: 0,
            fail_every: None,
            failures: Vec::new(),
            latency: None,
            fail_pages_from: None,
            page_failures: HashMap::new(),
            answered: Vec::new(),
            request_serial: 0,
            page_text: None,
            lookup_failure: None,
            listings: 0,
            changes: Vec::new(),
            security_token: None,
            token_expired: false,
        }));
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/"))
            .respond_with(Responder {
                state: Arc::clone(&state),
            })
            .mount(&server)
            .await;
        SimulatedAliyun { server, state }
    }

    /// The base URL, e.g. `http://127.0.0.1:PORT`: a secret's endpoint override.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// The region simulated.
    pub fn region(&self) -> String {
        lock(&self.state).region.clone()
    }

    /// The access key id accepted.
    pub fn access_key_id(&self) -> String {
        lock(&self.state).access_key_id.clone()
    }

    /// The access key secret accepted.
    pub fn access_key_secret(&self) -> String {
        lock(&self.state).access_key_secret.clone()
    }

    /// Accepts another key pair (and no longer the previous one).
    pub fn set_credentials(&self, access_key_id: &str, access_key_secret: &str) {
        let mut s = lock(&self.state);
        s.access_key_id = access_key_id.to_owned();
        s.access_key_secret = access_key_secret.to_owned();
    }

    /// Makes the access key a temporary (STS) one: every request must then carry
    /// `token` in `x-acs-security-token`, signed (named in `SignedHeaders`), as the
    /// service requires of STS credentials; `None` goes back to a permanent key.
    pub fn set_security_token(&self, token: Option<&str>) {
        let mut s = lock(&self.state);
        s.security_token = token.map(str::to_owned);
        s.token_expired = false;
    }

    /// Expires the security token: requests then answer `InvalidSecurityToken.Expired`.
    pub fn expire_security_token(&self) {
        lock(&self.state).token_expired = true;
    }

    /// The instance id of generated host number `i`.
    pub fn instance_id(&self, i: u64) -> String {
        instance_id(i)
    }

    /// The number of hosts listed now.
    pub fn host_count(&self) -> u64 {
        lock(&self.state).hosts.len() as u64
    }

    /// Removes a host; whether it was there.
    pub fn remove_host(&self, instance_id: &str) -> bool {
        let mut s = lock(&self.state);
        let before = s.hosts.len();
        s.hosts.retain(|h| !h.is(instance_id));
        s.hosts.len() != before
    }

    /// Adds `n` new generated hosts at the end of the listing; answers their ids.
    pub fn add_hosts(&self, n: u64) -> Vec<String> {
        let mut s = lock(&self.state);
        let start = s.next_index;
        s.next_index += n;
        (start..start + n)
            .map(|i| {
                s.hosts.push(Entry::Generated(i));
                instance_id(i)
            })
            .collect()
    }

    /// Removes `instance_ids` right after the `n`-th `DescribeInstances` listing request
    /// (counted from the simulator's start, by-id lookups not counted) is answered: hosts
    /// deleted in the cloud while a listing runs.
    pub fn remove_hosts_after(&self, n: u64, instance_ids: Vec<String>) {
        lock(&self.state).changes.push((
            n,
            Box::new(move |s: &mut State| {
                s.hosts.retain(|h| !instance_ids.iter().any(|id| h.is(id)));
            }),
        ));
    }

    /// Adds `count` new hosts at the front of the listing right after the `n`-th
    /// listing request is answered (as [`remove_hosts_after`](Self::remove_hosts_after)
    /// counts); answers their ids. The front, so that every later offset shifts.
    pub fn add_hosts_after(&self, n: u64, count: u64) -> Vec<String> {
        let mut s = lock(&self.state);
        let start = s.next_index;
        s.next_index += count;
        s.changes.push((
            n,
            Box::new(move |s: &mut State| {
                for i in (start..start + count).rev() {
                    s.hosts.insert(0, Entry::Generated(i));
                }
            }),
        ));
        (start..start + count).map(instance_id).collect()
    }

    /// Answers every by-id lookup (`DescribeInstances` with `InstanceIds`) with `status`
    /// (as [`fail_next`](Self::fail_next) does); `None` stops it.
    pub fn fail_lookups(&self, status: Option<u16>) {
        lock(&self.state).lookup_failure = status;
    }

    /// `DescribeInstances` listing requests answered so far (by-id lookups not counted).
    pub fn listings(&self) -> u64 {
        lock(&self.state).listings
    }

    /// Changes a host's JSON in place (e.g. `h["Status"] = "Stopped".into()`); whether it
    /// was there.
    pub fn update_host(&self, instance_id: &str, f: impl FnOnce(&mut Value)) -> bool {
        let mut s = lock(&self.state);
        let region = s.region.clone();
        match s.hosts.iter_mut().find(|h| h.is(instance_id)) {
            Some(entry) => {
                let mut h = entry.json(&region);
                f(&mut h);
                *entry = Entry::Json(Box::new(h));
                true
            }
            None => false,
        }
    }

    /// Answers every `k`-th authenticated request with `Throttling.User` (0: never).
    pub fn throttle_every(&self, k: u64) {
        lock(&self.state).throttle_every = k;
    }

    /// Answers the next `n` authenticated requests with `status`: 503 is
    /// `ServiceUnavailable`, 500 `InternalError`, others `InternalError` with that status.
    pub fn fail_next(&self, n: usize, status: u16) {
        lock(&self.state)
            .failures
            .extend(std::iter::repeat_n(status, n));
    }

    /// Answers every `k`-th authenticated request with `status` (as [`fail_next`](Self::fail_next)
    /// does), until called again; `k` = 0 stops it. With [`throttle_every`](Self::throttle_every)
    /// it makes a steady mix of faults, e.g. 20% throttled and 5% 5xx.
    pub fn fail_every(&self, k: u64, status: u16) {
        lock(&self.state).fail_every = (k > 0).then_some((k, status));
    }

    /// Answers the next `n` requests for `DescribeInstances` page `k` (0-based, as in
    /// [`fail_pages_from`](Self::fail_pages_from)) with `status`, as
    /// [`fail_next`](Self::fail_next) does: unlike `fail_next`, it holds however far ahead
    /// of the consumer the client asks for pages.
    pub fn fail_page(&self, k: u64, n: usize, status: u16) {
        lock(&self.state)
            .page_failures
            .entry(k)
            .or_default()
            .extend(std::iter::repeat_n(status, n));
    }

    /// Refuses for good every `DescribeInstances` page from page `k` on (0-based: the
    /// `k`-th page reached through `NextToken`, i.e. offset `k * MaxResults` and beyond)
    /// with HTTP 403 `Forbidden.RAM`, a permission error the client must not retry;
    /// earlier pages are served normally. `None` clears it.
    pub fn fail_pages_from(&self, k: Option<u64>) {
        lock(&self.state).fail_pages_from = k;
    }

    /// Answers every request `latency` after the simulator began to handle it (real
    /// time): building the answer is part of the latency, as it is for a vendor.
    pub fn set_latency(&self, latency: Option<Duration>) {
        lock(&self.state).latency = latency;
    }

    /// Requests received, rejected ones included.
    pub fn requests(&self) -> u64 {
        lock(&self.state).received
    }

    /// The answer of every request so far: the action for a success, the error code
    /// otherwise, in order.
    pub fn answers(&self) -> Vec<String> {
        lock(&self.state).answered.clone()
    }
}

fn instance_id(i: u64) -> String {
    format!("i-sim{i:08}")
}

/// What generated host `i` is.
struct Traits {
    status: &'static str,
    a: u64,
    b: u64,
    classic: bool,
    nic_only: bool,
    prepaid: bool,
    spot: bool,
    windows: bool,
    created: String,
    expired: String,
}

impl Traits {
    fn of(i: u64) -> Traits {
        const STATUSES: [&str; 6] = [
            "Running", "Running", "Stopped", "Pending", "Starting", "Stopping",
        ];
        // Minute precision, as the service often answers.
        let minute = |day: u64| {
            format!(
                "2024-0{}-{:02}T0{}:{:02}Z",
                1 + day % 9,
                1 + day % 28,
                day % 10,
                day % 60
            )
        };
        let classic = i % 5 == 4;
        let prepaid = i % 3 == 2;
        Traits {
            status: STATUSES[(i % STATUSES.len() as u64) as usize],
            a: (i >> 8) & 255,
            b: i & 255,
            classic,
            nic_only: !classic && i % 7 == 6,
            prepaid,
            spot: !prepaid && i % 10 == 7,
            windows: i % 8 == 7,
            created: if i % 2 == 0 {
                minute(i)
            } else {
                format!(
                    "2023-1{}-{:02}T12:{:02}:{:02}Z",
                    i % 3,
                    1 + i % 28,
                    i % 60,
                    (i * 7) % 60
                )
            },
            // Pay-as-you-go hosts carry the service's 2099 sentinel.
            expired: if prepaid {
                minute(i + 3).replace("2024-", "2027-")
            } else {
                "2099-12-31T15:59Z".to_owned()
            },
        }
    }
}

/// Generated host number `i`, in the real JSON shape, with the service's quirks spread
/// over the hosts: classic and VPC networks, NIC-only addresses, empty EIP objects,
/// minute- and second-precision times, the 2099 sentinel, spot, locks, GPUs, every status,
/// non-ASCII names and tags.
pub fn instance_json(region: &str, i: u64) -> Value {
    serde_json::to_value(SimInstance::of(region, i)).unwrap_or_default()
}

/// One generated instance, serialized as `DescribeInstances` spells it (the members the
/// documentation lists, nested objects as JSON).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SimInstance {
    instance_id: String,
    instance_name: String,
    description: String,
    host_name: String,
    region_id: String,
    zone_id: String,
    status: &'static str,
    instance_type: &'static str,
    instance_type_family: &'static str,
    cpu: u32,
    memory: u32,
    #[serde(rename = "GPUAmount")]
    gpu_amount: u32,
    #[serde(rename = "GPUSpec")]
    gpu_spec: &'static str,
    #[serde(rename = "OSType")]
    os_type: &'static str,
    #[serde(rename = "OSName")]
    os_name: &'static str,
    #[serde(rename = "OSNameEn")]
    os_name_en: &'static str,
    image_id: &'static str,
    instance_network_type: &'static str,
    public_ip_address: Value,
    inner_ip_address: Value,
    eip_address: Value,
    vpc_attributes: Value,
    network_interfaces: Value,
    security_group_ids: Value,
    tags: Value,
    operation_locks: Value,
    instance_charge_type: &'static str,
    spot_strategy: &'static str,
    spot_price_limit: u32,
    internet_charge_type: &'static str,
    creation_time: String,
    start_time: String,
    expired_time: String,
    auto_release_time: &'static str,
    key_pair_name: &'static str,
    serial_number: String,
    resource_group_id: &'static str,
    deletion_protection: bool,
    io_optimized: bool,
    device_available: bool,
    recyclable: bool,
    stopped_mode: &'static str,
    metadata_options: Value,
    cpu_options: Value,
    dedicated_host_attribute: Value,
    ecs_capacity_reservation_attr: Value,
}

impl SimInstance {
    fn of(region: &str, i: u64) -> SimInstance {
        let Traits {
            status,
            a,
            b,
            classic,
            nic_only,
            prepaid,
            spot,
            windows,
            created,
            expired,
        } = Traits::of(i);
        let private = format!("172.16.{a}.{b}");
        let gpu = i % 17 == 3;
        let mut tags = vec![
            json!({"TagKey": "env", "TagValue": if i % 2 == 0 { "prod" } else { "test" }}),
            json!({"TagKey": "app", "TagValue": format!("app-{}", i % 5)}),
        ];
        if i % 4 == 0 {
            tags.push(json!({"TagKey": "负责人", "TagValue": "张三"}));
        }
        SimInstance {
            instance_id: instance_id(i),
            instance_name: if i % 3 == 0 {
                format!("网站-{i}")
            } else {
                format!("web-{i}")
            },
            description: if i % 2 == 0 {
                String::new()
            } else {
                format!("simulated host {i}")
            },
            host_name: format!("iZsim{i:08}Z"),
            region_id: region.to_owned(),
            zone_id: format!("{region}-{}", ["a", "b", "h"][(i % 3) as usize]),
            status,
            instance_type: if gpu {
                "ecs.gn7i-c8g1.2xlarge"
            } else {
                "ecs.g7.large"
            },
            instance_type_family: if gpu { "ecs.gn7i" } else { "ecs.g7" },
            cpu: if gpu { 8 } else { 2 },
            memory: if gpu { 30720 } else { 8192 },
            gpu_amount: u32::from(gpu),
            gpu_spec: if gpu { "NVIDIA A10" } else { "" },
            os_type: if windows { "windows" } else { "linux" },
            os_name: if windows {
                "Windows Server  2022 数据中心版 64位中文版"
            } else {
                "Alibaba Cloud Linux  3.2104 LTS 64位"
            },
            os_name_en: if windows {
                "Windows Server  2022 Data Center Edition 64bit Chinese Edition"
            } else {
                "Alibaba Cloud Linux  3.2104 LTS 64 bit"
            },
            image_id: if windows {
                "win2022_21H2_x64_dtc_zh-cn_40G_alibase_20240101.vhd"
            } else {
                "aliyun_3_x64_20G_alibase_20240101.vhd"
            },
            instance_network_type: if classic { "classic" } else { "vpc" },
            public_ip_address: json!({"IpAddress": if i % 3 == 0 { vec![format!("121.40.{a}.{b}")] } else { vec![] }}),
            inner_ip_address: json!({"IpAddress": if classic { vec![format!("10.80.{a}.{b}")] } else { vec![] }}),
            eip_address: if i % 4 == 1 {
                json!({"IpAddress": format!("47.96.{a}.{b}"), "AllocationId": format!("eip-sim{i:06}"), "InternetChargeType": "PayByTraffic"})
            } else {
                json!({"IpAddress": "", "AllocationId": "", "InternetChargeType": ""})
            },
            vpc_attributes: if classic {
                json!({"VpcId": "", "VSwitchId": "", "NatIpAddress": "", "PrivateIpAddress": {"IpAddress": []}})
            } else {
                json!({
                    "VpcId": format!("vpc-sim{}", i % 3),
                    "VSwitchId": format!("vsw-sim{}", i % 6),
                    "NatIpAddress": "",
                    "PrivateIpAddress": {"IpAddress": if nic_only { vec![] } else { vec![private.clone()] }}
                })
            },
            network_interfaces: json!({"NetworkInterface": if classic { vec![] } else { vec![json!({
                "Type": "Primary",
                "PrimaryIpAddress": private,
                "NetworkInterfaceId": format!("eni-sim{i:06}"),
                "MacAddress": format!("00:16:3e:00:{a:02x}:{b:02x}"),
            })] }}),
            security_group_ids: json!({"SecurityGroupId": [format!("sg-sim{}", i % 4)]}),
            tags: json!({"Tag": tags}),
            operation_locks: json!({"LockReason": if i % 13 == 5 { vec![json!({"LockReason": "financial"})] } else { vec![] }}),
            instance_charge_type: if prepaid { "PrePaid" } else { "PostPaid" },
            spot_strategy: if spot { "SpotAsPriceGo" } else { "NoSpot" },
            spot_price_limit: 0,
            internet_charge_type: "PayByTraffic",
            creation_time: created.clone(),
            start_time: created,
            expired_time: expired,
            auto_release_time: "",
            key_pair_name: if i % 2 == 0 { "ops-key" } else { "" },
            serial_number: format!("5e0c{i:08x}-1a2b-4c3d-8e9f-00163e{i:06x}"),
            resource_group_id: "",
            deletion_protection: false,
            io_optimized: true,
            device_available: true,
            recyclable: false,
            stopped_mode: if status == "Stopped" {
                "KeepCharging"
            } else {
                "Not-applicable"
            },
            metadata_options: json!({"HttpTokens": "optional", "HttpEndpoint": "enabled"}),
            cpu_options: json!({"CoreCount": 1, "ThreadsPerCore": 2, "Numa": ""}),
            dedicated_host_attribute: json!({"DedicatedHostId": "", "DedicatedHostName": ""}),
            ecs_capacity_reservation_attr: json!({"CapacityReservationPreference": "", "CapacityReservationId": ""}),
        }
    }
}

struct Responder {
    state: Arc<Mutex<State>>,
}

/// An answer: status, body, extra headers.
pub(crate) type Answer = (u16, Value, Vec<(&'static str, String)>);

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let started = std::time::Instant::now();
        let mut s = lock(&self.state);
        s.received += 1;
        s.request_serial += 1;
        let request_id = format!(
            "5E0C{:04X}-SIMU-4A1B-9C2D-{:012X}",
            s.request_serial % 0xFFFF,
            s.request_serial
        );
        let (status, mut body, headers) = match handle(&mut s, request) {
            Ok(body) => (200, body, Vec::new()),
            Err(answer) => answer,
        };
        let label = body
            .get("Code")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| header(request, "x-acs-action").unwrap_or_default());
        s.answered.push(label);
        body["RequestId"] = Value::String(request_id.clone());
        if status != 200 {
            body["HostId"] = Value::String("ecs.aliyuncs.com".into());
            body["Recommend"] = Value::String(format!(
                "https://api.aliyun.com/troubleshoot?q={}&product=Ecs&requestId={request_id}",
                body["Code"].as_str().unwrap_or_default()
            ));
        }
        let mut text = body.to_string();
        if let Some(page) = s.page_text.take() {
            // The instances of a DescribeInstances page, written as text, go where the
            // answer left them empty.
            const EMPTY: &str = r#""Instance":[]"#;
            if let Some(at) = text.find(EMPTY) {
                let end = at + EMPTY.len() - 1;
                let mut full = String::with_capacity(text.len() + page.len());
                full.push_str(&text[..end]);
                full.push_str(&page);
                full.push_str(&text[end..]);
                text = full;
            }
        }
        let mut template = ResponseTemplate::new(status)
            .insert_header("x-acs-request-id", request_id.as_str())
            .set_body_raw(text, "application/json");
        for (name, value) in headers {
            template = template.insert_header(name, value.as_str());
        }
        crate::with_latency(template, s.latency, started)
    }
}

pub(crate) fn header(request: &Request, name: &str) -> Option<String> {
    request
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
}

pub(crate) fn error(status: u16, code: &str, message: impl Into<String>) -> Answer {
    (
        status,
        json!({"Code": code, "Message": message.into()}),
        Vec::new(),
    )
}

/// A 5xx answer: 503 is `ServiceUnavailable`, anything else `InternalError`.
pub(crate) fn server_error(status: u16) -> Answer {
    match status {
        503 => error(
            503,
            "ServiceUnavailable",
            "The request has failed due to a temporary failure of the server.",
        ),
        _ => error(
            status,
            "InternalError",
            "The request processing has failed due to some unknown error.",
        ),
    }
}

fn handle(s: &mut State, request: &Request) -> Result<Value, Answer> {
    verify_signature(s, request)?;
    s.accepted += 1;
    let periodic = s
        .fail_every
        .filter(|(k, _)| s.accepted % k == 0)
        .map(|(_, status)| status);
    if periodic.is_some() || !s.failures.is_empty() {
        let status = periodic.unwrap_or_else(|| s.failures.remove(0));
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
    let query: HashMap<String, String> = request.url.query_pairs().into_owned().collect();
    match header(request, "x-acs-action").as_deref() {
        Some("DescribeInstances") => describe_instances(s, &query),
        Some("DescribeRegions") => Ok(describe_regions(s)),
        Some(other) => Err(error(404, "InvalidAction.NotFound", format!("Specified api {other} is not found, please check your url and method."))),
        None => Err(error(400, "MissingParameter", "The input parameter \"Action\" that is mandatory for processing this request is not supplied.")),
    }
}

fn describe_instances(s: &mut State, query: &HashMap<String, String>) -> Result<Value, Answer> {
    match query.get("RegionId") {
        None => return Err(error(400, "MissingParameter", "The input parameter \"RegionId\" that is mandatory for processing this request is not supplied.")),
        Some(r) if *r != s.region => return Err(error(404, "InvalidRegionId.NotFound", "The specified RegionId does not exist.")),
        Some(_) => {}
    }
    let max = match query.get("MaxResults").map(|m| m.parse::<usize>()) {
        None => 10,
        Some(Ok(m)) if (1..=100).contains(&m) => m,
        Some(_) => {
            return Err(error(
                400,
                "InvalidParameter",
                "The specified parameter \"MaxResults\" is not valid.",
            ))
        }
    };
    // `InstanceIds`: a JSON array of up to 100 ids; only those still there are answered
    // (one page, no NextToken), as the ECS API reference describes the filter.
    if let Some(ids) = query.get("InstanceIds") {
        let ids: Vec<String> = match serde_json::from_str(ids) {
            Ok(ids) => ids,
            Err(_) => {
                return Err(error(
                    400,
                    "InvalidInstanceIds.Malformed",
                    "The specified parameter \"InstanceIds\" is not valid.",
                ))
            }
        };
        if ids.len() > 100 {
            return Err(error(
                400,
                "InvalidInstanceIds.ValueNotSupported",
                "The specified parameter \"InstanceIds\" exceeds 100 values.",
            ));
        }
        if let Some(status) = s.lookup_failure {
            return Err(server_error(status));
        }
        let region = s.region.clone();
        let found: Vec<Value> = s
            .hosts
            .iter()
            .filter(|h| ids.iter().any(|id| h.is(id)))
            .map(|h| h.json(&region))
            .collect();
        return Ok(json!({
            "TotalCount": found.len(),
            "PageSize": max,
            "NextToken": "",
            "Instances": {"Instance": found},
        }));
    }
    s.listings += 1;
    let offset = match query.get("NextToken").filter(|t| !t.is_empty()) {
        None => 0,
        Some(token) => match s.tokens.get(token) {
            Some(offset) => *offset,
            None => {
                return Err(error(
                    400,
                    "InvalidParameter.NextToken",
                    "The specified parameter \"NextToken\" is not valid.",
                ))
            }
        },
    };
    if let Some(statuses) = s.page_failures.get_mut(&((offset / max) as u64)) {
        if !statuses.is_empty() {
            return Err(server_error(statuses.remove(0)));
        }
    }
    if s.fail_pages_from
        .is_some_and(|k| (offset / max) as u64 >= k)
    {
        return Err(error(
            403,
            "Forbidden.RAM",
            "User not authorized to operate on the specified resource, or this API doesn't support RAM.",
        ));
    }
    let end = (offset + max).min(s.hosts.len());
    let mut page = String::with_capacity(1600 * (end - offset.min(end)));
    for (n, host) in s
        .hosts
        .get(offset..end)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if n > 0 {
            page.push(',');
        }
        match host {
            Entry::Generated(i) => page.push_str(
                &serde_json::to_string(&SimInstance::of(&s.region, *i)).unwrap_or_default(),
            ),
            Entry::Json(v) => page.push_str(&v.to_string()),
        }
    }
    let next = if end < s.hosts.len() {
        let token = hex::encode(&Sha256::digest(format!("{}:{end}", s.region))[..16]);
        s.tokens.insert(token.clone(), end);
        token
    } else {
        String::new()
    };
    s.page_text = Some(page);
    let done = s.listings;
    let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut s.changes)
        .into_iter()
        .partition(|(n, _)| *n == done);
    s.changes = later;
    let total = s.hosts.len();
    for (_, change) in due {
        change(s);
    }
    Ok(json!({
        "TotalCount": total,
        "PageSize": max,
        "NextToken": next,
        "Instances": {"Instance": []},
    }))
}

fn describe_regions(s: &State) -> Value {
    let regions: Vec<Value> = [s.region.as_str(), "cn-beijing", "ap-southeast-1"]
        .iter()
        .enumerate()
        .filter(|(i, r)| *i == 0 || **r != s.region)
        .map(|(_, r)| json!({"RegionId": r, "RegionEndpoint": format!("ecs.{r}.aliyuncs.com"), "LocalName": r}))
        .collect();
    json!({"Regions": {"Region": regions}})
}

/// RFC 3986 encoding as the service canonicalizes it, written independently of the
/// provider: form-encode, then undo form encoding's differences.
pub(crate) fn rfc3986(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
        .replace('*', "%2A")
        .replace("%7E", "~")
}

/// Checks the request's `ACS3-HMAC-SHA256` signature, date and nonce like the service.
fn verify_signature(s: &mut State, request: &Request) -> Result<(), Answer> {
    let key = AcsKey {
        access_key_id: &s.access_key_id,
        access_key_secret: &s.access_key_secret,
        security_token: s.security_token.as_deref(),
        token_expired: s.token_expired,
    };
    verify_acs3(&key, &mut s.nonces, request)
}

/// The key pair an Alibaba Cloud simulator accepts, and its STS token if temporary.
pub(crate) struct AcsKey<'a> {
    pub(crate) access_key_id: &'a str,
    pub(crate) access_key_secret: &'a str,
    /// The security token the key needs (`x-acs-security-token`, signed), if any.
    pub(crate) security_token: Option<&'a str>,
    /// Whether that token has expired.
    pub(crate) token_expired: bool,
}

/// Checks a request's `ACS3-HMAC-SHA256` signature, date and nonce (against the nonces
/// already used, to which it adds this one) as Alibaba Cloud's RPC gateway does, for any
/// product (ECS, RDS); answers the gateway's error when it fails.
pub(crate) fn verify_acs3(
    key: &AcsKey<'_>,
    nonces: &mut HashSet<String>,
    request: &Request,
) -> Result<(), Answer> {
    let Some(authorization) = header(request, "authorization") else {
        return Err(error(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards: Authorization header is missing."));
    };
    let Some(fields) = authorization.strip_prefix("ACS3-HMAC-SHA256 ") else {
        return Err(error(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards: unsupported signature algorithm."));
    };
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in fields.split(',') {
        match part.trim().split_once('=') {
            Some(("Credential", v)) => credential = Some(v.to_owned()),
            Some(("SignedHeaders", v)) => signed_headers = Some(v.to_owned()),
            Some(("Signature", v)) => signature = Some(v.to_owned()),
            _ => {}
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(error(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards: Credential, SignedHeaders and Signature are required."));
    };
    if credential != key.access_key_id {
        return Err(error(
            404,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.",
        ));
    }
    let names: Vec<&str> = signed_headers.split(';').collect();
    if let Some(token) = key.security_token {
        match header(request, "x-acs-security-token") {
            None => {
                return Err(error(
                    400,
                    "InvalidSecurityToken.MismatchWithAccessKey",
                    "Specified SecurityToken mismatch with the AccessKey.",
                ))
            }
            Some(_) if !names.contains(&"x-acs-security-token") => {
                return Err(error(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards: header x-acs-security-token must be signed."));
            }
            Some(sent) if sent != *token => {
                return Err(error(
                    400,
                    "InvalidSecurityToken.MismatchWithAccessKey",
                    "Specified SecurityToken mismatch with the AccessKey.",
                ))
            }
            Some(_) if key.token_expired => {
                return Err(error(
                    400,
                    "InvalidSecurityToken.Expired",
                    "Specified SecurityToken is expired.",
                ))
            }
            Some(_) => {}
        }
    }
    for required in [
        "host",
        "x-acs-action",
        "x-acs-version",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-content-sha256",
    ] {
        if !names.contains(&required) || header(request, required).is_none() {
            return Err(error(400, "IncompleteSignature", format!("The request signature does not conform to Aliyun standards: header {required} must be signed.")));
        }
    }
    let body_hash = hex::encode(Sha256::digest(&request.body));
    if header(request, "x-acs-content-sha256").as_deref() != Some(body_hash.as_str()) {
        return Err(error(
            400,
            "SignatureDoesNotMatch",
            "The x-acs-content-sha256 header does not match the body.",
        ));
    }
    let date = header(request, "x-acs-date").unwrap_or_default();
    match NaiveDateTime::parse_from_str(&date, "%Y-%m-%dT%H:%M:%SZ") {
        Ok(at) if (Utc::now().naive_utc() - at).num_seconds().abs() <= MAX_SKEW_SECONDS => {}
        Ok(_) => {
            return Err(error(
                400,
                "InvalidTimeStamp.Expired",
                format!("Specified time stamp or date value is expired: {date}."),
            ))
        }
        Err(_) => {
            return Err(error(
                400,
                "InvalidTimeStamp.Format",
                format!("Specified time stamp or date value is not well formatted: {date}."),
            ))
        }
    }
    let nonce = header(request, "x-acs-signature-nonce").unwrap_or_default();
    if nonces.contains(&nonce) {
        return Err(error(
            400,
            "SignatureNonceUsed",
            "Specified signature nonce was used already.",
        ));
    }

    let string_to_sign = acs3_string_to_sign(request, &names);
    let expected = acs3_signature(key.access_key_secret, &string_to_sign);
    if expected != signature {
        return Err(error(
            400,
            "SignatureDoesNotMatch",
            format!("Specified signature is not matched with our calculation. server string to sign is:{string_to_sign}"),
        ));
    }
    nonces.insert(nonce);
    Ok(())
}

/// The `ACS3-HMAC-SHA256` string to sign of `request` as received, with the headers
/// `signed` (lowercase names, in any order).
pub(crate) fn acs3_string_to_sign(request: &Request, signed: &[&str]) -> String {
    let mut query: Vec<(String, String)> = request
        .url
        .query_pairs()
        .map(|(k, v)| (rfc3986(&k), rfc3986(&v)))
        .collect();
    query.sort();
    let canonical_query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut sorted_names = signed.to_vec();
    sorted_names.sort_unstable();
    let canonical_headers: String = sorted_names
        .iter()
        .map(|n| format!("{n}:{}\n", header(request, n).unwrap_or_default()))
        .collect();
    let body_hash = hex::encode(Sha256::digest(&request.body));
    let canonical_request = format!(
        "{}\n{}\n{canonical_query}\n{canonical_headers}\n{}\n{body_hash}",
        request.method.as_str(),
        request.url.path(),
        sorted_names.join(";"),
    );
    let string_to_sign = format!(
        "ACS3-HMAC-SHA256\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    string_to_sign
}

/// The hex signature of `string_to_sign` with `secret`.
pub(crate) fn acs3_signature(secret: &str, string_to_sign: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(string_to_sign.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3986_encoding_matches_the_spec() {
        assert_eq!(rfc3986("a b*c~d/e"), "a%20b%2Ac~d%2Fe");
        assert_eq!(rfc3986("杭"), "%E6%9D%AD");
    }

    /// The server side reproduces the V3 signature document's published example.
    #[test]
    fn acs3_string_to_sign_matches_official_example() {
        let mut headers = wiremock::http::HeaderMap::new();
        for (name, value) in [
            ("host", "ecs.cn-shanghai.aliyuncs.com"),
            ("x-acs-action", "RunInstances"),
            ("x-acs-version", "2014-05-26"),
            ("x-acs-date", "2023-10-26T10:22:32Z"),
            ("x-acs-signature-nonce", "3156853299f313e23d1673dc12e1703d"),
            (
                "x-acs-content-sha256",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
        ] {
            headers.insert(name, value.parse().unwrap());
        }
        let request = Request {
            url: "https://ecs.cn-shanghai.aliyuncs.com/?ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai".parse().unwrap(),
            method: wiremock::http::Method::POST,
            headers,
            body: Vec::new(),
        };
        let names = [
            "host",
            "x-acs-action",
            "x-acs-content-sha256",
            "x-acs-date",
            "x-acs-signature-nonce",
            "x-acs-version",
        ];
        let string_to_sign = acs3_string_to_sign(&request, &names);
        assert_eq!(
            string_to_sign,
            "ACS3-HMAC-SHA256\n7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
        );
        assert_eq!(
            acs3_signature("YourAccessKeySecret", &string_to_sign),
            "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
        );
    }

    #[test]
    fn generated_hosts_carry_the_quirks() {
        let hosts: Vec<Value> = (0..40).map(|i| instance_json("cn-hangzhou", i)).collect();
        assert!(hosts.iter().any(|h| h["InstanceNetworkType"] == "classic"));
        assert!(hosts.iter().any(|h| h["EipAddress"]["IpAddress"] == ""));
        assert!(hosts
            .iter()
            .any(|h| h["ExpiredTime"] == "2099-12-31T15:59Z"));
        assert!(hosts.iter().any(|h| h["SpotStrategy"] == "SpotAsPriceGo"));
        assert!(hosts.iter().any(|h| h["OperationLocks"]["LockReason"]
            .as_array()
            .is_some_and(|l| !l.is_empty())));
        assert!(hosts.iter().any(|h| h["GPUAmount"] == 1));
        for status in ["Running", "Stopped", "Pending", "Starting", "Stopping"] {
            assert!(hosts.iter().any(|h| h["Status"] == status), "{status}");
        }
        let ids: HashSet<_> = hosts
            .iter()
            .map(|h| h["InstanceId"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids.len(), 40);
    }
}
