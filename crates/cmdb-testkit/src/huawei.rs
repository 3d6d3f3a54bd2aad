//! A simulated Huawei Cloud API (IAM project look-up and ECS ListServersDetails) on
//! wiremock, for tests of the Huawei provider without an account.
//!
//! [`SimulatedHuawei`] checks every request's `SDK-HMAC-SHA256` signature with its own
//! implementation of the algorithm (this crate never depends on a provider crate) and
//! the `X-Sdk-Date` skew (15 minutes); answers `GET /v3/projects?name=<region>` with one
//! project per region (or several, on demand), and `GET /v3/projects` with every project
//! of the account: one per region, `MOS` (the marketplace's, as every account has) and
//! the sub-projects a test adds (`cn-north-4_sub`); serves N servers in the documented JSON
//! shape (string flavors, address maps, `"k=v"` tags, metadata, every status, Chinese
//! names, null fields) with `offset` as a page number from 1 and `limit` at most 1000;
//! injects 429 `APIGW.0308` every K requests, 5xx answers and latency; lets tests
//! remove, add and change servers between runs or while a listing runs; answers
//! ShowServer (`GET /v1/{project_id}/cloudservers/{server_id}`, 404 `Ecs.0114` once a
//! server is gone); and, like the real gateway, counts
//! authentication failures and refuses a key after five.
//!
//! Servers are generated from their number when a page is served, and only what tests
//! change is kept, so a simulator of a million servers starts at once in a few MB.
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

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt::{self, Write as _};
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDateTime, Timelike, Utc};
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
    /// ShowServer requests answered (after authentication), throttled included.
    pub show_server_requests: u64,
    /// Requests answered 429 `APIGW.0308`.
    pub throttled: u64,
    /// Requests answered with an injected 5xx.
    pub injected_failures: u64,
    /// `(offset, limit)` of every ListServersDetails page served, in order of arrival.
    pub pages: Vec<(u64, u64)>,
}

/// A key the simulated gateway knows, with what it counts against it.
pub(crate) struct Account {
    pub(crate) secret_key: String,
    pub(crate) revoked: bool,
    pub(crate) auth_failures: u32,
    /// The security token a temporary key needs (`X-Security-Token`, signed).
    pub(crate) security_token: Option<String>,
    /// Whether that token has expired.
    pub(crate) token_expired: bool,
}

impl Account {
    /// A permanent, valid key with this secret.
    pub(crate) fn new(secret_key: &str) -> Account {
        Account {
            secret_key: secret_key.to_owned(),
            revoked: false,
            auth_failures: 0,
            security_token: None,
            token_expired: false,
        }
    }
}

/// A region's projects and servers. Servers are generated from their number (see
/// [`server_json`]) and written out only when a page is served, so a region costs the
/// same with ten servers or a million; what tests change is all it keeps: the servers
/// removed, and the JSON of those changed.
struct Region {
    /// Project ids IAM lists under the region's name (normally one).
    projects: Vec<String>,
    /// The numbers of the region's servers, in ascending runs (one per addition, merged
    /// when adjacent). Numbers are handed out in increasing order across regions, so the
    /// listing order is the ascending order of numbers.
    runs: Vec<Range<u64>>,
    /// The numbers of the servers removed, ascending, without duplicates.
    removed: Vec<u64>,
    /// The servers a test changed, by number: the JSON they are listed as from now on.
    changed: HashMap<u64, Value>,
}

impl Region {
    fn new(projects: Vec<String>) -> Region {
        Region {
            projects,
            runs: Vec::new(),
            removed: Vec::new(),
            changed: HashMap::new(),
        }
    }

    /// Appends servers `numbers` to the listing.
    fn push(&mut self, numbers: Range<u64>) {
        match self.runs.last_mut() {
            _ if numbers.is_empty() => {}
            Some(last) if last.end == numbers.start => last.end = numbers.end,
            _ => self.runs.push(numbers),
        }
    }

    /// How many servers are listed.
    fn len(&self) -> u64 {
        let generated: u64 = self.runs.iter().map(|r| r.end - r.start).sum();
        generated - self.removed.len() as u64
    }

    fn is_removed(&self, n: u64) -> bool {
        self.removed.binary_search(&n).is_ok()
    }

