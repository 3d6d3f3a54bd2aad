#![cfg_attr(not(feature = "vsphere"), allow(missing_docs))]
#![cfg(feature = "vsphere")]
//! End-to-end syncs of vSphere secrets through the `Syncer`: against the testkit's
//! `SimulatedVsphere` (token paging, faults, session expiry), and against govmomi's real
//! simulator when `CMDB_TEST_VCSIM_URL` is set (`.ci/vcsim.sh` starts one).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use cmdb_core::{ErrorKind, HostQuery, HostStatus, HostStore, MemoryHostStore, OsType, Vendor};
use cmdb_http::{build_request, DefaultClassifier, HttpClient, HttpConfig, RetryConfig};
use cmdb_sync::{SyncRequest, Syncer};
use cmdb_testkit::vsphere::SimulatedVsphere;

struct Fixture {
    syncer: Syncer,
    store: Arc<MemoryHostStore>,
    secret_id: String,
}

async fn fixture(address: &str, user: &str, password: &str) -> Fixture {
    let synced = common::builtin_syncer(Vendor::Vsphere, user, password, "", address).await;
    Fixture {
        syncer: synced.syncer,
        store: synced.hosts,
        secret_id: synced.secret.id,
    }
}

fn region_of(address: &str) -> String {
    let url = url_parts(address);
    url.0
}

/// (host[:port], sdk path) of an http(s) URL, without a URL crate.
fn url_parts(address: &str) -> (String, String) {
    let rest = address.split_once("://").map(|(_, r)| r).unwrap_or(address);
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let authority = authority
        .strip_suffix(":443")
        .filter(|_| address.starts_with("https"))
        .or_else(|| {
            authority
                .strip_suffix(":80")
                .filter(|_| address.starts_with("http:"))
        })
        .unwrap_or(authority);
    (authority.to_owned(), path.to_owned())
}

async fn stored(
    store: &MemoryHostStore,
    region: &str,
    secret_id: &str,
) -> Vec<cmdb_core::StoredHost> {
    let mut all = Vec::new();
    let mut query = HostQuery::default()
        .with_vendor(Vendor::Vsphere)
        .with_region(region)
        .with_secret_id(secret_id)
        .with_page_size(cmdb_core::MAX_PAGE_SIZE)
        .with_page_number(1);
    loop {
        let list = store.query(&query).await.unwrap();
        let done = list.items.len() < query.page_size as usize;
        all.extend(list.items);
        if done {
            return all;
        }
        query.page_number += 1;
    }
}

// ---------------------------------------------------------------------------------------
// Against the testkit's simulator.

#[tokio::test]
async fn a_simulated_vcenter_syncs_every_page_and_datacenter() {
    let sim = SimulatedVsphere::start(&[("DC-East", 230), ("DC-West", 40)]).await;
    sim.add_template("DC-East");
    sim.add_inaccessible("DC-West");
    let f = fixture(
        &sim.uri(),
        SimulatedVsphere::USER,
        SimulatedVsphere::PASSWORD,
    )
    .await;
    let response = f
        .syncer
        .sync(SyncRequest::new(&f.secret_id, ""))
        .await
        .unwrap();
    assert!(response.complete, "{response:?}");
    // The inaccessible machine has no instance uuid: a failed detail naming its moref.
    assert_eq!(
        (response.total_succeed, response.total_failed),
        (270, 1),
        "{response:?}"
    );
    assert_eq!(response.created, 270);
    let failed: Vec<_> = response.details.iter().filter(|d| !d.is_success).collect();
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0].message.contains("no config.instanceUuid"),
        "{failed:?}"
    );
    // 230 machines in pages of 100, one template skipped: 3 pages; 41 in DC-West: 1.
    assert_eq!(response.pages, 4);
    let region = region_of(&sim.uri());
    let hosts = stored(&f.store, &region, &f.secret_id).await;
    assert_eq!(hosts.len(), 270);
    let east = hosts
        .iter()
        .filter(|h| h.host.zone.as_deref() == Some("DC-East"))
        .count();
    assert_eq!(east, 230);
    assert_eq!(sim.sessions_alive(), 0, "logged out");
    assert_eq!(sim.views_alive(), 0, "views destroyed");
}

