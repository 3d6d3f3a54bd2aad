//! A simulated Huawei Cloud RDS API (`ListInstances`, `GET /v3/{project_id}/instances`)
//! on wiremock.
//!
//! [`SimulatedHuaweiRds`] authenticates every request as the API gateway does, with the
//! same check as the ECS simulator ([`crate::huawei`]): the `SDK-HMAC-SHA256` signature,
//! `X-Sdk-Date` within 15 minutes, `X-Project-Id` signed and equal to the project in the
//! path, and a key locked after five failures (401 `APIGW.0301`). The region's project id
//! is the one the ECS simulator's IAM answers for the same region name, and it answers
//! IAM's `GET /v3/projects?name=<region>` itself, so that one endpoint override serves a
//! provider that looks its project up. RDS errors come
//! as `{"error_code": "DBS.…", "error_msg": …}`; throttling is the gateway's 429
//! `APIGW.0308`.
//!
//! It serves generated instances in the documented shape: `cpu` and `mem` as strings,
//! `mem` in GB, `volume {type, size}` in GB, `created`/`updated` with a `+0800`-style
//! offset, `charge_info.charge_mode` (`prePaid`, `postPaid`) with `expiration_time` on
//! prepaid ones only, `datastore {type, version}` for four engines, `Single`, `Ha` and
//! `Replica` instances with their `nodes` (the primary's zone is in `nodes[]`) and
//! `related_instance`, `private_ips`/`public_ips` and one `port`, `tags [{key, value}]`,
//! every documented status.
//!
//! Paging is `offset` (records to skip, from 0) and `limit` (1 to 100, default 100) with
//! `total_count`; the `id` query parameter looks one instance up (`*` first: the ids
//! containing the rest). Tests add, remove and change instances, throttle, fail and slow
//! it down.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use cmdb_testkit::huawei_rds::SimulatedHuaweiRds;
//!
//! let sim = SimulatedHuaweiRds::start("cn-north-4", 30).await;
//! assert_eq!(sim.instance_ids().len(), 30);
//! assert_eq!(sim.project_id().len(), 32);
//! # });
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{FixedOffset, TimeZone, Utc};
use serde_json::{json, Value};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::huawei::{
    authenticate_sdk, header, project_id, Account, Body, Reply, LOCK_AFTER_FAILURES,
};

/// The access key the simulator accepts by default.
pub const ACCESS_KEY: &str = "HWSIMRDSAK000000001";
/// The secret key of [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "hw-simulated-rds-secret-key-00000000001";
/// The largest `limit` ListInstances accepts.
pub const MAX_LIMIT: u64 = 100;

/// The statuses ListInstances documents; generated instances cycle through them.
pub const STATUSES: &[&str] = &[
    "ACTIVE",
    "BUILD",
    "FAILED",
    "FROZEN",
    "MODIFYING",
    "REBOOTING",
    "RESTORING",
    "MODIFYING INSTANCE TYPE",
    "SWITCHOVER",
    "MIGRATING",
    "BACKING UP",
    "MODIFYING DATABASE PORT",
    "STORAGE FULL",
];

struct State {
    region: String,
    project_id: String,
    accounts: HashMap<String, Account>,
    instances: Vec<Value>,
    next_index: u64,
    authenticated: u64,
    requests: u64,
    throttle_every: u64,
    fail_next: VecDeque<u16>,
    latency: Option<Duration>,
    next_request_id: u64,
    listings: u64,
    lookups: u64,
}

/// A simulated RDS endpoint of one region. See the [module docs](self).
pub struct SimulatedHuaweiRds {
    server: MockServer,
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for SimulatedHuaweiRds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("SimulatedHuaweiRds")
            .field("uri", &self.server.uri())
            .field("region", &s.region)
            .field("instances", &s.instances.len())
            .finish_non_exhaustive()
    }
}