    /// How many removed numbers are below `n`.
    fn removed_below(&self, n: u64) -> u64 {
        self.removed.partition_point(|&r| r < n) as u64
    }

    /// Whether server `n` is listed.
    fn lists(&self, n: u64) -> bool {
        self.runs.iter().any(|r| r.contains(&n)) && !self.is_removed(n)
    }

    /// The numbers of the servers listed, in listing order.
    fn numbers(&self) -> impl Iterator<Item = u64> + '_ {
        self.numbers_from(0)
    }

    /// The numbers of the servers listed from position `skip` (from 0) on, in listing
    /// order. Finding where to start takes a binary search, not a walk over `skip`
    /// servers, so a deep page costs what the first one does.
    fn numbers_from(&self, skip: u64) -> impl Iterator<Item = u64> + '_ {
        let mut skip = skip;
        let mut start = (self.runs.len(), 0);
        for (k, run) in self.runs.iter().enumerate() {
            let listed =
                run.end - run.start - (self.removed_below(run.end) - self.removed_below(run.start));
            if skip < listed {
                start = (k, self.nth_listed(run, skip));
                break;
            }
            skip -= listed;
        }
        let (first_run, first) = start;
        self.runs[first_run..]
            .iter()
            .enumerate()
            .flat_map(move |(k, run)| if k == 0 { first..run.end } else { run.clone() })
            .filter(|n| !self.is_removed(*n))
    }

    /// The number of the `skip`-th (from 0) server listed of `run`, which lists more
    /// than `skip`: the smallest `x` with more than `skip` servers listed in
    /// `run.start..=x`.
    fn nth_listed(&self, run: &Range<u64>, skip: u64) -> u64 {
        let removed_before = self.removed_below(run.start);
        let listed_through =
            |x: u64| x + 1 - run.start - (self.removed_below(x + 1) - removed_before);
        let (mut low, mut high) = (run.start + skip, run.end - 1);
        while low < high {
            let middle = low + (high - low) / 2;
            if listed_through(middle) > skip {
                high = middle;
            } else {
                low = middle + 1;
            }
        }
        low
    }

    /// The id server `n` is listed under (`None` if a test made it a non-string).
    fn id_of(&self, n: u64) -> Option<String> {
        match self.changed.get(&n) {
            Some(v) => v["id"].as_str().map(str::to_owned),
            None => Some(server_id(n)),
        }
    }

    /// The numbers of the servers listed under `id`, in listing order (normally one at
    /// most; a test may give a changed server another's id).
    fn find(&self, id: &str) -> Vec<u64> {
        let mut found: Vec<u64> = self
            .changed
            .iter()
            .filter(|(_, v)| v["id"] == id)
            .map(|(n, _)| *n)
            .collect();
        found.extend(server_number(id).filter(|n| !self.changed.contains_key(n) && self.lists(*n)));
        found.sort_unstable();
        found
    }

    /// The JSON of server `n`, as listed.
    fn json(&self, n: u64, region: &str) -> Value {
        match self.changed.get(&n) {
            Some(v) => v.clone(),
            None => server_json(n, region),
        }
    }
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
    /// Status ShowServer answers with, when set.
    lookup_failure: Option<u16>,
    /// Changes to make right after the n-th ListServersDetails page is served.
    changes: Vec<(usize, Change)>,
    /// Projects of no region, `(name, id)`: `MOS`, and the sub-projects tests add. IAM
    /// lists them; ECS knows none of them.
    other_projects: Vec<(String, String)>,
}