#[tokio::test]
async fn a_second_sync_updates_power_changes_and_releases_removed_machines() {
    let sim = SimulatedVsphere::start(&[("DC0", 30)]).await;
    let f = fixture(
        &sim.uri(),
        SimulatedVsphere::USER,
        SimulatedVsphere::PASSWORD,
    )
    .await;
    let first = f
        .syncer
        .sync(SyncRequest::new(&f.secret_id, ""))
        .await
        .unwrap();
    assert_eq!(first.created, 30);
    let ids = sim.instance_uuids();
    sim.set_power_state(&ids[0], "poweredOff");
    sim.set_power_state(&ids[1], "suspended");
    sim.remove_vm(&ids[2]);
    let second = f
        .syncer
        .sync(SyncRequest::new(&f.secret_id, ""))
        .await
        .unwrap();
    assert!(second.complete);
    assert_eq!(
        (
            second.total_succeed,
            second.updated,
            second.unchanged,
            second.released
        ),
        (29, 2, 27, 1)
    );
    // FindByUuid confirmed it gone before the release.
    assert_eq!(
        (second.release_confirmed, second.release_found_alive),
        (1, 0)
    );
    assert_eq!(sim.count("FindByUuid"), 1);
    let hosts = stored(&f.store, &region_of(&sim.uri()), &f.secret_id).await;
    let by_id: BTreeMap<_, _> = hosts
        .iter()
        .map(|h| (h.host.instance_id.as_str(), h))
        .collect();
    assert_eq!(by_id[ids[0].as_str()].host.status, HostStatus::Stopped);
    assert_eq!(by_id[ids[1].as_str()].host.status, HostStatus::Suspended);
    assert!(by_id[ids[2].as_str()].released_at.is_some());
}

#[tokio::test]
async fn a_wrong_password_fails_the_sync_as_unauthenticated_without_release() {
    let sim = SimulatedVsphere::start(&[("DC0", 5)]).await;
    let f = fixture(&sim.uri(), SimulatedVsphere::USER, "wrong").await;
    let result = f.syncer.sync(SyncRequest::new(&f.secret_id, "")).await;
    // The Syncer answers an error that ends the listing before any page as an error.
    let (kind, code) = match result {
        Ok(response) => {
            assert!(!response.complete);
            let report = response.error.expect("an error report");
            (report.kind, report.code)
        }
        Err(e) => (e.kind(), e.vendor_error().and_then(|v| v.code.clone())),
    };
    assert_eq!(kind, ErrorKind::Unauthenticated);
    assert_eq!(code.as_deref(), Some("InvalidLogin"));
    assert_eq!(f.store.query(&HostQuery::default()).await.unwrap().total, 0);
    assert_eq!(sim.login_attempts(), 1, "a wrong password is never retried");
}

// ---------------------------------------------------------------------------------------
// Against govmomi's vcsim.

/// A tiny vim25 client of our own for the test's side of the story: what vcsim reports,
/// and changes made through its API. Independent of the provider under test.
struct Vim {
    http: HttpClient,
    sdk: String,
    cookie: String,
}

#[derive(Debug, Clone, Default)]
struct VcsimVm {
    moref: String,
    name: String,
    power_state: String,
    num_cpu: u32,
    memory_mb: u64,
    template: bool,
    ip: Option<String>,
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(&s[from..from + len])
}

impl Vim {
    async fn login(sdk: &str) -> Vim {
        // vcsim started with -tls has a self-signed certificate: trust it only when told
        // to, as the provider does (govc's GOVC_INSECURE).
        let insecure = std::env::var("GOVC_INSECURE").is_ok_and(|v| v == "1" || v == "true");
        let config = HttpConfig::default()
            .with_retry(RetryConfig::no_retry())
            .with_accept_invalid_certs(insecure);
        let http = HttpClient::new(config, None, DefaultClassifier::new(None)).unwrap();
        let mut vim = Vim {
            http,
            sdk: sdk.to_owned(),
            cookie: String::new(),
        };
        let (_, cookie) = vim
            .call_raw(
                r#"<Login xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this><userName>tester</userName><password>tester</password></Login>"#,
            )
            .await;
        let cookie = cookie.expect("vcsim sets a session cookie at login");
        vim.cookie = cookie.split(';').next().unwrap().to_owned();
        vim
    }

