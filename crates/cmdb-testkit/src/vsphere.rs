//! A simulated vSphere vim25 SOAP endpoint on wiremock.
//!
//! It answers the calls cmdb's provider makes (`RetrieveServiceContent`, `Login`,
//! `Logout`, `CreateContainerView`, `DestroyView`, `RetrievePropertiesEx`,
//! `ContinueRetrievePropertiesEx`, and `SearchIndex.FindByUuid`, answering no
//! `returnval` when no machine has the uuid, as the vSphere API reference describes) at
//! `POST /sdk`, with a session cookie, container
//! views and paging tokens that belong to their session (as on a real vCenter), and
//! pages of `maxObjects` objects (govmomi's vcsim does not page). Faults, HTTP errors,
//! malformed answers and session expiry can be injected, and machines destroyed or moved
//! to another datacenter right after a chosen call; every call is recorded.
//!
//! Requests are read with plain string matching: they come from our own client, and
//! this is a test double, not a SOAP server.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use cmdb_testkit::vsphere::SimulatedVsphere;
//!
//! let sim = SimulatedVsphere::start(&[("DC0", 250), ("DC1", 10)]).await;
//! sim.add_template("DC0");
//! assert_eq!(sim.vm_count(), 261, "templates included");
//! assert!(sim.sdk_url().ends_with("/sdk"));
//! # });
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// One simulated virtual machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimVm {
    /// Managed object id, e.g. `vm-42`.
    pub moref: String,
    /// Display name.
    pub name: String,
    /// `config.instanceUuid`.
    pub instance_uuid: String,
    /// `config.uuid` (BIOS uuid).
    pub bios_uuid: String,
    /// `config.template`.
    pub template: bool,
    /// `config.hardware.numCPU`.
    pub num_cpu: u32,
    /// `config.hardware.memoryMB`.
    pub memory_mb: u64,
    /// `config.guestId`.
    pub guest_id: String,
    /// `config.guestFullName`.
    pub guest_full_name: String,
    /// `runtime.powerState`.
    pub power_state: String,
    /// Guest addresses (`guest.net[0].ipAddress`); the first is `guest.ipAddress`.
    pub ips: Vec<String>,
    /// `guest.hostName`.
    pub host_name: Option<String>,
    /// No config readable and `runtime.connectionState` = inaccessible.
    pub inaccessible: bool,
}

impl SimVm {
    fn generated(n: usize, datacenter: &str, i: usize) -> SimVm {
        let windows = i % 4 == 3;
        SimVm {
            moref: format!("vm-{n}"),
            name: format!("{datacenter}-vm-{i:04}"),
            // Canonical UUIDs (8-4-4-4-12 hex digits) for any number of machines: the
            // first group repeats past 65,536, the last keeps them unique.
            instance_uuid: format!("5000{:04x}-0000-4000-8000-{n:012x}", n & 0xffff),
            bios_uuid: format!("4200{:04x}-0000-4000-8000-{n:012x}", n & 0xffff),
            template: false,
            num_cpu: 1 << (i % 3),
            memory_mb: 1024 << (i % 4),
            guest_id: if windows {
                "windows2019srv_64Guest"
            } else {
                "ubuntu64Guest"
            }
            .into(),
            guest_full_name: if windows {
                "Microsoft Windows Server 2019 (64-bit)"
            } else {
                "Ubuntu Linux (64-bit)"
            }
            .into(),
            power_state: if i % 5 == 4 {
                "poweredOff"
            } else {
                "poweredOn"
            }
            .into(),
            ips: if i % 5 == 4 {
                Vec::new()
            } else {
                vec![
                    format!("10.{}.{}.{}", n / 65536 % 256, n / 256 % 256, n % 256),
                    format!("2001:db8::{n:x}"),
                    "fe80::250:56ff:fe00:1".into(),
                ]
            },
            host_name: Some(format!("{datacenter}-vm-{i:04}.example.internal").to_lowercase()),
            inaccessible: false,
        }
    }
}

#[derive(Debug)]
struct Datacenter {
    moref: String,
    name: String,
    vms: Vec<SimVm>,
}

#[derive(Debug, Default)]
struct Session {
    /// View id -> (container moref, type).
    views: HashMap<String, (String, String)>,
    /// Token -> the rest of a retrieval.
    tokens: HashMap<String, Remaining>,
}