/// A change of the simulated inventory, made while a listing runs.
type Change = Box<dyn FnOnce(&mut State) + Send>;

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

    /// Adds a sub-project of `region` named `<region>_<name>` (as IAM names the projects
    /// a user creates in a region) and returns its id. IAM lists it with the account's
    /// projects; it holds no server.
    pub fn add_sub_project(&self, region: &str, name: &str) -> String {
        let full = format!("{region}_{name}");
        let id = project_id(&full, 0);
        self.state().other_projects.push((full, id.clone()));
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
            .map(|r| r.numbers().filter_map(|n| r.id_of(n)).collect())
            .unwrap_or_default()
    }

    /// The JSON of one server, as listed.
    pub fn server(&self, region: &str, id: &str) -> Option<Value> {
        let s = self.state();
        let r = s.regions.get(region)?;
        let n = *r.find(id).first()?;
        Some(r.json(n, region))
    }

    /// Adds `n` new servers to `region`; returns their ids.
    pub fn add_servers(&self, region: &str, n: u64) -> Vec<String> {
        self.state().add_servers(region, n).map(server_id).collect()
    }

    /// Removes the servers with these ids from `region`; returns how many were removed.
    pub fn remove_servers(&self, region: &str, ids: &[String]) -> usize {
        let mut s = self.state();
        let Some(r) = s.regions.get_mut(region) else {
            return 0;
        };
        let gone: BTreeSet<u64> = ids.iter().flat_map(|id| r.find(id)).collect();
        for n in &gone {
            r.changed.remove(n);
        }
        r.removed.extend(&gone);
        r.removed.sort_unstable();
        gone.len()
    }

    /// Removes the servers with these ids from `region` right after the `n`-th
    /// ListServersDetails page (counted from the simulator's start, as
    /// [`SimStats::pages`] counts) is served: servers deleted while a listing runs.
    pub fn remove_servers_after(&self, n: usize, region: &str, ids: Vec<String>) {
        let region = region.to_owned();
        self.state().changes.push((
            n,
            Box::new(move |s: &mut State| {
                if let Some(r) = s.regions.get_mut(&region) {
                    let gone: BTreeSet<u64> = ids.iter().flat_map(|id| r.find(id)).collect();
                    for k in &gone {
                        r.changed.remove(k);
                    }
                    r.removed.extend(&gone);
                    r.removed.sort_unstable();
                }
            }),
        ));
    }

    /// Adds `count` servers to `region` right after the `n`-th ListServersDetails page
    /// is served (as [`remove_servers_after`](Self::remove_servers_after) counts).
    pub fn add_servers_after(&self, n: usize, region: &str, count: u64) {
        let region = region.to_owned();
        self.state().changes.push((
            n,
            Box::new(move |s: &mut State| {
                s.add_servers(&region, count);
            }),
        ));
    }

    /// Answers every ShowServer with `status` (403: `Ecs.0319`, a policy refusal; other
    /// statuses: a gateway error page); `None` stops it.
    pub fn fail_lookups(&self, status: Option<u16>) {
        self.state().lookup_failure = status;
    }

    /// Changes one server's JSON in place; returns whether it exists.
    pub fn change_server(&self, region: &str, id: &str, change: impl FnOnce(&mut Value)) -> bool {
        let mut s = self.state();
        let Some(r) = s.regions.get_mut(region) else {
            return false;
        };
        let Some(&n) = r.find(id).first() else {
            return false;
        };
        let server = r.changed.entry(n).or_insert_with(|| server_json(n, region));
        change(server);
        true
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

    /// Answers every request `latency` after the simulator began to handle it (real
    /// time): building the answer is part of the latency, as it is for a vendor.
    pub fn set_latency(&self, latency: Option<Duration>) {
        self.state().latency = latency;
    }

    /// Accepts another key pair.
    pub fn add_key(&self, access_key: &str, secret_key: &str) {
        self.state()
            .accounts
            .insert(access_key.to_owned(), Account::new(secret_key));
    }

    /// Makes `access_key` a temporary key: its requests must then carry `token` in
    /// `X-Security-Token`, signed like every header, as the official SDKs send it.
    pub fn set_security_token(&self, access_key: &str, token: Option<&str>) {
        if let Some(a) = self.state().accounts.get_mut(access_key) {
            a.security_token = token.map(str::to_owned);
            a.token_expired = false;
        }
    }

    /// Expires the security token of `access_key`: its requests fail authentication.
    pub fn expire_security_token(&self, access_key: &str) {
        if let Some(a) = self.state().accounts.get_mut(access_key) {
            a.token_expired = true;
        }
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
        accounts.insert(ACCESS_KEY.to_owned(), Account::new(SECRET_KEY));
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
            lookup_failure: None,
            changes: Vec::new(),
            other_projects: vec![("MOS".to_owned(), project_id("MOS", 0))],
        }
    }

    fn ensure_region(&mut self, region: &str) {
        self.regions
            .entry(region.to_owned())
            .or_insert_with(|| Region::new(vec![project_id(region, 0)]));
    }

    /// Adds `n` new servers to `region`; returns their numbers.
    fn add_servers(&mut self, region: &str, n: u64) -> Range<u64> {
        self.ensure_region(region);
        let numbers = self.next_server..self.next_server + n;
        self.next_server = numbers.end;
        self.regions
            .get_mut(region)
            .expect("region just ensured")
            .push(numbers.clone());
        numbers
    }

    fn request_id(&mut self) -> String {
        self.next_request_id += 1;
        format!("{:032x}", 0x5eed_0000_0000u64 + self.next_request_id)
    }
}