impl SimulatedHuaweiRds {
    /// A simulator with `count` generated instances in `region` (one project), accepting
    /// [`ACCESS_KEY`] / [`SECRET_KEY`].
    pub async fn start(region: &str, count: u64) -> SimulatedHuaweiRds {
        let mut accounts = HashMap::new();
        accounts.insert(ACCESS_KEY.to_owned(), Account::new(SECRET_KEY));
        let state = Arc::new(Mutex::new(State {
            region: region.to_owned(),
            project_id: project_id(region, 0),
            accounts,
            instances: (0..count).map(|i| instance_json(region, i)).collect(),
            next_index: count,
            authenticated: 0,
            requests: 0,
            throttle_every: 0,
            fail_next: VecDeque::new(),
            latency: None,
            next_request_id: 0,
            listings: 0,
            lookups: 0,
        }));
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(Responder(Arc::clone(&state)))
            .mount(&server)
            .await;
        SimulatedHuaweiRds { server, state }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The base URL, to use as a secret's endpoint override (`http://127.0.0.1:<port>`).
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// The region simulated.
    pub fn region(&self) -> String {
        self.lock().region.clone()
    }

    /// The region's project id: the path's `{project_id}` and `X-Project-Id`.
    pub fn project_id(&self) -> String {
        self.lock().project_id.clone()
    }

    /// Accepts another key pair.
    pub fn add_key(&self, access_key: &str, secret_key: &str) {
        self.lock()
            .accounts
            .insert(access_key.to_owned(), Account::new(secret_key));
    }

    /// Makes `access_key` a temporary key: its requests must then carry `token` in
    /// `X-Security-Token`, signed like every header, as the official SDKs send it (the
    /// gateway check of the ECS simulator).
    pub fn set_security_token(&self, access_key: &str, token: Option<&str>) {
        if let Some(a) = self.lock().accounts.get_mut(access_key) {
            a.security_token = token.map(str::to_owned);
            a.token_expired = false;
        }
    }

    /// Expires the security token of `access_key`: its requests fail authentication.
    pub fn expire_security_token(&self, access_key: &str) {
        if let Some(a) = self.lock().accounts.get_mut(access_key) {
            a.token_expired = true;
        }
    }

    /// Revokes a key: its requests fail authentication from now on.
    pub fn revoke_key(&self, access_key: &str) {
        if let Some(a) = self.lock().accounts.get_mut(access_key) {
            a.revoked = true;
        }
    }

    /// Authentication failures counted for `access_key`.
    pub fn auth_failures(&self, access_key: &str) -> u32 {
        self.lock()
            .accounts
            .get(access_key)
            .map_or(0, |a| a.auth_failures)
    }

    /// Whether `access_key` is locked (five failures or more).
    pub fn is_locked(&self, access_key: &str) -> bool {
        self.auth_failures(access_key) >= LOCK_AFTER_FAILURES
    }

    /// The instance id of generated instance number `i`.
    pub fn instance_id(&self, i: u64) -> String {
        instance_id(i)
    }

    /// The ids of the instances listed now, in listing order.
    pub fn instance_ids(&self) -> Vec<String> {
        let s = self.lock();
        let ids = s.instances.iter().filter_map(|v| v["id"].as_str());
        ids.map(str::to_owned).collect()
    }

    /// The JSON of one instance as the API lists it.
    pub fn instance(&self, id: &str) -> Option<Value> {
        let s = self.lock();
        s.instances.iter().find(|v| v["id"] == id).cloned()
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
        s.instances.retain(|v| v["id"] != id);
        s.instances.len() != before
    }

    /// Changes an instance's JSON in place (e.g. `v["status"] = "FROZEN".into()`);
    /// whether it was there.
    pub fn update_instance(&self, id: &str, change: impl FnOnce(&mut Value)) -> bool {
        let mut s = self.lock();
        match s.instances.iter_mut().find(|v| v["id"] == id) {
            Some(v) => {
                change(v);
                true
            }
            None => false,
        }
    }

    /// Answers every `k`-th authenticated request with 429 `APIGW.0308` (0: never).
    pub fn throttle_every(&self, k: u64) {
        self.lock().throttle_every = k;
    }

    /// Answers the next `n` authenticated requests with HTTP `status` and an HTML body,
    /// as a gateway in front of the service would.
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

    /// Listing pages served (`id` lookups not counted).
    pub fn listings(&self) -> u64 {
        self.lock().listings
    }

    /// Lookups by `id` served.
    pub fn lookups(&self) -> u64 {
        self.lock().lookups
    }
}

/// Engine, version, id suffix and flavor family of generated instance `i`.
fn engine(i: u64) -> (&'static str, &'static str, &'static str, &'static str) {
    match i % 4 {
        0 => ("MySQL", "8.0", "in01", "rds.mysql.n1"),
        1 => ("PostgreSQL", "14", "in03", "rds.pg.n1"),
        2 => ("SQLServer", "2019_SE", "in04", "rds.mssql.se.s3"),
        _ => ("MariaDB", "10.5", "in13", "rds.mariadb.n1"),
    }
}

fn instance_id(i: u64) -> String {
    format!("5eed{i:028x}{}", engine(i).2)
}

/// Generated instance number `i` of `region`, in ListInstances' shape: every
/// [`STATUSES`] word, `Single`, `Ha` (two nodes in two zones) and `Replica` (a read
/// replica of the instance before it, on its engine), prepaid with an `expiration_time`
/// and postpaid without, public IPs on some, Chinese names, tags on most.
pub fn instance_json(region: &str, i: u64) -> Value {
    let replica = i % 5 == 4;
    let primary = if replica { i - 1 } else { i };
    let (engine, version, _, flavor) = engine(primary);
    let kind = if replica {
        "Replica"
    } else if i % 2 == 0 {
        "Ha"
    } else {
        "Single"
    };
    let status = STATUSES[(i % STATUSES.len() as u64) as usize];
    let prepaid = i % 3 == 0;
    let (cpu, mem_gb) = [("2", "4"), ("4", "8"), ("8", "32"), ("2", "8")][(i % 4) as usize];
    let zones = [format!("{region}a"), format!("{region}b")];
    let zone = zones[(i % 2) as usize].clone();
    let id = instance_id(i);
    let node = |n: u64, role: &str, zone: &str| {
        json!({
            "id": format!("{}no0{}", &id[..id.len() - 4], n + 1),
            "name": format!("rds-{i}_node{n}"),
            "role": role,
            "status": status,
            "availability_zone": zone,
        })
    };
    let nodes = match kind {
        "Ha" => vec![
            node(0, "master", &zone),
            node(1, "slave", &zones[((i + 1) % 2) as usize]),
        ],
        "Replica" => vec![node(0, "readreplica", &zone)],
        _ => vec![node(0, "master", &zone)],
    };
    let related = if replica {
        json!([{"id": instance_id(i - 1), "type": "replica_of"}])
    } else if i % 5 == 3 {
        json!([{"id": instance_id(i + 1), "type": "replica"}])
    } else {
        json!([])
    };
    // Beijing time, as the API writes it: `+0800`, no colon.
    let china = FixedOffset::east_opt(8 * 3600).expect("valid offset");
    let created = Utc
        .with_ymd_and_hms(2024, 3, 1 + (i % 28) as u32, (i % 24) as u32, 33, 49)
        .single()
        .expect("valid date")
        .with_timezone(&china);
    let time = |t: chrono::DateTime<FixedOffset>| t.format("%Y-%m-%dT%H:%M:%S%z").to_string();
    let port = match engine {
        "PostgreSQL" => 5432,
        "SQLServer" => 1433,
        _ => 3306,
    };
    let mut instance = json!({
        "id": id,
        "name": if i % 2 == 0 { format!("订单库-{i}") } else { format!("rds-{i}") },
        "status": status,
        "alias": "",
        "private_ips": [format!("192.168.{}.{}", i / 256 % 256, i % 256)],
        "private_dns_names": [format!("{id}.internal.{region}.mysql.rds.myhuaweicloud.com")],
        "public_ips": if i % 4 == 1 { json!([format!("100.85.{}.{}", i / 256 % 256, i % 256)]) } else { json!([]) },
        "public_dns_names": [],
        "port": port,
        "type": kind,
        "region": region,
        "datastore": {"type": engine, "version": version, "complete_version": format!("{version}.1")},
        "created": time(created),
        "updated": time(created + chrono::Duration::days(1)),
        "db_user_name": if engine == "SQLServer" { "rdsuser" } else { "root" },
        "vpc_id": format!("{:08x}-1111-4000-8000-{:012x}", i % 3, i % 3),
        "subnet_id": format!("{:08x}-2222-4000-8000-{:012x}", i % 7, i % 7),
        "security_group_id": format!("{:08x}-3333-4000-8000-{:012x}", i % 5, i % 5),
    });
    // Two objects: one would pass the `json!` macro's recursion limit.
    let rest = json!({
        "flavor_ref": format!("{flavor}.large.{}", if kind == "Ha" { "ha" } else { "2" }),
        "cpu": cpu,
        "mem": mem_gb,
        "volume": {"type": if i % 2 == 0 { "CLOUDSSD" } else { "ULTRAHIGH" }, "size": 40 + (i % 10) * 10},
        "switch_strategy": "reliability",
        "read_only_by_user": false,
        "backup_strategy": {"start_time": "19:00-20:00", "keep_days": 7},
        "charge_info": {"charge_mode": if prepaid { "prePaid" } else { "postPaid" }},
        "maintenance_window": "02:00-06:00",
        "nodes": nodes,
        "related_instance": related,
        "disk_encryption_id": "",
        "enterprise_project_id": "0",
        "time_zone": if engine == "SQLServer" { "China Standard Time" } else { "UTC+08:00" },
        "tags": if i % 4 == 3 { json!([]) } else { json!([{"key": "env", "value": "sim"}, {"key": "序号", "value": i.to_string()}]) },
        "max_iops": 0,
        "storage_used_space": 1.5,
    });
    if let (Some(object), Value::Object(rest)) = (instance.as_object_mut(), rest) {
        object.extend(rest);
    }
    if prepaid {
        instance["expiration_time"] = json!(time(created + chrono::Duration::days(365)));
    }
    instance
}

struct Responder(Arc<Mutex<State>>);

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let started = std::time::Instant::now();
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        s.requests += 1;
        s.next_request_id += 1;
        let request_id = format!("{:032x}", 0xdb5e_0000_0000u64 + s.next_request_id);
        let reply = handle(&mut s, request).unwrap_or_else(|error| error);
        let template = reply
            .into_template()
            .insert_header("X-Request-Id", request_id.as_str());
        crate::with_latency(template, s.latency, started)
    }
}

