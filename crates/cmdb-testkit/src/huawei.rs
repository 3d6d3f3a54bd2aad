//! A simulated Huawei Cloud API (IAM project look-up and ECS ListServersDetails) on
//! wiremock, for tests of the Huawei provider without an account.
//!
//! [`SimulatedHuawei`] checks every request's `SDK-HMAC-SHA256` signature with its own
//! implementation of the algorithm (this crate never depends on a provider crate) and
//! the `X-Sdk-Date` skew (15 minutes); answers `GET /v3/projects?name=<region>` with one
//! project per region (or several, on demand); serves N servers in the documented JSON
//! shape (string flavors, address maps, `"k=v"` tags, metadata, every status, Chinese
//! names, null fields) with `offset` as a page number from 1 and `limit` at most 1000;
//! injects 429 `APIGW.0308` every K requests, 5xx answers and latency; lets tests
//! remove, add and change servers between runs; and, like the real gateway, counts
//! authentication failures and refuses a key after five.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use cmdb_testkit::huawei::SimulatedHuawei;
//!
//! let sim = SimulatedHuawei::start("cn-north-4", 250).await;
//! assert_eq!(sim.server_ids("cn-north-4").len(), 250);
//! assert!(sim.uri().starts_with("http://127.0.0.1:"));
//! assert_eq!(sim.stats().requests, 0);
//! # });
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The access key the simulator accepts by default.
pub const ACCESS_KEY: &str = "HWSIMAK0000000000001";
/// The secret key of [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "hw-simulated-secret-key-0000000000000001";

/// Authentication failures after which a key is locked, as the real gateway does.
pub const LOCK_AFTER_FAILURES: u32 = 5;

/// Largest `limit` ListServersDetails accepts.
pub const MAX_LIMIT: u64 = 1000;

/// The statuses ListServersDetails documents; simulated servers cycle through them.
pub const STATUSES: [&str; 17] = [
    "ACTIVE",
    "BUILD",
    "REBUILD",
    "RESIZE",
    "VERIFY_RESIZE",
    "REVERT_RESIZE",
    "MIGRATING",
    "REBOOT",
    "HARD_REBOOT",
    "SHUTOFF",
    "ERROR",
    "DELETED",
    "SHELVED",
    "SUSPENDED",
    "PAUSED",
    "SOFT_DELETED",
    "UNKNOWN",
];

/// What the simulator has seen so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Every request received.
    pub requests: u64,
    /// IAM project look-ups answered (successfully or not, after authentication).
    pub iam_requests: u64,
    /// ListServersDetails requests answered (after authentication), throttled included.
    pub ecs_requests: u64,
    /// Requests answered 429 `APIGW.0308`.
    pub throttled: u64,
    /// Requests answered with an injected 5xx.
    pub injected_failures: u64,
    /// `(offset, limit)` of every ListServersDetails page served, in order of arrival.
    pub pages: Vec<(u64, u64)>,
}

struct Account {
    secret_key: String,
    revoked: bool,
    auth_failures: u32,
}

struct Region {
    /// Project ids IAM lists under the region's name (normally one).
    projects: Vec<String>,
    servers: Vec<Value>,
}

struct State {
    accounts: HashMap<String, Account>,
    regions: BTreeMap<String, Region>,
    next_server: u64,
    next_request_id: u64,
    throttle_every: Option<u64>,
    fail_every: Option<(u64, u16)>,
    authenticated: u64,
    fail_next: VecDeque<u16>,
    fail_pages_from: Option<u64>,
    latency: Option<Duration>,
    max_skew: chrono::Duration,
    stats: SimStats,
    clock: fn() -> DateTime<Utc>,
}