pub(crate) fn project_id(region: &str, n: usize) -> String {
    let digest = Sha256::digest(format!("{region}/{n}").as_bytes());
    hex::encode(&digest[..16])
}

/// The id of generated server `i`.
fn server_id(i: u64) -> String {
    format!("{:08x}-5e4c-4d00-9a00-{i:012x}", i as u32)
}

/// The number of the generated server with this id, if it is one.
fn server_number(id: &str) -> Option<u64> {
    let (_, tail) = id.split_once("-5e4c-4d00-9a00-")?;
    let n = u64::from_str_radix(tail, 16).ok()?;
    (server_id(n) == id).then_some(n)
}

/// The flavor sizes servers cycle through, with their vCPUs and RAM (MiB).
const FLAVORS: [(&str, u32, u32); 4] = [
    ("small", 1, 1024),
    ("large", 2, 4096),
    ("xlarge", 4, 8192),
    ("2xlarge", 8, 32768),
];

/// What generated server `i` is (see [`server_json`]).
struct Traits {
    status: &'static str,
    windows: bool,
    /// Size, vCPUs and RAM (MiB).
    flavor: (&'static str, u32, u32),
    chinese_name: bool,
    /// Whether it has an elastic IP.
    floating: bool,
    ipv6: bool,
    described: bool,
    has_security_group: bool,
    zone: &'static str,
    env: &'static str,
    created: DateTime<Utc>,
}

impl Traits {
    fn of(i: u64) -> Traits {
        let seconds = (i as i64).saturating_mul(60).saturating_add(1_700_000_000);
        Traits {
            status: STATUSES[(i % STATUSES.len() as u64) as usize],
            windows: i % 4 == 3,
            flavor: FLAVORS[(i % 4) as usize],
            chinese_name: i % 5 == 0,
            floating: i % 3 == 0,
            ipv6: i % 4 == 0,
            described: i % 7 != 0,
            has_security_group: i % 6 != 5,
            zone: ["a", "b", "c"][(i % 3) as usize],
            env: ["prod", "test"][(i % 2) as usize],
            created: DateTime::from_timestamp(seconds, 0).unwrap_or_default(),
        }
    }

    fn os_type(&self) -> &'static str {
        if self.windows {
            "Windows"
        } else {
            "Linux"
        }
    }

    fn image_name(&self) -> &'static str {
        if self.windows {
            "Windows Server 2019 Datacenter 64bit"
        } else {
            "CentOS 7.9 64bit"
        }
    }

    fn power_state(&self) -> u8 {
        if self.status == "ACTIVE" {
            1
        } else {
            4
        }
    }

    fn launched(&self) -> DateTime<Utc> {
        self.created + chrono::Duration::seconds(30)
    }
}

/// The network (and VPC) id of server `i`.
fn network_id(i: u64) -> String {
    format!("{:08x}-0000-4000-8000-0000000000{:02x}", 0xbee5u32, i % 3)
}

/// Writes `t` as `%Y-%m-%dT%H:%M:%SZ`, or with `micros` as `%Y-%m-%dT%H:%M:%S%.6f` (no
/// zone: the service's `launched_at` has none), without parsing a format each time.
fn write_time(out: &mut String, t: DateTime<Utc>, micros: bool) {
    if !(0..=9999).contains(&t.year()) {
        // Chrono signs such years; leave them to it.
        let format = if micros {
            "%Y-%m-%dT%H:%M:%S%.6f"
        } else {
            "%Y-%m-%dT%H:%M:%SZ"
        };
        // Writing to a String cannot fail.
        let _ = write!(out, "{}", t.format(format));
        return;
    }
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let _ = if micros {
        write!(out, ".{:06}", t.timestamp_subsec_micros())
    } else {
        write!(out, "Z")
    };
}

fn time_text(t: DateTime<Utc>, micros: bool) -> String {
    let mut out = String::new();
    write_time(&mut out, t, micros);
    out
}