/// What a paging token stands for.
#[derive(Debug)]
struct Remaining {
    kind: String,
    ids: VecDeque<String>,
    paths: Vec<String>,
    max: usize,
}

/// What the next call of an operation answers instead of its result.
#[derive(Debug, Clone)]
enum Injected {
    Fault { fault: String, message: String },
    Status(u16),
    Malformed,
}

#[derive(Debug, Default)]
struct State {
    datacenters: Vec<Datacenter>,
    next_id: usize,
    sessions: HashMap<String, Session>,
    /// Cookies issued by RetrieveServiceContent and not yet logged in.
    anonymous: Vec<String>,
    calls: Vec<String>,
    /// Operation -> how many times it was called: `calls` counted once and for all.
    call_counts: HashMap<String, usize>,
    login_attempts: usize,
    expire_after: Option<usize>,
    /// Operation -> (the how-many-th call of it, what it answers).
    injected: HashMap<String, Vec<(usize, Injected)>>,
    page_cap: Option<usize>,
    /// How long every answer is delayed.
    latency: Option<Duration>,
    /// (operation, the how-many-th call of it, instance uuids, what happens to them):
    /// inventory changes right after that call is answered.
    changes: Vec<(String, usize, Vec<String>, Change)>,
    /// `about.apiVersion` when not the default `8.0.2.0`.
    api_version: Option<String>,
}

/// What happens to machines right after a chosen call.
#[derive(Debug)]
enum Change {
    /// They are destroyed.
    Remove,
    /// They move to the datacenter of this name.
    MoveTo(String),
}

/// A vim25 SOAP endpoint on a wiremock server: see the [module](self) docs.
#[derive(Clone)]
pub struct SimulatedVsphere {
    server: Arc<MockServer>,
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for SimulatedVsphere {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatedVsphere")
            .field("uri", &self.server.uri())
            .field("vms", &self.vm_count())
            .finish()
    }
}

impl SimulatedVsphere {
    /// The user the simulator accepts.
    pub const USER: &'static str = "administrator@vsphere.local";
    /// The password the simulator accepts.
    pub const PASSWORD: &'static str = "Sim-P@ss<&>word";

    /// Starts a simulator with these datacenters and numbers of virtual machines.
    /// Machines get deterministic names (`<dc>-vm-0007`), uuids, sizes, power states
    /// (every fifth is off) and addresses (IPv4, IPv6 and a link-local one).
    pub async fn start(datacenters: &[(&str, usize)]) -> SimulatedVsphere {
        let mut state = State::default();
        for (d, (name, count)) in datacenters.iter().enumerate() {
            let mut dc = Datacenter {
                moref: format!("datacenter-{}", d + 1),
                name: (*name).to_owned(),
                vms: Vec::new(),
            };
            for i in 0..*count {
                state.next_id += 1;
                dc.vms.push(SimVm::generated(state.next_id, name, i));
            }
            state.datacenters.push(dc);
        }
        let state = Arc::new(Mutex::new(state));
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/sdk"))
            .respond_with(Handler {
                state: Arc::clone(&state),
            })
            .mount(&server)
            .await;
        SimulatedVsphere {
            server: Arc::new(server),
            state,
        }
    }