fn rds_error(status: u16, code: &str, message: &str) -> Reply {
    Reply::new(status, json!({"error_code": code, "error_msg": message}))
}

/// The answer to one request; an error answer as `Err`.
fn handle(s: &mut State, request: &Request) -> Result<Reply, Reply> {
    // IAM's `KeystoneListProjects` on the same endpoint, as the ECS simulator serves it:
    // an endpoint override in a secret stands for every service of the account.
    if request.url.path() == "/v3/projects" {
        authenticate_sdk(
            &mut s.accounts,
            request,
            Utc::now(),
            chrono::Duration::minutes(15),
            false,
        )?;
        let name = request
            .url
            .query_pairs()
            .find(|(k, _)| k == "name")
            .map(|(_, v)| v.into_owned());
        let projects: Vec<Value> = [(&s.region, &s.project_id)]
            .into_iter()
            .filter(|(region, _)| name.as_deref().is_none_or(|n| n == region.as_str()))
            .map(|(region, id)| {
                json!({
                    "id": id, "name": region, "enabled": true, "is_domain": false,
                    "domain_id": "d0000000000000000000000000000001",
                    "parent_id": "d0000000000000000000000000000001",
                })
            })
            .collect();
        return Ok(Reply::new(200, json!({"projects": projects})));
    }
    let path_project = request
        .url
        .path()
        .strip_prefix("/v3/")
        .and_then(|rest| rest.strip_suffix("/instances"))
        .filter(|p| !p.is_empty() && !p.contains('/'))
        .map(str::to_owned);
    authenticate_sdk(
        &mut s.accounts,
        request,
        Utc::now(),
        chrono::Duration::minutes(15),
        true,
    )?;
    s.authenticated += 1;
    if s.throttle_every > 0 && s.authenticated % s.throttle_every == 0 {
        return Err(Reply::new(
            429,
            json!({
                "error_code": "APIGW.0308",
                "error_msg": "The throttling threshold has been reached: policy user over ratelimit,limit:20,time:1 minute",
            }),
        ));
    }
    if let Some(status) = s.fail_next.pop_front() {
        return Err(Reply {
            status,
            body: Body::Text("<html><body>upstream unavailable</body></html>"),
        });
    }
    let Some(project) = path_project.filter(|_| request.method.as_str() == "GET") else {
        return Err(Reply::new(
            404,
            json!({
                "error_code": "APIGW.0101",
                "error_msg": "The API does not exist or has not been published in the environment",
            }),
        ));
    };
    if project != s.project_id || header(request, "x-project-id").as_deref() != Some(&project) {
        return Err(rds_error(
            403,
            "DBS.200010",
            "The DB instance ID or user ID may be null, or the operation is not authorized.",
        ));
    }
    let query: HashMap<String, String> = request.url.query_pairs().into_owned().collect();
    let number = |name: &str, default: u64, range: std::ops::RangeInclusive<u64>| match query
        .get(name)
        .map(|v| v.parse::<u64>())
    {
        None => Ok(default),
        Some(Ok(n)) if range.contains(&n) => Ok(n),
        Some(_) => Err(rds_error(
            400,
            "DBS.200001",
            &format!("Parameter error: {name}."),
        )),
    };
    let offset = number("offset", 0, 0..=u64::MAX)?;
    let limit = number("limit", MAX_LIMIT, 1..=MAX_LIMIT)?;
    let id = query.get("id").filter(|id| !id.is_empty());
    let matching: Vec<&Value> = s
        .instances
        .iter()
        .filter(|v| match id {
            None => true,
            Some(id) => match id.strip_prefix('*') {
                Some(part) => v["id"].as_str().is_some_and(|v| v.contains(part)),
                None => v["id"] == id.as_str(),
            },
        })
        .collect();
    let page: Vec<&Value> = matching
        .iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(limit as usize)
        .copied()
        .collect();
    let answer = json!({"instances": page, "total_count": matching.len()});
    if id.is_some() {
        s.lookups += 1;
    } else {
        s.listings += 1;
    }
    Ok(Reply::new(200, answer))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::huawei::{sdk_signature, sdk_string_to_sign};

    /// Sends `GET /v3/{project_id}/instances?<query>` signed with `access_key` and
    /// `secret_key` (the simulator's defaults unless told otherwise) as the official SDKs
    /// sign it; answers status and body (`Null` when not JSON).
    async fn call(
        sim: &SimulatedHuaweiRds,
        query: &[(&str, &str)],
        key: Option<(&str, &str)>,
    ) -> (u16, Value) {
        let (access_key, secret_key) = key.unwrap_or((ACCESS_KEY, SECRET_KEY));
        let project = sim.project_id();
        let mut url = url::Url::parse(&format!("{}/v3/{project}/instances", sim.uri())).unwrap();
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let host = url[url::Position::BeforeHost..url::Position::AfterPort].to_owned();
        let date = Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        let mut headers = wiremock::http::HeaderMap::new();
        for (name, value) in [
            ("content-type", "application/json"),
            ("host", host.as_str()),
            ("x-project-id", project.as_str()),
            ("x-sdk-date", date.as_str()),
        ] {
            headers.insert(name, value.parse().unwrap());
        }
        let signed: Vec<String> = ["content-type", "host", "x-project-id", "x-sdk-date"]
            .map(str::to_owned)
            .to_vec();
        let unsigned = Request {
            url: url.clone(),
            method: wiremock::http::Method::GET,
            headers: headers.clone(),
            body: Vec::new(),
        };
        let string_to_sign = sdk_string_to_sign(&unsigned, &signed, &date).unwrap();
        let authorization = format!(
            "SDK-HMAC-SHA256 Access={access_key}, SignedHeaders={}, Signature={}",
            signed.join(";"),
            sdk_signature(secret_key, &string_to_sign)
        );
        headers.remove("host");
        let response = reqwest::Client::new()
            .get(url)
            .headers(headers)
            .header("authorization", authorization)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn ids(page: &Value) -> Vec<String> {
        page["instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn offset_paging_lists_every_instance_once() {
        let sim = SimulatedHuaweiRds::start("cn-north-4", 230).await;
        let mut seen = Vec::new();
        for offset in (0..230).step_by(100) {
            let offset = offset.to_string();
            let (status, page) = call(&sim, &[("offset", &offset), ("limit", "100")], None).await;
            assert_eq!(status, 200, "{page}");
            assert_eq!(page["total_count"], 230);
            seen.extend(ids(&page));
        }
        assert_eq!(seen, sim.instance_ids());
        assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 230);
        // Defaults: offset 0, limit 100.
        let (_, page) = call(&sim, &[], None).await;
        assert_eq!(ids(&page), seen[..100]);
        assert_eq!(sim.listings(), 4);
    }

    #[tokio::test]
    async fn limits_out_of_range_are_refused() {
        let sim = SimulatedHuaweiRds::start("cn-north-4", 3).await;
        for (name, bad) in [
            ("limit", "0"),
            ("limit", "101"),
            ("offset", "-1"),
            ("limit", "x"),
        ] {
            let (status, body) = call(&sim, &[(name, bad)], None).await;
            assert_eq!(
                (status, body["error_code"].as_str()),
                (400, Some("DBS.200001")),
                "{name}={bad}"
            );
        }
    }

    #[tokio::test]
    async fn id_looks_one_instance_up() {
        let sim = SimulatedHuaweiRds::start("cn-north-4", 12).await;
        let (a, gone) = (sim.instance_id(4), sim.instance_id(5));
        assert!(sim.remove_instance(&gone));
        let (status, page) = call(&sim, &[("id", &a)], None).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(
            (ids(&page), page["total_count"].clone()),
            (vec![a], json!(1))
        );
        let (_, page) = call(&sim, &[("id", &gone)], None).await;
        assert_eq!(
            (ids(&page).len(), page["total_count"].clone()),
            (0, json!(0))
        );
        assert_eq!((sim.lookups(), sim.listings()), (2, 0));
    }

    #[tokio::test]
    async fn instances_carry_the_documented_quirks() {
        let sim = SimulatedHuaweiRds::start("cn-north-4", 26).await;
        let (_, page) = call(&sim, &[], None).await;
        let all = page["instances"].as_array().unwrap();
        let statuses: BTreeSet<&str> = all.iter().map(|v| v["status"].as_str().unwrap()).collect();
        assert_eq!(statuses.len(), STATUSES.len());
        for v in all {
            assert!(v["cpu"].is_string() && v["mem"].is_string(), "{v}");
            assert!(
                v["mem"].as_str().unwrap().parse::<u64>().unwrap() <= 32,
                "GB"
            );
            let created = v["created"].as_str().unwrap();
            assert!(created.ends_with("+0800"), "{created}");
            chrono::DateTime::parse_from_str(created, "%Y-%m-%dT%H:%M:%S%z").unwrap();
            let prepaid = v["charge_info"]["charge_mode"] == "prePaid";
            assert_eq!(prepaid, v.get("expiration_time").is_some(), "{v}");
            assert!(v["nodes"][0]["availability_zone"].is_string());
        }
        assert!(all
            .iter()
            .any(|v| v["type"] == "Replica" && v["related_instance"][0]["type"] == "replica_of"));
        assert!(all.iter().any(|v| v["tags"][0]["key"] == "env"));
        for engine in ["MySQL", "PostgreSQL", "SQLServer", "MariaDB"] {
            assert!(
                all.iter().any(|v| v["datastore"]["type"] == engine),
                "{engine}"
            );
        }
    }

    #[tokio::test]
    async fn a_bad_signature_is_refused_and_five_lock_the_key() {
        let sim = SimulatedHuaweiRds::start("cn-north-4", 3).await;
        for _ in 0..LOCK_AFTER_FAILURES {
            let (status, body) = call(&sim, &[], Some((ACCESS_KEY, "wrong"))).await;
            assert_eq!(
                (status, body["error_code"].as_str()),
                (401, Some("APIGW.0301"))
            );
        }
        assert!(sim.is_locked(ACCESS_KEY));
        let (status, _) = call(&sim, &[], None).await;
        assert_eq!(status, 401, "locked, even with the right key");
        sim.add_key("HWOTHER", "other-secret");
        let (status, page) = call(&sim, &[], Some(("HWOTHER", "other-secret"))).await;
        assert_eq!((status, page["total_count"].clone()), (200, json!(3)));
        assert_eq!(sim.listings(), 1);
    }

    #[tokio::test]
    async fn throttles_answer_apigw_0308() {
        let sim = SimulatedHuaweiRds::start("cn-north-4", 3).await;
        sim.throttle_every(2);
        assert_eq!(call(&sim, &[], None).await.0, 200);
        let (status, body) = call(&sim, &[], None).await;
        assert_eq!(
            (status, body["error_code"].as_str()),
            (429, Some("APIGW.0308"))
        );
        sim.throttle_every(0);
        sim.fail_next(1, 502);
        assert_eq!(call(&sim, &[], None).await, (502, Value::Null));
        assert_eq!(call(&sim, &[], None).await.0, 200);
    }
}