/// One server in ListServersDetails' documented shape, varied by `i`.
pub fn server_json(i: u64, region: &str) -> Value {
    let t = Traits::of(i);
    let net = network_id(i);
    let (size, vcpus, ram) = t.flavor;
    let flavor = format!("s6.{size}.2");
    let mut addresses = vec![json!({
        "version": "4",
        "addr": format!("192.168.{}.{}", (i / 250) % 250, i % 250 + 2),
        "OS-EXT-IPS-MAC:mac_addr": format!("fa:16:3e:00:{:02x}:{:02x}", (i >> 8) & 0xff, i & 0xff),
        "OS-EXT-IPS:port_id": format!("{:08x}-0000-4000-8000-{:012x}", 0xfacade, i),
        "OS-EXT-IPS:type": "fixed"
    })];
    if t.floating {
        // Elastic IPs; some API versions give the version as a number.
        addresses.push(json!({
            "version": 4,
            "addr": format!("121.36.{}.{}", (i / 250) % 250, i % 250 + 1),
            "OS-EXT-IPS:type": "floating"
        }));
    }
    if t.ipv6 {
        addresses.push(json!({
            "version": "6",
            "addr": format!("fd00::{:x}", i + 1),
            "OS-EXT-IPS:type": "fixed"
        }));
    }
    let mut tags = vec![json!(format!("env={}", t.env))];
    tags.push(json!(format!("owner=团队{}", i % 3)));
    if i % 2 == 0 {
        tags.push(json!("backup"));
    }
    json!({
        "id": server_id(i),
        "name": if t.chinese_name { format!("测试服务器-{i}") } else { format!("ecs-{i:04}") },
        "description": if t.described { json!(format!("simulated server {i}")) } else { Value::Null },
        "status": t.status,
        "addresses": { net.clone(): addresses },
        "flavor": {"id": flavor, "name": flavor, "vcpus": vcpus.to_string(), "ram": ram.to_string(), "disk": "0"},
        "image": {"id": format!("img-{:04}", i % 10)},
        "accessIPv4": "",
        "accessIPv6": "",
        "hostId": format!("{:056x}", i),
        "created": time_text(t.created, false),
        "updated": time_text(t.created, false),
        "OS-SRV-USG:launched_at": time_text(t.launched(), true),
        "OS-SRV-USG:terminated_at": Value::Null,
        "OS-EXT-AZ:availability_zone": format!("{region}{}", t.zone),
        "OS-EXT-SRV-ATTR:hostname": format!("host-{i}"),
        "OS-EXT-SRV-ATTR:instance_name": format!("instance-{i:08x}"),
        "OS-EXT-STS:task_state": Value::Null,
        "OS-EXT-STS:vm_state": t.status.to_ascii_lowercase(),
        "OS-EXT-STS:power_state": t.power_state(),
        "metadata": {
            "charging_mode": (i % 3).to_string(),
            "os_type": t.os_type(),
            "image_name": t.image_name(),
            "vpc_id": net,
            "os_bit": "64",
            "metering.image_id": format!("img-{:04}", i % 10),
            "metering.resourcespeccode": format!("{flavor}.linux")
        },
        "tags": tags,
        "sys_tags": [{"key": "_sys_enterprise_project_id", "value": "0"}],
        "security_groups": if t.has_security_group { json!([{"id": format!("sg-{:04}", i % 4), "name": "default"}]) } else { Value::Null },
        "key_name": if t.windows { Value::Null } else { json!(format!("kp-{}", i % 2)) },
        "enterprise_project_id": "0",
        "locked": false,
        "fault": if t.status == "ERROR" { json!({"code": 500, "message": "No valid host was found", "created": "2023-11-14T22:13:20Z"}) } else { Value::Null },
        "os-extended-volumes:volumes_attached": [{"id": format!("vol-{i}"), "device": "/dev/vda", "bootIndex": "0", "delete_on_termination": "true"}],
    })
}

struct Responder {
    state: Arc<Mutex<State>>,
}

/// An answer: status and body.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Body,
}

/// The body of a [`Reply`].
pub(crate) enum Body {
    Json(Value),
    /// JSON already written as text (a ListServersDetails page).
    JsonText(String),
    /// Plain text (an injected 5xx, as a gateway's HTML page).
    Text(&'static str),
}

impl Reply {
    pub(crate) fn new(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body: Body::Json(body),
        }
    }