    /// Answers as a vCenter of this API version (`about.apiVersion`, default `8.0.2.0`).
    /// Before 6.7, `VirtualMachineConfigInfo` has no `createDate`: asking for
    /// `config.createDate` is then an `InvalidProperty` fault, as the property collector
    /// answers a path its type does not have.
    pub fn set_api_version(&self, version: &str) {
        self.state().api_version = Some(version.to_owned());
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The server's base URL (`http://127.0.0.1:<port>`): the address of a secret.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// The SDK URL, `<uri>/sdk`.
    pub fn sdk_url(&self) -> String {
        format!("{}/sdk", self.server.uri())
    }

    /// Number of machines, templates and inaccessible ones included.
    pub fn vm_count(&self) -> usize {
        self.state().datacenters.iter().map(|d| d.vms.len()).sum()
    }

    /// The instance uuids of every machine, in inventory order.
    pub fn instance_uuids(&self) -> Vec<String> {
        self.state()
            .datacenters
            .iter()
            .flat_map(|d| d.vms.iter().map(|v| v.instance_uuid.clone()))
            .collect()
    }

    /// Every machine, in inventory order.
    pub fn vms(&self) -> Vec<SimVm> {
        self.state()
            .datacenters
            .iter()
            .flat_map(|d| d.vms.iter().cloned())
            .collect()
    }

    fn add(&self, datacenter: &str, shape: impl FnOnce(&mut SimVm)) -> String {
        let mut state = self.state();
        state.next_id += 1;
        let n = state.next_id;
        let dc = state
            .datacenters
            .iter_mut()
            .find(|d| d.name == datacenter)
            .unwrap_or_else(|| panic!("no datacenter {datacenter}"));
        let mut vm = SimVm::generated(n, datacenter, dc.vms.len());
        shape(&mut vm);
        let id = vm.instance_uuid.clone();
        dc.vms.push(vm);
        id
    }

    /// Adds a template (which providers skip) to `datacenter`; returns its instance uuid.
    pub fn add_template(&self, datacenter: &str) -> String {
        self.add(datacenter, |vm| {
            vm.template = true;
            vm.power_state = "poweredOff".into();
            vm.name = format!("{}-template", vm.name);
        })
    }

    /// Adds a machine whose configuration cannot be read (connection state
    /// `inaccessible`, no `config.*` properties); returns its moref.
    pub fn add_inaccessible(&self, datacenter: &str) -> String {
        let mut moref = String::new();
        self.add(datacenter, |vm| {
            vm.inaccessible = true;
            vm.ips.clear();
            vm.host_name = None;
            moref = vm.moref.clone();
        });
        moref
    }

    /// Sets a machine's power state (`poweredOn`, `poweredOff`, `suspended`).
    pub fn set_power_state(&self, instance_uuid: &str, power_state: &str) {
        let mut state = self.state();
        let vm = state
            .datacenters
            .iter_mut()
            .flat_map(|d| d.vms.iter_mut())
            .find(|v| v.instance_uuid == instance_uuid)
            .unwrap_or_else(|| panic!("no machine {instance_uuid}"));
        vm.power_state = power_state.to_owned();
    }

    /// Answers every request `latency` after the simulator began to handle it (real
    /// time): building the answer is part of the latency, as it is for a vendor.
    pub fn set_latency(&self, latency: Option<Duration>) {
        self.state().latency = latency;
    }

    /// Removes a machine, as a destroy would.
    pub fn remove_vm(&self, instance_uuid: &str) {
        for dc in &mut self.state().datacenters {
            dc.vms.retain(|v| v.instance_uuid != instance_uuid);
        }
    }

    /// Destroys the machines `instance_uuids` right after the `nth` call (counted from
    /// the simulator's start) of `operation` is answered: e.g. between a listing's
    /// `RetrievePropertiesEx` and its `ContinueRetrievePropertiesEx`.
    pub fn remove_vms_after(&self, operation: &str, nth: usize, instance_uuids: Vec<String>) {
        self.state()
            .changes
            .push((operation.to_owned(), nth, instance_uuids, Change::Remove));
    }

    /// Moves the machines `instance_uuids` to `datacenter` (a cross-datacenter
    /// migration: same uuids and morefs) right after the `nth` call of `operation` is
    /// answered: e.g. into a datacenter a listing has read already, which then misses
    /// them although they exist.
    pub fn move_vms_after(
        &self,
        operation: &str,
        nth: usize,
        instance_uuids: Vec<String>,
        datacenter: &str,
    ) {
        self.state().changes.push((
            operation.to_owned(),
            nth,
            instance_uuids,
            Change::MoveTo(datacenter.to_owned()),
        ));
    }

    /// Caps every page at `n` objects, whatever `maxObjects` asks.
    pub fn cap_pages(&self, n: usize) {
        self.state().page_cap = Some(n.max(1));
    }

    /// Ends every session after `calls` more answered calls: the next call answers a
    /// `NotAuthenticated` fault, and the session's views and tokens are gone.
    pub fn expire_sessions_after(&self, calls: usize) {
        self.state().expire_after = Some(calls);
    }

    /// The next call of `operation` answers HTTP 500 with a vim25 `fault` (e.g.
    /// `NoPermission`) and `message`.
    pub fn fail_next(&self, operation: &str, fault: &str, message: &str) {
        let nth = self.count(operation) + 1;
        self.fail_nth(operation, nth, fault, message);
    }

    /// The `nth` call (from 1, counting every call made so far) of `operation` answers
    /// HTTP 500 with a vim25 `fault`.
    pub fn fail_nth(&self, operation: &str, nth: usize, fault: &str, message: &str) {
        self.inject(
            operation,
            nth,
            Injected::Fault {
                fault: fault.to_owned(),
                message: message.to_owned(),
            },
        );
    }

    /// The `nth` call of `operation` answers this HTTP status with an empty body.
    pub fn fail_nth_with_status(&self, operation: &str, nth: usize, status: u16) {
        self.inject(operation, nth, Injected::Status(status));
    }

    /// The next call of `operation` answers HTTP 200 with a truncated envelope.
    pub fn malformed_next(&self, operation: &str) {
        let nth = self.count(operation) + 1;
        self.inject(operation, nth, Injected::Malformed);
    }

    fn inject(&self, operation: &str, nth: usize, what: Injected) {
        self.state()
            .injected
            .entry(operation.to_owned())
            .or_default()
            .push((nth, what));
    }

    /// The operations called so far, in order.
    pub fn calls(&self) -> Vec<String> {
        self.state().calls.clone()
    }

    /// How many times `operation` was called.
    pub fn count(&self, operation: &str) -> usize {
        self.state()
            .calls
            .iter()
            .filter(|c| *c == operation)
            .count()
    }

    /// `Login` calls so far, failed ones included.
    pub fn login_attempts(&self) -> usize {
        self.state().login_attempts
    }

    /// Logged-in sessions not logged out (nor expired).
    pub fn sessions_alive(&self) -> usize {
        self.state().sessions.len()
    }

    /// Container views not destroyed, over live sessions.
    pub fn views_alive(&self) -> usize {
        self.state().sessions.values().map(|s| s.views.len()).sum()
    }
}

struct Handler {
    state: Arc<Mutex<State>>,
}

impl Respond for Handler {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let started = std::time::Instant::now();
        let answer = self.handle(request);
        let latency = self.state.lock().unwrap_or_else(|e| e.into_inner()).latency;
        crate::with_latency(answer, latency, started)
    }
}