    async fn call_raw(&self, body: &str) -> (String, Option<String>) {
        let xml = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"#
        );
        let response = self
            .http
            .send("Raw", || {
                let mut b = self
                    .http
                    .reqwest()
                    .post(&self.sdk)
                    .header("Content-Type", "text/xml; charset=utf-8")
                    .header("SOAPAction", "urn:vim25/6.5")
                    .body(xml.clone());
                if !self.cookie.is_empty() {
                    b = b.header("Cookie", self.cookie.clone());
                }
                build_request(b)
            })
            .await
            .unwrap_or_else(|e| panic!("vcsim call failed: {e}"));
        (
            response.text(),
            response.header("set-cookie").map(str::to_owned),
        )
    }

    async fn call(&self, body: &str) -> String {
        self.call_raw(body).await.0
    }

    /// Every virtual machine, templates included, from one container view.
    async fn vms(&self) -> Vec<VcsimVm> {
        let view = self
            .call(r#"<CreateContainerView xmlns="urn:vim25"><_this type="ViewManager">ViewManager</_this><container type="Folder">group-d1</container><type>VirtualMachine</type><recursive>true</recursive></CreateContainerView>"#)
            .await;
        let view = between(&view, "<returnval type=\"ContainerView\">", "</returnval>")
            .expect("a container view")
            .to_owned();
        let mut answer = self.call(&format!(
            r#"<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this><specSet><propSet><type>VirtualMachine</type><pathSet>name</pathSet><pathSet>runtime.powerState</pathSet><pathSet>config.template</pathSet><pathSet>config.hardware.numCPU</pathSet><pathSet>config.hardware.memoryMB</pathSet><pathSet>guest.ipAddress</pathSet></propSet><objectSet><obj type="ContainerView">{view}</obj><skip>true</skip><selectSet xsi:type="TraversalSpec"><name>v</name><type>ContainerView</type><path>view</path><skip>false</skip></selectSet></objectSet></specSet><options></options></RetrievePropertiesEx>"#
        )).await;
        let mut vms = Vec::new();
        loop {
            for object in answer.split("<objects>").skip(1) {
                let mut vm = VcsimVm {
                    moref: between(object, "<obj type=\"VirtualMachine\">", "</obj>")
                        .unwrap()
                        .to_owned(),
                    ..VcsimVm::default()
                };
                for prop in object.split("<propSet>").skip(1) {
                    let name = between(prop, "<name>", "</name>").unwrap();
                    let val = between(prop, "<val", "</val>")
                        .and_then(|v| v.split_once('>'))
                        .map(|(_, v)| v)
                        .unwrap_or_default();
                    match name {
                        "name" => vm.name = val.to_owned(),
                        "runtime.powerState" => vm.power_state = val.to_owned(),
                        "config.template" => vm.template = val == "true",
                        "config.hardware.numCPU" => vm.num_cpu = val.parse().unwrap(),
                        "config.hardware.memoryMB" => vm.memory_mb = val.parse().unwrap(),
                        "guest.ipAddress" if !val.is_empty() => vm.ip = Some(val.to_owned()),
                        _ => {}
                    }
                }
                vms.push(vm);
            }
            match between(&answer, "<token>", "</token>") {
                Some(token) => {
                    answer = self.call(&format!(r#"<ContinueRetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this><token>{token}</token></ContinueRetrievePropertiesEx>"#)).await;
                }
                None => break,
            }
        }
        self.call(&format!(r#"<DestroyView xmlns="urn:vim25"><_this type="ContainerView">{view}</_this></DestroyView>"#)).await;
        vms
    }

    /// Runs a VM task and waits until its effect shows in the inventory (vcsim finishes
    /// tasks at once and forgets them; a real vCenter may take a while).
    async fn task(&self, method: &str, vm: &str, done: impl Fn(Option<&VcsimVm>) -> bool) {
        let answer = self
            .call(&format!(r#"<{method} xmlns="urn:vim25"><_this type="VirtualMachine">{vm}</_this></{method}>"#))
            .await;
        assert!(
            answer.contains(r#"<returnval type="Task">"#),
            "{method} {vm}: {answer}"
        );
        for _ in 0..100 {
            let vms = self.vms().await;
            if done(vms.iter().find(|v| v.moref == vm)) {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("{method} {vm} did not take effect");
    }

    async fn power_off(&self, vm: &str) {
        self.task("PowerOffVM_Task", vm, |v| {
            v.is_some_and(|v| v.power_state == "poweredOff")
        })
        .await;
    }

    async fn destroy(&self, vm: &str) {
        self.task("Destroy_Task", vm, |v| v.is_none()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vcsim_syncs_every_vm_then_sees_power_offs_and_destroyed_vms() {
    let Ok(sdk) = std::env::var("CMDB_TEST_VCSIM_URL") else {
        eprintln!(
            "skipping vcsim_syncs_every_vm_then_sees_power_offs_and_destroyed_vms: \
             CMDB_TEST_VCSIM_URL is not set (run `eval \"$(.ci/vcsim.sh)\"` to start vcsim)"
        );
        return;
    };
    let vim = Vim::login(&sdk).await;
    let reported = vim.vms().await;
    let machines: BTreeMap<&str, &VcsimVm> = reported
        .iter()
        .filter(|v| !v.template)
        .map(|v| (v.name.as_str(), v))
        .collect();
    assert!(reported.iter().any(|v| v.template), "vcsim has templates");
    assert!(machines.len() >= 20, "vcsim has a large inventory");

    let f = fixture(&sdk, "cmdb", "vcsim-password").await;
    let region = region_of(&sdk);
    let first = f
        .syncer
        .sync(SyncRequest::new(&f.secret_id, ""))
        .await
        .unwrap();
    assert!(first.complete, "{:?}", first.error);
    assert_eq!(first.total_succeed, machines.len() as u64);
    assert_eq!(first.created, machines.len() as u64);
    let hosts = stored(&f.store, &region, &f.secret_id).await;
    assert_eq!(hosts.len(), machines.len());
    for stored in &hosts {
        let h = &stored.host;
        let vm = machines
            .get(h.name.as_str())
            .unwrap_or_else(|| panic!("{} is not a vcsim machine", h.name));
        assert_eq!(h.region, region);
        // vcsim names machines after their datacenter: DC1_C0_RP0_VM3.
        assert_eq!(h.zone.as_deref(), vm.name.split('_').next(), "{}", h.name);
        let expected = match vm.power_state.as_str() {
            "poweredOn" => HostStatus::Running,
            "poweredOff" => HostStatus::Stopped,
            _ => HostStatus::Suspended,
        };
        assert_eq!(
            (h.status, h.raw_status.as_str()),
            (expected, vm.power_state.as_str())
        );
        assert_eq!(
            (h.cpu, h.memory_mib),
            (Some(vm.num_cpu), Some(vm.memory_mb))
        );
        assert!(h.serial_number.is_some() && !h.instance_id.is_empty());
        assert_eq!(h.extra["moref"], vm.moref.as_str());
        assert_ne!(h.os_type, OsType::Windows, "vcsim machines are not Windows");
        if let Some(ip) = &vm.ip {
            assert!(
                h.private_ips.contains(ip),
                "{}: {:?}",
                h.name,
                h.private_ips
            );
            let all = h.private_ips.iter().chain(&h.public_ips);
            assert!(
                all.clone().all(|a| !a.starts_with("fe80")),
                "link-local dropped"
            );
            assert!(
                h.public_ips.iter().any(|a| a.contains(':')),
                "IPv6 kept: {h:?}"
            );
        }
    }

    // Power off three running machines, destroy two others.
    let running: Vec<&VcsimVm> = machines
        .values()
        .copied()
        .filter(|v| v.power_state == "poweredOn")
        .collect();
    assert!(running.len() >= 5);
    for vm in &running[..3] {
        vim.power_off(&vm.moref).await;
    }
    for vm in &running[3..5] {
        vim.power_off(&vm.moref).await;
        vim.destroy(&vm.moref).await;
    }
    let second = f
        .syncer
        .sync(SyncRequest::new(&f.secret_id, ""))
        .await
        .unwrap();
    assert!(second.complete, "{:?}", second.error);
    let n = machines.len() as u64;
    assert_eq!(
        (
            second.total_succeed,
            second.updated,
            second.released,
            second.unchanged
        ),
        (n - 2, 3, 2, n - 5)
    );
    let hosts = stored(&f.store, &region, &f.secret_id).await;
    for stored in hosts {
        let name = stored.host.name.as_str();
        if running[..3].iter().any(|v| v.name == name) {
            assert_eq!(stored.host.status, HostStatus::Stopped);
        }
        if running[3..5].iter().any(|v| v.name == name) {
            assert!(stored.released_at.is_some(), "{name} released");
        }
    }
}

#[tokio::test]
async fn machines_destroyed_between_pages_are_released_and_no_live_one_is() {
    let sim = SimulatedVsphere::start(&[("DC0", 250), ("DC1", 60)]).await;
    let f = fixture(
        &sim.uri(),
        SimulatedVsphere::USER,
        SimulatedVsphere::PASSWORD,
    )
    .await;
    let first = f
        .syncer
        .sync(SyncRequest::new(&f.secret_id, ""))
        .await
        .unwrap();
    assert_eq!(first.created, 310);
    // During the next listing: two machines of DC0's later pages are destroyed right
    // after its RetrievePropertiesEx, one of its first page after the first
    // ContinueRetrievePropertiesEx, and one of DC1 (not listed yet) too.
    let ids = sim.instance_uuids();
    let retrieved = sim.count("RetrievePropertiesEx");
    let continued = sim.count("ContinueRetrievePropertiesEx");
    // The next listing's first RetrievePropertiesEx lists the datacenters, its second
    // DC0's first page.
    sim.remove_vms_after(
        "RetrievePropertiesEx",
        retrieved + 2,
        vec![ids[150].clone(), ids[249].clone(), ids[300].clone()],
    );
    sim.remove_vms_after(
        "ContinueRetrievePropertiesEx",
        continued + 1,
        vec![ids[10].clone()],
    );
    let second = f
        .syncer
        .sync(SyncRequest::new(&f.secret_id, ""))
        .await
        .unwrap();
    assert!(second.complete && second.error.is_none(), "{second:?}");
    let destroyed = [&ids[150], &ids[249], &ids[300], &ids[10]];
    let hosts = stored(&f.store, &region_of(&sim.uri()), &f.secret_id).await;
    let live: Vec<_> = hosts
        .iter()
        .filter(|h| h.released_at.is_some())
        .filter(|h| !destroyed.contains(&&h.host.instance_id))
        .collect();
    assert!(live.is_empty(), "live machines released: {live:?}");
    // ids[10] was listed on DC0's first page, before its destruction: still stored as seen.
    // The three destroyed before their page was read are confirmed gone and released.
    assert_eq!(
        (
            second.released,
            second.release_confirmed,
            second.release_found_alive
        ),
        (3, 3, 0),
        "{second:?}"
    );
    let third = f
        .syncer
        .sync(SyncRequest::new(&f.secret_id, ""))
        .await
        .unwrap();
    assert_eq!(
        (third.released, third.release_confirmed),
        (1, 1),
        "{third:?}"
    );
    let hosts = stored(&f.store, &region_of(&sim.uri()), &f.secret_id).await;
    let released: Vec<&str> = hosts
        .iter()
        .filter(|h| h.released_at.is_some())
        .map(|h| h.host.instance_id.as_str())
        .collect();
    assert_eq!(released.len(), 4);
    assert!(destroyed.iter().all(|id| released.contains(&id.as_str())));
}

#[tokio::test]
async fn a_machine_moved_to_a_datacenter_already_listed_is_found_alive_not_released() {
    let sim = SimulatedVsphere::start(&[("DC0", 250), ("DC1", 60)]).await;
    let f = fixture(
        &sim.uri(),
        SimulatedVsphere::USER,
        SimulatedVsphere::PASSWORD,
    )
    .await;
    let first = f
        .syncer
        .sync(SyncRequest::new(&f.secret_id, ""))
        .await
        .unwrap();
    assert_eq!(first.created, 310);
    // Right after DC0's first page, one DC1 machine migrates into DC0 (whose remaining
    // pages were fixed when its listing began) and one DC0 machine is destroyed: the
    // listing sees neither. The lookup finds the first in DC0 and confirms the second gone.
    let ids = sim.instance_uuids();
    let (moved, destroyed) = (ids[300].clone(), ids[200].clone());
    let retrieved = sim.count("RetrievePropertiesEx");
    sim.move_vms_after(
        "RetrievePropertiesEx",
        retrieved + 2,
        vec![moved.clone()],
        "DC0",
    );
    sim.remove_vms_after(
        "RetrievePropertiesEx",
        retrieved + 2,
        vec![destroyed.clone()],
    );
    let second = f
        .syncer
        .sync(SyncRequest::new(&f.secret_id, ""))
        .await
        .unwrap();
    assert!(second.complete && second.error.is_none(), "{second:?}");
    assert_eq!(
        (
            second.released,
            second.release_confirmed,
            second.release_found_alive
        ),
        (1, 1, 1),
        "{second:?}"
    );
    assert_eq!(sim.count("FindByUuid"), 2);
    assert_eq!(sim.sessions_alive(), 0, "the lookup logged out");
    let hosts = stored(&f.store, &region_of(&sim.uri()), &f.secret_id).await;
    let by_id: BTreeMap<_, _> = hosts
        .iter()
        .map(|h| (h.host.instance_id.as_str(), h))
        .collect();
    let moved = by_id[moved.as_str()];
    assert!(
        moved.released_at.is_none(),
        "a live machine is never released"
    );
    assert_eq!(
        moved.host.zone.as_deref(),
        Some("DC0"),
        "refreshed by the lookup"
    );
    assert!(by_id[destroyed.as_str()].released_at.is_some());
    assert_eq!(hosts.iter().filter(|h| h.released_at.is_some()).count(), 1);
}

#[tokio::test]
async fn a_failed_lookup_releases_nothing() {
    let sim = SimulatedVsphere::start(&[("DC0", 20)]).await;
    let f = fixture(
        &sim.uri(),
        SimulatedVsphere::USER,
        SimulatedVsphere::PASSWORD,
    )
    .await;
    f.syncer
        .sync(SyncRequest::new(&f.secret_id, ""))
        .await
        .unwrap();
    sim.remove_vm(&sim.instance_uuids()[4]);
    sim.fail_next(
        "FindByUuid",
        "NoPermission",
        "Permission to perform this operation was denied.",
    );
    let second = f
        .syncer
        .sync(SyncRequest::new(&f.secret_id, ""))
        .await
        .unwrap();
    assert!(!second.complete, "{second:?}");
    assert_eq!((second.released, second.release_confirmed), (0, 0));
    assert!(second.release_skipped.unwrap().contains("lookup"));
    let third = f
        .syncer
        .sync(SyncRequest::new(&f.secret_id, ""))
        .await
        .unwrap();
    assert_eq!(
        (third.released, third.release_confirmed),
        (1, 1),
        "{third:?}"
    );
}

#[tokio::test]
async fn the_secrets_own_ca_bundle_reaches_the_vsphere_client() {
    let sim = SimulatedVsphere::start(&[("DC0", 2)]).await;
    // Looks like PEM (so the secret is accepted) but holds no certificate: the provider's
    // HTTP client, built with the secret's trust, refuses it, which shows the bundle is
    // the secret's and not the process's.
    let synced = common::builtin_syncer_for(
        cmdb_secret::NewSecret::new(
            Vendor::Vsphere,
            SimulatedVsphere::USER,
            SimulatedVsphere::PASSWORD,
        )
        .with_description("vCenter with its own CA")
        .with_allowed_regions(["*"])
        .with_request_rate(1000)
        .with_address(sim.uri())
        .with_allow_insecure_http(true)
        .with_tls_ca_pem(
            "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
        ),
    )
    .await;
    let e = synced
        .syncer
        .sync(SyncRequest::new(&synced.secret.id, ""))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), cmdb_core::ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("certificate"), "{e}");
    assert_eq!(sim.login_attempts(), 0, "nothing was sent");
}