    pub(crate) fn into_template(self) -> ResponseTemplate {
        let template = ResponseTemplate::new(self.status);
        match self.body {
            Body::Json(json) => template.set_body_json(json),
            Body::JsonText(text) => template.set_body_raw(text, "application/json"),
            Body::Text(text) => template.set_body_string(text),
        }
    }
}

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let started = std::time::Instant::now();
        let mut s = lock(&self.state);
        let response = handle(&mut s, request).into_template();
        let response = response.insert_header("X-Request-Id", s.request_id().as_str());
        crate::with_latency(response, s.latency, started)
    }
}

fn handle(s: &mut State, request: &Request) -> Reply {
    s.stats.requests += 1;
    let path = request.url.path().to_owned();
    let is_iam = path == "/v3/projects";
    // `/v1/{project_id}/cloudservers/detail` (ListServersDetails) or
    // `/v1/{project_id}/cloudservers/{server_id}` (ShowServer).
    let (ecs_project, shown) = match path
        .strip_prefix("/v1/")
        .and_then(|rest| rest.split_once("/cloudservers/"))
    {
        Some((project, "detail")) => (Some(project.to_owned()), None),
        Some((project, id)) if !id.is_empty() && !id.contains('/') => {
            (Some(project.to_owned()), Some(id.to_owned()))
        }
        _ => (None, None),
    };
    if let Err(failure) = authenticate(s, request, ecs_project.is_some()) {
        return failure;
    }
    s.authenticated += 1;
    if is_iam {
        s.stats.iam_requests += 1;
    } else if shown.is_some() {
        s.stats.show_server_requests += 1;
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
        return Reply {
            status,
            body: Body::Text("<html><body>upstream unavailable</body></html>"),
        };
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
        // Region projects, then the others, sorted by name as IAM lists them.
        let mut named: Vec<(&str, &str)> = s
            .regions
            .iter()
            .flat_map(|(region, r)| {
                r.projects
                    .iter()
                    .map(move |id| (region.as_str(), id.as_str()))
            })
            .chain(
                s.other_projects
                    .iter()
                    .map(|(n, id)| (n.as_str(), id.as_str())),
            )
            .filter(|(project, _)| name.as_deref().is_none_or(|n| n == *project))
            .collect();
        named.sort_by_key(|(project, _)| *project);
        let projects: Vec<Value> = named
            .into_iter()
            .map(|(project, id)| {
                // A region's own project hangs off the account; a sub-project off its
                // region's project.
                let parent = s
                    .regions
                    .get(project.split('_').next().unwrap_or_default())
                    .and_then(|r| r.projects.first())
                    .filter(|_| project.contains('_'))
                    .map_or("d0000000000000000000000000000001", String::as_str);
                json!({
                    "id": id, "name": project, "enabled": true, "is_domain": false,
                    "description": "", "domain_id": "d0000000000000000000000000000001",
                    "parent_id": parent,
                    "links": {"self": format!("https://iam.myhuaweicloud.com/v3/projects/{id}")}
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
    let Some((name, region)) = s
        .regions
        .iter()
        .find(|(_, r)| r.projects.contains(&project))
        .filter(|_| header_project.as_deref() == Some(project.as_str()))
    else {
        return ecs_error(
            400,
            "Ecs.0003",
            "the project id in the path and X-Project-Id do not match a project",
        );
    };
    if let Some(id) = shown {
        return show_server(s.lookup_failure, name, region, &id);
    }
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
    let skip = (offset - 1).saturating_mul(limit);
    let body = servers_page(name, region, skip, limit);
    s.stats.pages.push((offset, limit));
    let served = s.stats.pages.len();
    let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut s.changes)
        .into_iter()
        .partition(|(n, _)| *n == served);
    s.changes = later;
    for (_, change) in due {
        change(s);
    }
    Reply {
        status: 200,
        body: Body::JsonText(body),
    }
}

/// The ShowServer answer for server `id` of `region` (named `name`): `{"server": {…}}`,
/// or 404 `Ecs.0114` once it is gone, as the ECS API reference shows.
fn show_server(failure: Option<u16>, name: &str, region: &Region, id: &str) -> Reply {
    match failure {
        Some(403) => {
            return ecs_error(
                403,
                "Ecs.0319",
                "Policy doesn't allow ecs:cloudServers:get to be performed.",
            )
        }
        Some(status) => {
            return Reply {
                status,
                body: Body::Text("<html><body>upstream unavailable</body></html>"),
            }
        }
        None => {}
    }
    match region.find(id).first() {
        Some(&n) => Reply::new(200, json!({"server": region.json(n, name)})),
        None => ecs_error(
            404,
            "Ecs.0114",
            &format!("Instance[{id}] could not be found."),
        ),
    }
}

/// The ListServersDetails answer listing `region`'s servers from position `skip` (from
/// 0), at most `limit` of them: `{"count":…,"servers":[…]}`, written as text.
fn servers_page(name: &str, region: &Region, skip: u64, limit: u64) -> String {
    let shown = region.len().saturating_sub(skip).min(limit);
    // About 1.6 kB a generated server.
    let mut out = String::with_capacity(64 + 1700 * shown as usize);
    // Writing to a String cannot fail.
    let _ = write!(out, r#"{{"count":{},"servers":["#, region.len());
    for (k, n) in region.numbers_from(skip).take(limit as usize).enumerate() {
        if k > 0 {
            out.push(',');
        }
        match region.changed.get(&n) {
            Some(changed) => {
                let _ = write!(out, "{changed}");
            }
            None => out.push_str(&server_json(n, name).to_string()),
        }
    }
    out.push_str("]}");
    out
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
    let now = (s.clock)();
    authenticate_sdk(&mut s.accounts, request, now, s.max_skew, needs_project)
}

/// Authenticates a request as Huawei Cloud's API gateway does for every service (ECS,
/// RDS, IAM): the `SDK-HMAC-SHA256` signature of a known key, `X-Sdk-Date` within
/// `max_skew` of `now`, `X-Project-Id` signed when the path names a project, the security
/// token of a temporary key; counts a failure against a known key and refuses a key
/// after [`LOCK_AFTER_FAILURES`]. The error is the gateway's 401 `APIGW.0301`.
pub(crate) fn authenticate_sdk(
    accounts: &mut HashMap<String, Account>,
    request: &Request,
    now: DateTime<Utc>,
    max_skew: chrono::Duration,
    needs_project: bool,
) -> Result<(), Reply> {
    let Some(auth) = header(request, "authorization").and_then(|h| parse_authorization(&h)) else {
        return Err(auth_error(
            "Authorization header missing or not SDK-HMAC-SHA256",
        ));
    };
    let Some(account) = accounts.get_mut(&auth.access) else {
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
    } else if let Some(token) = &account.security_token {
        let sent = header(request, "x-security-token");
        if sent.as_deref() != Some(token.as_str()) {
            Err("the security token is missing or does not belong to the ak".to_owned())
        } else if !auth.signed_headers.iter().any(|h| h == "x-security-token") {
            Err("header x-security-token is not signed".to_owned())
        } else if account.token_expired {
            Err("the security token has expired".to_owned())
        } else {
            verdict
        }
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

pub(crate) fn header(request: &Request, name: &str) -> Option<String> {
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
    let to_sign = sdk_string_to_sign(request, &auth.signed_headers, &date)?;
    if sdk_signature(secret_key, &to_sign) != auth.signature {
        return Err("verify aksk signature fail".into());
    }
    Ok(())
}

/// The `SDK-HMAC-SHA256` string to sign of `request` as received, with the headers
/// `signed_headers` (lowercase, sorted, as the `Authorization` names them) and the
/// `X-Sdk-Date` value `date`; an error when a signed header was not sent.
pub(crate) fn sdk_string_to_sign(
    request: &Request,
    signed_headers: &[String],
    date: &str,
) -> Result<String, String> {
    let mut canonical = String::new();
    canonical.push_str(request.method.as_str());
    canonical.push('\n');
    canonical.push_str(&sim_canonical_path(request.url.path()));
    canonical.push('\n');
    canonical.push_str(&sim_canonical_query(request.url.query().unwrap_or("")));
    canonical.push('\n');
    for name in signed_headers {
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
    canonical.push_str(&signed_headers.join(";"));
    canonical.push('\n');
    canonical.push_str(&hex::encode(Sha256::digest(&request.body)));
    Ok(format!(
        "SDK-HMAC-SHA256\n{date}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    ))
}

/// The hex signature of `string_to_sign` with `secret_key`.
pub(crate) fn sdk_signature(secret_key: &str, string_to_sign: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret_key.as_bytes()).expect("any key length");
    mac.update(string_to_sign.as_bytes());
    hex::encode(mac.finalize().into_bytes())
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
                security_token: None,
                token_expired: false,
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

    /// The listing as the simulator kept it before servers were generated lazily: every
    /// server's JSON, in order.
    struct Model(Vec<Value>);

    impl Model {
        fn ids(&self) -> Vec<String> {
            let ids = self.0.iter().filter_map(|v| v["id"].as_str());
            ids.map(str::to_owned).collect()
        }
    }

    fn assert_lists(sim: &SimulatedHuawei, model: &Model) {
        assert_eq!(sim.server_ids("a"), model.ids());
        let s = sim.state();
        let region = &s.regions["a"];
        assert_eq!(region.len(), model.0.len() as u64);
        for limit in [1, 3, 7, 1000] {
            for skip in 0..=model.0.len() as u64 + 1 {
                let page: Value =
                    serde_json::from_str(&servers_page("a", region, skip, limit)).unwrap();
                let expected: Vec<Value> = model
                    .0
                    .iter()
                    .skip(skip as usize)
                    .take(limit as usize)
                    .cloned()
                    .collect();
                assert_eq!(page["count"], model.0.len(), "skip {skip}, limit {limit}");
                assert_eq!(
                    page["servers"],
                    Value::Array(expected),
                    "skip {skip}, limit {limit}"
                );
            }
        }
    }

    #[tokio::test]
    async fn pages_follow_removals_additions_and_changes() {
        let sim = SimulatedHuawei::start("a", 10).await;
        sim.add_region("b", 5);
        let mut model = Model((0..10).map(|i| server_json(i, "a")).collect());
        // Numbers 15 to 24, after region b's: a second run, added in two steps.
        let added = [sim.add_servers("a", 7), sim.add_servers("a", 3)].concat();
        model.0.extend((15..25).map(|i| server_json(i, "a")));
        assert_eq!(added, model.ids()[10..]);
        assert_lists(&sim, &model);

        let ids = model.ids();
        let b_id = sim.server_ids("b")[0].clone();
        let doomed = [&ids[0], &ids[4], &ids[4], &ids[12], &ids[19], &b_id, "nope"];
        let doomed: Vec<String> = doomed.into_iter().map(String::from).collect();
        assert_eq!(sim.remove_servers("a", &doomed), 4);
        model
            .0
            .retain(|v| !doomed.iter().any(|id| v["id"] == id.as_str()));
        assert_eq!(sim.server_ids("b").len(), 5);
        assert_lists(&sim, &model);

        // A changed server is listed as changed, where it was; its id may change too.
        assert!(sim.change_server("a", &ids[5], |v| v["name"] = json!("renamed \"x\"")));
        assert!(sim.change_server("a", &ids[6], |v| v["id"] = json!("moved")));
        assert!(!sim.change_server("a", &ids[4], |_| {}));
        assert!(!sim.change_server("a", &b_id, |_| {}));
        for v in &mut model.0 {
            if v["id"] == ids[5].as_str() {
                v["name"] = json!("renamed \"x\"");
            } else if v["id"] == ids[6].as_str() {
                v["id"] = json!("moved");
            }
        }
        assert_eq!(sim.server("a", &ids[5]).unwrap()["name"], "renamed \"x\"");
        assert_eq!(
            sim.server("a", "moved").unwrap()["hostId"],
            format!("{:056x}", 6)
        );
        assert_eq!(sim.server("a", &ids[6]), None);
        assert_eq!(sim.server("a", &ids[7]), Some(server_json(7, "a")));
        assert_eq!(sim.server("a", &ids[4]), None);
        assert_lists(&sim, &model);

        // Removing a changed server forgets its change; new servers go at the end.
        assert_eq!(sim.remove_servers("a", &["moved".to_owned()]), 1);
        model.0.retain(|v| v["id"] != "moved");
        sim.add_servers("a", 2);
        model.0.extend((25..27).map(|i| server_json(i, "a")));
        assert_lists(&sim, &model);
        assert_eq!(sim.state().regions["a"].changed.len(), 1);
    }
}