impl Handler {
    fn handle(&self, request: &Request) -> ResponseTemplate {
        let body = String::from_utf8_lossy(&request.body).into_owned();
        let cookie = request
            .headers
            .get("cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|c| {
                c.split(';')
                    .map(str::trim)
                    .find_map(|p| p.strip_prefix("vmware_soap_session="))
            })
            .map(str::to_owned);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(op) = operation(&body) else {
            return fault_response("InvalidRequest", "not a SOAP request");
        };
        state.calls.push(op.clone());
        *state.call_counts.entry(op.clone()).or_default() += 1;
        let content_type_ok = request
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/xml"));
        let action_ok = request
            .headers
            .get("soapaction")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("urn:vim25/"));
        if !content_type_ok || !action_ok {
            return fault_response("InvalidRequest", "missing Content-Type or SOAPAction");
        }
        let nth = state.call_counts[&op];
        let injected = state.injected.get_mut(&op).and_then(|list| {
            let at = list.iter().position(|(n, _)| *n == nth)?;
            Some(list.remove(at).1)
        });
        if let Some(injected) = injected {
            if op == "Login" {
                state.login_attempts += 1;
            }
            return match injected {
                Injected::Fault { fault, message } => fault_response(&fault, &message),
                Injected::Status(status) => ResponseTemplate::new(status),
                Injected::Malformed => ResponseTemplate::new(200)
                    .insert_header("content-type", "text/xml; charset=utf-8")
                    .set_body_string(format!(
                        r#"<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="{ENV}"><soapenv:Body><{op}Response xmlns="urn:vim25"><returnval>"#
                    )),
            };
        }
        let answered = state.answer(&op, &body, cookie);
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut state.changes)
            .into_iter()
            .partition(|(o, n, _, _)| *o == op && *n == nth);
        state.changes = later;
        for (_, _, uuids, change) in due {
            let mut taken = Vec::new();
            for dc in &mut state.datacenters {
                let (out, kept) = std::mem::take(&mut dc.vms)
                    .into_iter()
                    .partition(|v| uuids.contains(&v.instance_uuid));
                dc.vms = kept;
                taken.extend::<Vec<SimVm>>(out);
            }
            if let Change::MoveTo(name) = change {
                let dc = state
                    .datacenters
                    .iter_mut()
                    .find(|d| d.name == name)
                    .unwrap_or_else(|| panic!("no datacenter {name}"));
                dc.vms.extend(taken);
                // Creation order, which `find_vm` relies on.
                dc.vms.sort_by_key(|v| {
                    v.moref
                        .strip_prefix("vm-")
                        .and_then(|n| n.parse::<usize>().ok())
                });
            }
        }
        answered
    }
}

const ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";

impl State {
    fn answer(&mut self, op: &str, body: &str, cookie: Option<String>) -> ResponseTemplate {
        let version = self.api_version.as_deref().unwrap_or("8.0.2.0");
        let before_6_7 = version
            .split('.')
            .map(|n| n.parse::<u32>().unwrap_or(0))
            .take(2)
            .lt([6, 7]);
        if op == "RetrievePropertiesEx"
            && before_6_7
            && body.contains("<pathSet>config.createDate</pathSet>")
        {
            return fault_response("InvalidProperty", "config.createDate");
        }
        match op {
            "RetrieveServiceContent" => {
                // Like vCenter, the first call gets a cookie that Login then authenticates.
                let cookie = format!("sim-{:08x}", self.calls.len() * 7919 + 17);
                self.anonymous.push(cookie.clone());
                return answer(
                    op,
                    &format!(r#"<returnval><rootFolder type="Folder">group-d1</rootFolder><propertyCollector type="PropertyCollector">propertyCollector</propertyCollector><viewManager type="ViewManager">ViewManager</viewManager><about><name>Simulated vCenter</name><apiType>VirtualCenter</apiType><apiVersion>{}</apiVersion></about><sessionManager type="SessionManager">SessionManager</sessionManager><searchIndex type="SearchIndex">SearchIndex</searchIndex></returnval>"#, escape(version)),
                )
                .insert_header(
                    "set-cookie",
                    format!("vmware_soap_session=\"{cookie}\"; Path=/; HttpOnly; Secure;"),
                );
            }
            "Login" => {
                self.login_attempts += 1;
                let user = unescape(between(body, "<userName>", "</userName>").unwrap_or_default());
                let password =
                    unescape(between(body, "<password>", "</password>").unwrap_or_default());
                if user != SimulatedVsphere::USER || password != SimulatedVsphere::PASSWORD {
                    return fault_response(
                        "InvalidLogin",
                        "Cannot complete login due to an incorrect user name or password.",
                    );
                }
                // Authenticate the anonymous session, or start one.
                let cookie = match cookie.filter(|c| self.anonymous.contains(c)) {
                    Some(c) => {
                        self.anonymous.retain(|a| *a != c);
                        c
                    }
                    None => format!("sim-login-{:08x}", self.calls.len() * 104_729 + 3),
                };
                self.sessions.insert(cookie.clone(), Session::default());
                return answer(
                    op,
                    &format!(
                        "<returnval><key>{cookie}</key><userName>{}</userName></returnval>",
                        escape(&user)
                    ),
                )
                .insert_header(
                    "set-cookie",
                    format!("vmware_soap_session=\"{cookie}\"; Path=/; HttpOnly; Secure;"),
                );
            }
            _ => {}
        }
        // Everything else needs a session.
        let Some(cookie) = cookie.filter(|c| self.sessions.contains_key(c)) else {
            return fault_response("NotAuthenticated", "The session is not authenticated.");
        };
        if let Some(left) = self.expire_after.as_mut() {
            if *left == 0 {
                self.expire_after = None;
                self.sessions.remove(&cookie);
                return fault_response("NotAuthenticated", "The session is not authenticated.");
            }
            *left -= 1;
        }
        let calls = self.calls.len();
        let page_cap = self.page_cap;
        let datacenters = &self.datacenters;
        let session = self.sessions.get_mut(&cookie).expect("checked above");
        match op {
            "Logout" => {
                self.sessions.remove(&cookie);
                answer(op, "")
            }
            "CreateContainerView" => {
                let container = between(body, "<container type=\"", "</container>")
                    .and_then(|c| c.split_once("\">"))
                    .map(|(_, v)| v.to_owned())
                    .unwrap_or_default();
                let kind = between(body, "</container><type>", "</type>")
                    .unwrap_or_default()
                    .to_owned();
                let known =
                    container == "group-d1" || datacenters.iter().any(|d| d.moref == container);
                if !known {
                    return fault_response("ManagedObjectNotFound", "no such container");
                }
                let id = format!("session[{cookie}]view-{calls}");
                session.views.insert(id.clone(), (container, kind));
                answer(
                    op,
                    &format!(
                        r#"<returnval type="ContainerView">{}</returnval>"#,
                        escape(&id)
                    ),
                )
            }
            "DestroyView" => {
                let id = unescape(
                    between(body, "<_this type=\"ContainerView\">", "</_this>").unwrap_or_default(),
                );
                if session.views.remove(&id).is_none() {
                    return fault_response("ManagedObjectNotFound", "no such view");
                }
                answer(op, "")
            }
            "FindByUuid" => {
                let uuid = unescape(between(body, "<uuid>", "</uuid>").unwrap_or_default());
                let vm_search = between(body, "<vmSearch>", "</vmSearch>") == Some("true");
                let instance = between(body, "<instanceUuid>", "</instanceUuid>") == Some("true");
                let found = datacenters.iter().flat_map(|d| &d.vms).find(|v| {
                    vm_search
                        && if instance {
                            v.instance_uuid == uuid
                        } else {
                            v.bios_uuid == uuid
                        }
                });
                match found {
                    Some(vm) => answer(
                        op,
                        &format!(
                            r#"<returnval type="VirtualMachine">{}</returnval>"#,
                            vm.moref
                        ),
                    ),
                    None => answer(op, ""),
                }
            }
            "RetrievePropertiesEx" if body.contains("<obj type=\"VirtualMachine\">") => {
                // One machine, with the datacenter its `parent` chain leads to.
                let moref = unescape(
                    between(body, "<obj type=\"VirtualMachine\">", "</obj>").unwrap_or_default(),
                );
                let Some(dc) = datacenters
                    .iter()
                    .find(|d| d.vms.iter().any(|v| v.moref == moref))
                else {
                    return fault_response(
                        "ManagedObjectNotFound",
                        "The object has already been deleted or has not been completely created",
                    );
                };
                let vm = dc
                    .vms
                    .iter()
                    .find(|v| v.moref == moref)
                    .expect("found above");
                // The machine's paths: those of the first propSet.
                let vm_spec = between(body, "<propSet>", "</propSet>").unwrap_or_default();
                let paths: Vec<String> = vm_spec
                    .split("<pathSet>")
                    .skip(1)
                    .filter_map(|p| p.split_once("</pathSet>").map(|(p, _)| p.to_owned()))
                    .collect();
                let mut out = String::from("<returnval>");
                out.push_str(&vm_object(vm, &paths));
                if body.contains("<type>Datacenter</type>") && body.contains("<path>parent</path>")
                {
                    out.push_str(&format!(
                        r#"<objects><obj type="Datacenter">{}</obj><propSet><name>name</name><val xsi:type="xsd:string">{}</val></propSet></objects>"#,
                        dc.moref,
                        escape(&dc.name)
                    ));
                }
                out.push_str("</returnval>");
                answer(op, &out)
            }
            "RetrievePropertiesEx" => {
                let view = unescape(
                    between(body, "<obj type=\"ContainerView\">", "</obj>").unwrap_or_default(),
                );
                let Some((container, kind)) = session.views.get(&view).cloned() else {
                    return fault_response("ManagedObjectNotFound", "no such view");
                };
                let paths: Vec<String> = body
                    .split("<pathSet>")
                    .skip(1)
                    .filter_map(|p| p.split_once("</pathSet>").map(|(p, _)| p.to_owned()))
                    .collect();
                let max = between(body, "<maxObjects>", "</maxObjects>")
                    .and_then(|m| m.parse::<usize>().ok())
                    .unwrap_or(usize::MAX);
                let ids: VecDeque<String> = match kind.as_str() {
                    "Datacenter" => datacenters.iter().map(|d| d.moref.clone()).collect(),
                    "VirtualMachine" => datacenters
                        .iter()
                        .filter(|d| container == "group-d1" || d.moref == container)
                        .flat_map(|d| d.vms.iter().map(|v| v.moref.clone()))
                        .collect(),
                    _ => return fault_response("InvalidType", "unsupported type"),
                };
                let rest = Remaining {
                    kind,
                    ids,
                    paths,
                    max: max.min(page_cap.unwrap_or(usize::MAX)),
                };
                page(op, session, datacenters, rest, calls)
            }
            "ContinueRetrievePropertiesEx" => {
                let token = unescape(between(body, "<token>", "</token>").unwrap_or_default());
                let Some(rest) = session.tokens.remove(&token) else {
                    return fault_response("InvalidArgument", "invalid token");
                };
                page(op, session, datacenters, rest, calls)
            }
            other => fault_response("MethodNotFound", &format!("{other} is not simulated")),
        }
    }
}

/// Answers the next page of `rest`, keeping a token for what remains after it.
fn page(
    op: &str,
    session: &mut Session,
    datacenters: &[Datacenter],
    rest: Remaining,
    calls: usize,
) -> ResponseTemplate {
    let Remaining {
        kind,
        mut ids,
        paths,
        max,
    } = rest;
    let max = max.max(1);
    let take = max.min(ids.len());
    let now: Vec<String> = ids.drain(..take).collect();
    let more = !ids.is_empty();
    if now.is_empty() && !more {
        return answer(op, "");
    }
    let mut out = String::from("<returnval>");
    if more {
        let token = format!("tok-{calls}");
        out.push_str(&format!("<token>{token}</token>"));
        session.tokens.insert(
            token,
            Remaining {
                kind: kind.clone(),
                ids,
                paths: paths.clone(),
                max,
            },
        );
    }
    for id in &now {
        match kind.as_str() {
            "Datacenter" => {
                if let Some(dc) = datacenters.iter().find(|d| d.moref == *id) {
                    out.push_str(&format!(
                        r#"<objects><obj type="Datacenter">{}</obj><propSet><name>name</name><val xsi:type="xsd:string">{}</val></propSet></objects>"#,
                        dc.moref,
                        escape(&dc.name)
                    ));
                }
            }
            _ => {
                // A machine removed since the listing started is skipped, as vCenter does.
                if let Some(vm) = find_vm(datacenters, id) {
                    out.push_str(&vm_object(vm, &paths));
                }
            }
        }
    }
    out.push_str("</returnval>");
    answer(op, &out)
}

/// The machine `vm-<n>`. Each datacenter keeps its machines in creation order, so their
/// moref numbers increase and a binary search finds one: a linear scan per machine made a
/// listing quadratic in the inventory's size.
fn find_vm<'a>(datacenters: &'a [Datacenter], moref: &str) -> Option<&'a SimVm> {
    let number = |m: &str| m.strip_prefix("vm-").and_then(|n| n.parse::<usize>().ok());
    let Some(n) = number(moref) else {
        return datacenters
            .iter()
            .flat_map(|d| &d.vms)
            .find(|v| v.moref == moref);
    };
    datacenters
        .iter()
        .find_map(|d| {
            d.vms
                .binary_search_by_key(&Some(n), |v| number(&v.moref))
                .ok()
                .map(|i| &d.vms[i])
        })
        // Removed (or, were the order ever broken, misplaced): look everywhere.
        .or_else(|| {
            datacenters
                .iter()
                .flat_map(|d| &d.vms)
                .find(|v| v.moref == moref)
        })
}