/// A simulated Huawei Cloud: see the [module documentation](self).
pub struct SimulatedHuawei {
    server: MockServer,
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for SimulatedHuawei {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatedHuawei")
            .field("uri", &self.server.uri())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl SimulatedHuawei {
    /// A simulator with `servers` servers in `region` (one project), accepting
    /// [`ACCESS_KEY`] / [`SECRET_KEY`].
    pub async fn start(region: &str, servers: u64) -> SimulatedHuawei {
        let state = Arc::new(Mutex::new(State::new(Utc::now)));
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(Responder {
                state: Arc::clone(&state),
            })
            .mount(&server)
            .await;
        let sim = SimulatedHuawei { server, state };
        sim.add_region(region, servers);
        sim
    }

    /// The base URL, to use as a secret's endpoint override (`http://127.0.0.1:<port>`).
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Adds a region with one project and `servers` servers (or adds servers to it).
    pub fn add_region(&self, region: &str, servers: u64) {
        let mut s = self.state();
        s.ensure_region(region);
        s.add_servers(region, servers);
    }

    /// Adds another project under `region`'s name (IAM then lists several) and returns
    /// its id.
    pub fn add_project(&self, region: &str) -> String {
        let mut s = self.state();
        s.ensure_region(region);
        let r = s.regions.get_mut(region).expect("region just ensured");
        let id = project_id(region, r.projects.len());
        r.projects.push(id.clone());
        id
    }

    /// Removes every project of `region` (IAM then lists none).
    pub fn remove_projects(&self, region: &str) {
        if let Some(r) = self.state().regions.get_mut(region) {
            r.projects.clear();
        }
    }

    /// The (first) project id of `region`.
    pub fn project_id(&self, region: &str) -> Option<String> {
        self.state().regions.get(region)?.projects.first().cloned()
    }

    /// The ids of `region`'s servers, in listing order.
    pub fn server_ids(&self, region: &str) -> Vec<String> {
        self.state()
            .regions
            .get(region)
            .map(|r| {
                r.servers
                    .iter()
                    .filter_map(|s| s["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The JSON of one server, as listed.
    pub fn server(&self, region: &str, id: &str) -> Option<Value> {
        let s = self.state();
        s.regions
            .get(region)?
            .servers
            .iter()
            .find(|v| v["id"] == id)
            .cloned()
    }

    /// Adds `n` new servers to `region`; returns their ids.
    pub fn add_servers(&self, region: &str, n: u64) -> Vec<String> {
        self.state().add_servers(region, n)
    }

    /// Removes the servers with these ids from `region`; returns how many were removed.
    pub fn remove_servers(&self, region: &str, ids: &[String]) -> usize {
        let mut s = self.state();
        let Some(r) = s.regions.get_mut(region) else {
            return 0;
        };
        let before = r.servers.len();
        r.servers
            .retain(|v| !ids.iter().any(|id| v["id"].as_str() == Some(id)));
        before - r.servers.len()
    }

    /// Changes one server's JSON in place; returns whether it exists.
    pub fn change_server(&self, region: &str, id: &str, change: impl FnOnce(&mut Value)) -> bool {
        let mut s = self.state();
        let server = s
            .regions
            .get_mut(region)
            .and_then(|r| r.servers.iter_mut().find(|v| v["id"] == id));
        match server {
            Some(v) => {
                change(v);
                true
            }
            None => false,
        }
    }

    /// Answers every `k`-th authenticated request with 429 `APIGW.0308` (`None` or 0:
    /// never).
    pub fn throttle_every(&self, k: Option<u64>) {
        self.state().throttle_every = k.filter(|k| *k > 0);
    }

    /// Answers the next authenticated requests with these HTTP statuses (e.g. 500, 503),
    /// one each, before serving normally again.
    pub fn fail_next(&self, statuses: &[u16]) {
        self.state().fail_next.extend(statuses);
    }

    /// Answers every `k`-th authenticated request with HTTP `status`, as
    /// [`fail_next`](Self::fail_next) does, until called again; `k` = 0 stops it.
    pub fn fail_every(&self, k: u64, status: u16) {
        self.state().fail_every = (k > 0).then_some((k, status));
    }

    /// Refuses for good every `ListServersDetails` page after page `k` (`offset` is a page
    /// number from 1: pages `offset > k`) with HTTP 403 `Ecs.0319`, a permission error the
    /// client must not retry; pages 1 to `k` are served normally. `None` clears it.
    pub fn fail_pages_from(&self, k: Option<u64>) {
        self.state().fail_pages_from = k;
    }

    /// Delays every answer by `latency` (real time: the server runs on its own thread).
    pub fn set_latency(&self, latency: Option<Duration>) {
        self.state().latency = latency;
    }

    /// Accepts another key pair.
    pub fn add_key(&self, access_key: &str, secret_key: &str) {
        self.state().accounts.insert(
            access_key.to_owned(),
            Account {
                secret_key: secret_key.to_owned(),
                revoked: false,
                auth_failures: 0,
            },
        );
    }

    /// Revokes a key: its requests fail authentication from now on.
    pub fn revoke_key(&self, access_key: &str) {
        if let Some(a) = self.state().accounts.get_mut(access_key) {
            a.revoked = true;
        }
    }

    /// Authentication failures counted for `access_key` (unknown keys included).
    pub fn auth_failures(&self, access_key: &str) -> u32 {
        self.state()
            .accounts
            .get(access_key)
            .map_or(0, |a| a.auth_failures)
    }

    /// Whether `access_key` is locked (five failures or more).
    pub fn is_locked(&self, access_key: &str) -> bool {
        self.auth_failures(access_key) >= LOCK_AFTER_FAILURES
    }

    /// What the simulator has seen so far.
    pub fn stats(&self) -> SimStats {
        self.state().stats.clone()
    }
}

impl State {
    fn new(clock: fn() -> DateTime<Utc>) -> State {
        let mut accounts = HashMap::new();
        accounts.insert(
            ACCESS_KEY.to_owned(),
            Account {
                secret_key: SECRET_KEY.to_owned(),
                revoked: false,
                auth_failures: 0,
            },
        );
        State {
            accounts,
            regions: BTreeMap::new(),
            next_server: 0,
            next_request_id: 0,
            throttle_every: None,
            fail_every: None,
            authenticated: 0,
            fail_next: VecDeque::new(),
            fail_pages_from: None,
            latency: None,
            max_skew: chrono::Duration::minutes(15),
            stats: SimStats::default(),
            clock,
        }
    }

    fn ensure_region(&mut self, region: &str) {
        self.regions
            .entry(region.to_owned())
            .or_insert_with(|| Region {
                projects: vec![project_id(region, 0)],
                servers: Vec::new(),
            });
    }

    fn add_servers(&mut self, region: &str, n: u64) -> Vec<String> {
        self.ensure_region(region);
        let mut ids = Vec::new();
        for _ in 0..n {
            let server = server_json(self.next_server, region);
            self.next_server += 1;
            ids.push(server["id"].as_str().unwrap_or_default().to_owned());
            self.regions
                .get_mut(region)
                .expect("region just ensured")
                .servers
                .push(server);
        }
        ids
    }

    fn request_id(&mut self) -> String {
        self.next_request_id += 1;
        format!("{:032x}", 0x5eed_0000_0000u64 + self.next_request_id)
    }
}

fn project_id(region: &str, n: usize) -> String {
    let digest = Sha256::digest(format!("{region}/{n}").as_bytes());
    hex::encode(&digest[..16])
}

/// One server in ListServersDetails' documented shape, varied by `i`.
pub fn server_json(i: u64, region: &str) -> Value {
    let id = format!("{:08x}-5e4c-4d00-9a00-{:012x}", i as u32, i);
    let net = format!("{:08x}-0000-4000-8000-0000000000{:02x}", 0xbee5u32, i % 3);
    let name = if i % 5 == 0 {
        format!("测试服务器-{i}")
    } else {
        format!("ecs-{i:04}")
    };
    let status = STATUSES[(i % STATUSES.len() as u64) as usize];
    let windows = i % 4 == 3;
    let (vcpus, ram) = [(1, 1024), (2, 4096), (4, 8192), (8, 32768)][(i % 4) as usize];
    let flavor = format!(
        "s6.{}.2",
        ["small", "large", "xlarge", "2xlarge"][(i % 4) as usize]
    );
    let ip = |base: u64| format!("192.168.{}.{}", (base / 250) % 250, base % 250 + 2);
    let mut addresses = vec![json!({
        "version": "4",
        "addr": ip(i),
        "OS-EXT-IPS-MAC:mac_addr": format!("fa:16:3e:00:{:02x}:{:02x}", (i >> 8) & 0xff, i & 0xff),
        "OS-EXT-IPS:port_id": format!("{:08x}-0000-4000-8000-{:012x}", 0xfacade, i),
        "OS-EXT-IPS:type": "fixed"
    })];
    if i % 3 == 0 {
        // Elastic IPs; some API versions give the version as a number.
        addresses.push(json!({
            "version": 4,
            "addr": format!("121.36.{}.{}", (i / 250) % 250, i % 250 + 1),
            "OS-EXT-IPS:type": "floating"
        }));
    }
    if i % 4 == 0 {
        addresses.push(json!({
            "version": "6",
            "addr": format!("fd00::{:x}", i + 1),
            "OS-EXT-IPS:type": "fixed"
        }));
    }
    let mut tags = vec![json!(format!("env={}", ["prod", "test"][(i % 2) as usize]))];
    tags.push(json!(format!("owner=团队{}", i % 3)));
    if i % 2 == 0 {
        tags.push(json!("backup"));
    }
    let created = DateTime::from_timestamp(1_700_000_000 + i as i64 * 60, 0).unwrap_or_default();
    json!({
        "id": id,
        "name": name,
        "description": if i % 7 == 0 { Value::Null } else { json!(format!("simulated server {i}")) },
        "status": status,
        "addresses": { net.clone(): addresses },
        "flavor": {"id": flavor, "name": flavor, "vcpus": vcpus.to_string(), "ram": ram.to_string(), "disk": "0"},
        "image": {"id": format!("img-{:04}", i % 10)},
        "accessIPv4": "",
        "accessIPv6": "",
        "hostId": format!("{:056x}", i),
        "created": created.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "updated": created.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "OS-SRV-USG:launched_at": (created + chrono::Duration::seconds(30)).format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
        "OS-SRV-USG:terminated_at": Value::Null,
        "OS-EXT-AZ:availability_zone": format!("{region}{}", ["a", "b", "c"][(i % 3) as usize]),
        "OS-EXT-SRV-ATTR:hostname": format!("host-{i}"),
        "OS-EXT-SRV-ATTR:instance_name": format!("instance-{i:08x}"),
        "OS-EXT-STS:task_state": Value::Null,
        "OS-EXT-STS:vm_state": status.to_ascii_lowercase(),
        "OS-EXT-STS:power_state": if status == "ACTIVE" { 1 } else { 4 },
        "metadata": {
            "charging_mode": (i % 3).to_string(),
            "os_type": if windows { "Windows" } else { "Linux" },
            "image_name": if windows { "Windows Server 2019 Datacenter 64bit" } else { "CentOS 7.9 64bit" },
            "vpc_id": net,
            "os_bit": "64",
            "metering.image_id": format!("img-{:04}", i % 10),
            "metering.resourcespeccode": format!("{flavor}.linux")
        },
        "tags": tags,
        "sys_tags": [{"key": "_sys_enterprise_project_id", "value": "0"}],
        "security_groups": if i % 6 == 5 { Value::Null } else { json!([{"id": format!("sg-{:04}", i % 4), "name": "default"}]) },
        "key_name": if windows { Value::Null } else { json!(format!("kp-{}", i % 2)) },
        "enterprise_project_id": "0",
        "locked": false,
        "fault": if status == "ERROR" { json!({"code": 500, "message": "No valid host was found", "created": "2023-11-14T22:13:20Z"}) } else { Value::Null },
        "os-extended-volumes:volumes_attached": [{"id": format!("vol-{i}"), "device": "/dev/vda", "bootIndex": "0", "delete_on_termination": "true"}],
    })
}

struct Responder {
    state: Arc<Mutex<State>>,
}

/// An answer: status and body (JSON, or text when the body is a JSON string).
struct Reply {
    status: u16,
    body: Value,
}

impl Reply {
    fn new(status: u16, body: Value) -> Reply {
        Reply { status, body }
    }

    fn into_template(self) -> ResponseTemplate {
        let template = ResponseTemplate::new(self.status);
        match self.body {
            Value::String(text) => template.set_body_string(text),
            json => template.set_body_json(json),
        }
    }
}

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut s = lock(&self.state);
        let response = handle(&mut s, request).into_template();
        let response = response.insert_header("X-Request-Id", s.request_id().as_str());
        match s.latency {
            Some(latency) => response.set_delay(latency),
            None => response,
        }
    }
}

fn handle(s: &mut State, request: &Request) -> Reply {
    s.stats.requests += 1;
    let path = request.url.path().to_owned();
    let is_iam = path == "/v3/projects";
    let ecs_project = path
        .strip_prefix("/v1/")
        .and_then(|rest| rest.strip_suffix("/cloudservers/detail"))
        .map(str::to_owned);
    if let Err(failure) = authenticate(s, request, ecs_project.is_some()) {
        return failure;
    }
    s.authenticated += 1;
    if is_iam {
        s.stats.iam_requests += 1;
    } else if ecs_project.is_some() {
        s.stats.ecs_requests += 1;
    }
    if s.throttle_every.is_some_and(|k| s.authenticated % k == 0) {
        s.stats.throttled += 1;
        let rid = s.request_id();
        return Reply::new(
            429,
            json!({
                "error_code": "APIGW.0308",
                "error_msg": "The throttling threshold has been reached: policy user over ratelimit,limit:20,time:1 minute",
                "request_id": rid,
            }),
        );
    }
    let periodic = s
        .fail_every
        .filter(|(k, _)| s.authenticated % k == 0)
        .map(|(_, status)| status);
    if let Some(status) = periodic.or_else(|| s.fail_next.pop_front()) {
        s.stats.injected_failures += 1;
        return Reply::new(
            status,
            json!("<html><body>upstream unavailable</body></html>"),
        );
    }
    let query: Vec<(String, String)> = request
        .url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    if is_iam {
        let name = param("name");
        let projects: Vec<Value> = s
            .regions
            .iter()
            .filter(|(region, _)| name.as_deref().is_none_or(|n| n == region.as_str()))
            .flat_map(|(region, r)| {
                r.projects.iter().map(move |id| {
                    json!({
                        "id": id, "name": region, "enabled": true, "is_domain": false,
                        "description": "", "domain_id": "d0000000000000000000000000000001",
                        "parent_id": "d0000000000000000000000000000001",
                        "links": {"self": format!("https://iam.myhuaweicloud.com/v3/projects/{id}")}
                    })
                })
            })
            .collect();
        return Reply::new(
            200,
            json!({
                "links": {"self": "https://iam.myhuaweicloud.com/v3/projects", "previous": null, "next": null},
                "projects": projects,
            }),
        );
    }
    let Some(project) = ecs_project else {
        return Reply::new(
            404,
            json!({
                "error_code": "APIGW.0101",
                "error_msg": "The API does not exist or has not been published in the environment",
            }),
        );
    };
    let header_project = header(request, "x-project-id");
    let Some(region) = s
        .regions
        .values()
        .find(|r| r.projects.contains(&project))
        .filter(|_| header_project.as_deref() == Some(project.as_str()))
    else {
        return ecs_error(
            400,
            "Ecs.0003",
            "the project id in the path and X-Project-Id do not match a project",
        );
    };
    let offset = match param("offset").map(|v| v.parse::<u64>()) {
        None => 1,
        Some(Ok(o)) if o >= 1 => o,
        Some(_) => {
            return ecs_error(
                400,
                "Ecs.0005",
                "Invalid parameter: offset must be a page number from 1",
            )
        }
    };
    let limit = match param("limit").map(|v| v.parse::<u64>()) {
        None => 25,
        Some(Ok(l)) if (1..=MAX_LIMIT).contains(&l) => l,
        Some(_) => {
            return ecs_error(
                400,
                "Ecs.0005",
                "Invalid parameter: limit must be between 1 and 1000",
            )
        }
    };
    if s.fail_pages_from.is_some_and(|k| offset > k) {
        return ecs_error(
            403,
            "Ecs.0319",
            "Policy doesn't allow ecs:cloudServers:list to be performed.",
        );
    }
    let start = ((offset - 1) * limit) as usize;
    let page: Vec<Value> = region
        .servers
        .iter()
        .skip(start)
        .take(limit as usize)
        .cloned()
        .collect();
    let count = region.servers.len();
    s.stats.pages.push((offset, limit));
    Reply::new(200, json!({"count": count, "servers": page}))
}

fn ecs_error(status: u16, code: &str, message: &str) -> Reply {
    Reply::new(status, json!({"error": {"code": code, "message": message}}))
}

fn auth_error(message: &str) -> Reply {
    Reply::new(
        401,
        json!({
            "error_code": "APIGW.0301",
            "error_msg": format!("Incorrect IAM authentication information: {message}"),
            "request_id": "0000000000000000000000000000a401",
        }),
    )
}

/// Checks the signature, the date and the key; counts a failure against a known key.
fn authenticate(s: &mut State, request: &Request, needs_project: bool) -> Result<(), Reply> {
    let Some(auth) = header(request, "authorization").and_then(|h| parse_authorization(&h)) else {
        return Err(auth_error(
            "Authorization header missing or not SDK-HMAC-SHA256",
        ));
    };
    let now = (s.clock)();
    let max_skew = s.max_skew;
    let Some(account) = s.accounts.get_mut(&auth.access) else {
        return Err(auth_error("ak not found"));
    };
    if account.auth_failures >= LOCK_AFTER_FAILURES {
        account.auth_failures += 1;
        return Err(auth_error(
            "the access key is locked for 5 minutes after 5 failed authentications",
        ));
    }
    let verdict = verify(
        request,
        &auth,
        &account.secret_key,
        now,
        max_skew,
        needs_project,
    );
    let verdict = if account.revoked {
        Err("ak is disabled or deleted".to_owned())
    } else {
        verdict
    };
    verdict.map_err(|why| {
        account.auth_failures += 1;
        auth_error(&why)
    })
}

struct Authorization {
    access: String,
    signed_headers: Vec<String>,
    signature: String,
}

fn parse_authorization(value: &str) -> Option<Authorization> {
    let rest = value.strip_prefix("SDK-HMAC-SHA256 ")?;
    let mut fields: HashMap<&str, &str> = HashMap::new();
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        fields.insert(k, v);
    }
    Some(Authorization {
        access: fields.get("Access")?.to_string(),
        signed_headers: fields
            .get("SignedHeaders")?
            .split(';')
            .map(str::to_owned)
            .collect(),
        signature: fields.get("Signature")?.to_string(),
    })
}

fn header(request: &Request, name: &str) -> Option<String> {
    request.headers.get(name)?.to_str().ok().map(str::to_owned)
}

/// The gateway's check, written independently of the provider's signer.
fn verify(
    request: &Request,
    auth: &Authorization,
    secret_key: &str,
    now: DateTime<Utc>,
    max_skew: chrono::Duration,
    needs_project: bool,
) -> Result<(), String> {
    for required in ["host", "x-sdk-date"]
        .iter()
        .chain(needs_project.then_some(&"x-project-id"))
    {
        if !auth.signed_headers.iter().any(|h| h == required) {
            return Err(format!("header {required} is not signed"));
        }
    }
    if auth
        .signed_headers
        .iter()
        .any(|h| h.contains('_') || h.to_ascii_lowercase() != *h)
    {
        return Err("signed header names must be lowercase, without '_'".into());
    }
    let date = header(request, "x-sdk-date").ok_or("X-Sdk-Date missing")?;
    let at = NaiveDateTime::parse_from_str(&date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| format!("X-Sdk-Date {date:?} is not YYYYMMDDTHHMMSSZ"))?
        .and_utc();
    if (now - at).abs() > max_skew {
        return Err("the request time differs from the server time by more than 15 minutes".into());
    }
    let mut canonical = String::new();
    canonical.push_str(request.method.as_str());
    canonical.push('\n');
    canonical.push_str(&sim_canonical_path(request.url.path()));
    canonical.push('\n');
    canonical.push_str(&sim_canonical_query(request.url.query().unwrap_or("")));
    canonical.push('\n');
    for name in &auth.signed_headers {
        let mut values: Vec<String> = request
            .headers
            .get_all(name.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned())
            .collect();
        if values.is_empty() {
            return Err(format!("signed header {name} is not in the request"));
        }
        values.sort();
        for v in values {
            canonical.push_str(&format!("{name}:{v}\n"));
        }
    }
    canonical.push('\n');
    canonical.push_str(&auth.signed_headers.join(";"));
    canonical.push('\n');
    canonical.push_str(&hex::encode(Sha256::digest(&request.body)));
    let to_sign = format!(
        "SDK-HMAC-SHA256\n{date}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret_key.as_bytes()).map_err(|e| e.to_string())?;
    mac.update(to_sign.as_bytes());
    let expected = hex::encode(mac.finalize().into_bytes());
    if expected != auth.signature {
        return Err("verify aksk signature fail".into());
    }
    Ok(())
}

/// `%XX` -> byte, then every byte outside `A-Za-z0-9-_.~` -> `%XX`.
fn sim_reencode(raw: &str) -> String {
    let mut bytes = Vec::new();
    let mut chars = raw.bytes().peekable();
    while let Some(b) = chars.next() {
        if b == b'%' {
            let hi = chars.next();
            let lo = chars.next();
            match (hi, lo) {
                (Some(h), Some(l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                    let text = [h, l];
                    let s = std::str::from_utf8(&text).unwrap_or("00");
                    bytes.push(u8::from_str_radix(s, 16).unwrap_or(0));
                }
                (h, l) => {
                    bytes.push(b'%');
                    bytes.extend(h);
                    bytes.extend(l);
                }
            }
        } else {
            bytes.push(b);
        }
    }
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || b"-_.~".contains(&b);
    bytes
        .into_iter()
        .map(|b| {
            if unreserved(b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn sim_canonical_path(path: &str) -> String {
    let encoded: Vec<String> = path.split('/').map(sim_reencode).collect();
    let mut out = encoded.join("/");
    if !out.ends_with('/') {
        out.push('/');
    }
    out
}

fn sim_canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (sim_reencode(k), sim_reencode(v)),
            None => (sim_reencode(p), String::new()),
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use wiremock::http::{HeaderMap, HeaderValue, Method};

    use super::*;

    fn example_time() -> DateTime<Utc> {
        "2019-11-15T03:40:00Z".parse().unwrap()
    }

    /// The signing guide's published request, as it would arrive.
    fn official_request(signature: &str) -> Request {
        let mut headers = HeaderMap::new();
        headers.insert(
            "host",
            HeaderValue::from_static("service.region.example.com"),
        );
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert("x-sdk-date", HeaderValue::from_static("20191115T033655Z"));
        headers.insert(
            "authorization",
            HeaderValue::from_str(&format!(
                "SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, SignedHeaders=content-type;host;x-sdk-date, Signature={signature}"
            ))
            .unwrap(),
        );
        Request {
            url: "http://service.region.example.com/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs?marker=13551d6b-755d-4757-b956-536f674975c0&limit=2"
                .parse()
                .unwrap(),
            method: Method::GET,
            headers,
            body: Vec::new(),
        }
    }

    const OFFICIAL_SIGNATURE: &str =
        "7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe";
    const OFFICIAL_SK: &str = "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc";

    #[test]
    fn verifier_accepts_the_signing_guide_request_matches_official_example() {
        let request = official_request(OFFICIAL_SIGNATURE);
        let auth = parse_authorization(&header(&request, "authorization").unwrap()).unwrap();
        assert_eq!(auth.access, "QTWAOYTTINDUT2QVKYUC");
        let skew = chrono::Duration::minutes(15);
        verify(&request, &auth, OFFICIAL_SK, example_time(), skew, false).unwrap();
        // Another key, another signature, a late clock or a missing project header fail.
        assert!(verify(&request, &auth, "other", example_time(), skew, false).is_err());
        let late = example_time() + chrono::Duration::minutes(20);
        let e = verify(&request, &auth, OFFICIAL_SK, late, skew, false).unwrap_err();
        assert!(e.contains("15 minutes"), "{e}");
        let e = verify(&request, &auth, OFFICIAL_SK, example_time(), skew, true).unwrap_err();
        assert!(e.contains("x-project-id"), "{e}");
        let bad = official_request(&"0".repeat(64));
        let auth = parse_authorization(&header(&bad, "authorization").unwrap()).unwrap();
        assert!(verify(&bad, &auth, OFFICIAL_SK, example_time(), skew, false).is_err());
    }

    #[test]
    fn canonical_forms_reencode_and_sort() {
        assert_eq!(sim_canonical_path("/v1/a%20b/x:y"), "/v1/a%20b/x%3Ay/");
        assert_eq!(sim_canonical_path("/"), "/");
        assert_eq!(
            sim_canonical_query("b=2&a=%E4%B8%AD&a=1&c"),
            "a=%E4%B8%AD&a=1&b=2&c="
        );
    }

    #[test]
    fn five_failures_lock_the_key() {
        let mut state = State::new(example_time);
        state.accounts.insert(
            "QTWAOYTTINDUT2QVKYUC".into(),
            Account {
                secret_key: OFFICIAL_SK.into(),
                revoked: false,
                auth_failures: 0,
            },
        );
        state.ensure_region("r");
        let good = official_request(OFFICIAL_SIGNATURE);
        // The good request is not an ECS or IAM path: authenticated, then 404.
        assert_eq!(handle(&mut state, &good).status, 404);
        let bad = official_request(&"0".repeat(64));
        for _ in 0..LOCK_AFTER_FAILURES {
            assert_eq!(handle(&mut state, &bad).status, 401);
        }
        // Locked: even a good signature is refused now.
        assert_eq!(handle(&mut state, &good).status, 401);
        assert_eq!(state.accounts["QTWAOYTTINDUT2QVKYUC"].auth_failures, 6);
    }

    #[test]
    fn servers_have_the_documented_shape() {
        let s = server_json(15, "cn-north-4");
        assert_eq!(s["name"], "测试服务器-15");
        assert!(s["flavor"]["vcpus"].is_string() && s["flavor"]["ram"].is_string());
        let addresses = s["addresses"].as_object().unwrap();
        let list = addresses.values().next().unwrap().as_array().unwrap();
        assert!(list
            .iter()
            .any(|a| a["OS-EXT-IPS:type"] == "floating" && a["version"] == 4));
        assert!(s["tags"].as_array().unwrap().iter().all(Value::is_string));
        assert!(!s["OS-SRV-USG:launched_at"].as_str().unwrap().ends_with('Z'));
        let statuses: std::collections::HashSet<String> = (0..17)
            .map(|i| server_json(i, "r")["status"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(statuses.len(), STATUSES.len());
    }
}