fn vm_object(vm: &SimVm, paths: &[String]) -> String {
    let mut props: BTreeMap<&str, String> = BTreeMap::new();
    let s = |v: &str| format!(r#"<val xsi:type="xsd:string">{}</val>"#, escape(v));
    props.insert("name", s(&vm.name));
    props.insert(
        "runtime.connectionState",
        s(if vm.inaccessible {
            "inaccessible"
        } else {
            "connected"
        }),
    );
    props.insert(
        "runtime.powerState",
        format!(
            r#"<val xsi:type="VirtualMachinePowerState">{}</val>"#,
            vm.power_state
        ),
    );
    if !vm.inaccessible {
        props.insert("config.instanceUuid", s(&vm.instance_uuid));
        props.insert("config.uuid", s(&vm.bios_uuid));
        props.insert(
            "config.template",
            format!(r#"<val xsi:type="xsd:boolean">{}</val>"#, vm.template),
        );
        props.insert(
            "config.hardware.numCPU",
            format!(r#"<val xsi:type="xsd:int">{}</val>"#, vm.num_cpu),
        );
        props.insert(
            "config.hardware.memoryMB",
            format!(r#"<val xsi:type="xsd:int">{}</val>"#, vm.memory_mb),
        );
        props.insert("config.guestId", s(&vm.guest_id));
        props.insert("config.guestFullName", s(&vm.guest_full_name));
        props.insert(
            "config.createDate",
            r#"<val xsi:type="xsd:dateTime">2024-01-02T03:04:05.123Z</val>"#.into(),
        );
        if let Some(first) = vm.ips.first() {
            props.insert("guest.ipAddress", s(first));
            let ips: String = vm
                .ips
                .iter()
                .map(|ip| format!("<ipAddress>{}</ipAddress>", escape(ip)))
                .collect();
            props.insert(
                "guest.net",
                format!(r#"<val xsi:type="ArrayOfGuestNicInfo"><GuestNicInfo><network>VM Network</network>{ips}<macAddress>00:50:56:00:00:01</macAddress><connected>true</connected><deviceConfigId>4000</deviceConfigId></GuestNicInfo></val>"#),
            );
        }
        if let Some(h) = &vm.host_name {
            props.insert("guest.hostName", s(h));
        }
    }
    let mut out = format!(r#"<objects><obj type="VirtualMachine">{}</obj>"#, vm.moref);
    for path in paths {
        if let Some(val) = props.get(path.as_str()) {
            out.push_str(&format!("<propSet><name>{path}</name>{val}</propSet>"));
        }
    }
    out.push_str("</objects>");
    out
}

/// The SOAP answer of a `RetrievePropertiesEx` holding `count` generated machines of
/// `datacenter` with every property a listing asks for: a page as the simulator serves
/// it, for benchmarks of the decoding.
pub fn retrieve_properties_answer(datacenter: &str, count: usize) -> String {
    let paths: Vec<String> = [
        "name",
        "config.instanceUuid",
        "config.uuid",
        "config.template",
        "config.hardware.numCPU",
        "config.hardware.memoryMB",
        "config.guestFullName",
        "config.guestId",
        "config.createDate",
        "guest.ipAddress",
        "guest.net",
        "guest.hostName",
        "runtime.powerState",
        "runtime.connectionState",
    ]
    .map(str::to_owned)
    .to_vec();
    let objects: String = (0..count)
        .map(|i| vm_object(&SimVm::generated(i + 1, datacenter, i), &paths))
        .collect();
    envelope(
        "RetrievePropertiesEx",
        &format!("<returnval>{objects}</returnval>"),
    )
}

fn envelope(op: &str, inner: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{ENV}" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><{op}Response xmlns="urn:vim25">{inner}</{op}Response></soapenv:Body></soapenv:Envelope>"#
    )
}

fn answer(op: &str, inner: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "text/xml; charset=utf-8")
        .set_body_string(envelope(op, inner))
}

fn fault_response(fault: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(500)
        .insert_header("content-type", "text/xml; charset=utf-8")
        .set_body_string(format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{ENV}" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>{}</faultstring><detail><{fault}Fault xmlns="urn:vim25" xsi:type="{fault}"></{fault}Fault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#,
            escape(message)
        ))
}

/// The operation of a request: the first element in the SOAP body.
fn operation(body: &str) -> Option<String> {
    let rest = &body[body.find("Body>")? + 5..];
    let rest = &rest[rest.find('<')? + 1..];
    let name = &rest[..rest.find([' ', '>', '/'])?];
    Some(name.rsplit(':').next().unwrap_or(name).to_owned())
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(&s[from..from + len])
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_found_in_envelopes() {
        let body = r#"<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="x"><soapenv:Body><Login xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this></Login></soapenv:Body></soapenv:Envelope>"#;
        assert_eq!(operation(body).as_deref(), Some("Login"));
        assert_eq!(operation("<nothing/>"), None);
        assert_eq!(unescape(&escape("a<&>\"'b")), "a<&>\"'b");
    }

    #[tokio::test]
    async fn machines_are_generated_and_shaped() {
        let sim = SimulatedVsphere::start(&[("DC0", 3), ("DC1", 2)]).await;
        let t = sim.add_template("DC1");
        let moref = sim.add_inaccessible("DC0");
        let vms = sim.vms();
        assert_eq!(vms.len(), 7);
        assert!(vms.iter().any(|v| v.instance_uuid == t && v.template));
        assert!(vms.iter().any(|v| v.moref == moref && v.inaccessible));
        let ids = sim.instance_uuids();
        sim.remove_vm(&ids[0]);
        sim.set_power_state(&ids[1], "suspended");
        assert_eq!(sim.vm_count(), 6);
        assert_eq!(sim.vms()[0].power_state, "suspended");
    }
}
