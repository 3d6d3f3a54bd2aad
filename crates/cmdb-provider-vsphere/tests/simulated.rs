//! The vSphere provider against the testkit's `SimulatedVsphere` (wiremock): paging,
//! re-login, faults, malformed answers, retries, cleanup, and the conformance suite.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use cmdb_core::testing::{
    host_provider_conformance, host_provider_error_conformance, ProviderExpectation,
};
use cmdb_core::{Error, ErrorKind, Host, HostProvider, HostStatus, OsType};
use cmdb_http::{HttpConfig, RetryConfig};
use cmdb_provider_vsphere::{VsphereBuilder, VsphereHostProvider};
use cmdb_secret::Credentials;
use cmdb_testkit::vsphere::SimulatedVsphere;
use futures::StreamExt;

/// Network I/O runs here, so tests with a paused clock can talk to wiremock.
static IO: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
});

fn provider(sim: &SimulatedVsphere, password: &str) -> VsphereHostProvider {
    VsphereBuilder::new()
        .with_endpoint(sim.uri())
        .with_credentials(Credentials::new(SimulatedVsphere::USER, password))
        .with_http_config(
            HttpConfig::default().with_retry(
                RetryConfig::default()
                    .with_max_attempts(4)
                    .with_base_delay(Duration::from_millis(200)),
            ),
        )
        .with_io_runtime(IO.handle().clone())
        .build()
        .unwrap()
}

/// Every page until the end: the hosts, and the error if the stream ended with one.
async fn drain(p: &VsphereHostProvider) -> (Vec<usize>, Vec<Host>, Option<Error>) {
    let mut stream = p.pages();
    let (mut sizes, mut hosts) = (Vec::new(), Vec::new());
    while let Some(page) = stream.next().await {
        match page {
            Ok(page) => {
                sizes.push(page.hosts.len());
                hosts.extend(page.hosts);
            }
            Err(e) => {
                assert!(stream.next().await.is_none(), "nothing follows an error");
                return (sizes, hosts, Some(e));
            }
        }
    }
    (sizes, hosts, None)
}

fn code(e: &Error) -> Option<&str> {
    e.vendor_error().and_then(|v| v.code.as_deref())
}

#[tokio::test(start_paused = true)]
async fn pages_follow_tokens_with_one_round_trip_per_page() {
    let sim = SimulatedVsphere::start(&[("DC0", 250), ("DC1", 30)]).await;
    sim.add_template("DC1");
    let (sizes, hosts, error) = drain(&provider(&sim, SimulatedVsphere::PASSWORD)).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(sizes, [100, 100, 50, 30], "the template is skipped");
    assert_eq!(
        sim.calls(),
        [
            "RetrieveServiceContent",
            "Login",
            "CreateContainerView",
            "RetrievePropertiesEx",
            "DestroyView",
            "CreateContainerView",
            "RetrievePropertiesEx",
            "ContinueRetrievePropertiesEx",
            "ContinueRetrievePropertiesEx",
            "DestroyView",
            "CreateContainerView",
            "RetrievePropertiesEx",
            "DestroyView",
            "Logout",
        ]
    );
    assert_eq!((sim.sessions_alive(), sim.views_alive()), (0, 0));

    let vms = sim.vms();
    let h = hosts.iter().find(|h| h.name == "DC0-vm-0003").unwrap();
    let vm = vms.iter().find(|v| v.name == "DC0-vm-0003").unwrap();
    assert_eq!(h.instance_id, vm.instance_uuid);
    assert_eq!(h.serial_number.as_deref(), Some(vm.bios_uuid.as_str()));
    assert_eq!(
        h.region,
        format!("127.0.0.1:{}", sim.uri().rsplit(':').next().unwrap())
    );
    assert_eq!(h.zone.as_deref(), Some("DC0"));
    assert_eq!(
        (h.status, h.raw_status.as_str()),
        (HostStatus::Running, "poweredOn")
    );
    assert_eq!(
        (h.cpu, h.memory_mib),
        (Some(vm.num_cpu), Some(vm.memory_mb))
    );
    assert_eq!(h.os_type, OsType::Windows);
    assert_eq!(
        h.os_name.as_deref(),
        Some("Microsoft Windows Server 2019 (64-bit)")
    );
    assert_eq!(h.private_ips, [vm.ips[0].clone()]);
    assert_eq!(
        h.public_ips,
        [vm.ips[1].clone()],
        "IPv6 kept, link-local dropped"
    );
    assert_eq!(h.hostname, vm.host_name);
    assert_eq!(
        h.created_at.unwrap().to_rfc3339(),
        "2024-01-02T03:04:05.123+00:00"
    );
    let off = hosts.iter().find(|h| h.name == "DC1-vm-0004").unwrap();
    assert_eq!(
        (off.status, off.os_type),
        (HostStatus::Stopped, OsType::Linux)
    );
}

#[tokio::test(start_paused = true)]
async fn the_provider_passes_the_conformance_suite() {
    let sim = SimulatedVsphere::start(&[("DC0", 120), ("DC1", 0), ("DC2", 7)]).await;
    sim.add_template("DC0");
    sim.add_inaccessible("DC2");
    let p: Arc<dyn HostProvider> = Arc::new(provider(&sim, SimulatedVsphere::PASSWORD));
    let listed = host_provider_conformance(
        p,
        ProviderExpectation {
            // The inaccessible machine is a failed record, not a host.
            hosts: Some(127),
            max_pages: 10,
            absent_ids: vec!["5000ffff-0000-4000-8000-00000000ffff".to_owned()],
        },
    )
    .await;
    assert_eq!(listed, 127);
    // The lookups of the suite logged out too.
    assert!(sim.count("FindByUuid") > 0);
    assert_eq!(sim.sessions_alive(), 0);
}

#[tokio::test(start_paused = true)]
async fn lookup_finds_machines_by_instance_uuid_with_their_datacenter() {
    let sim = SimulatedVsphere::start(&[("DC0", 3), ("DC1", 2)]).await;
    let template = sim.add_template("DC1");
    let p = provider(&sim, SimulatedVsphere::PASSWORD);
    let uuids = sim.instance_uuids();
    let gone = uuids[1].clone();
    sim.remove_vm(&gone);
    let asked = vec![uuids[0].clone(), gone, uuids[4].clone(), template];
    let mut found: Vec<Host> = Vec::new();
    let mut pages = 0;
    let mut stream = p.lookup(asked).unwrap();
    while let Some(page) = stream.next().await {
        pages += 1;
        found.extend(page.unwrap().hosts);
    }
    let seen: Vec<(&str, Option<&str>)> = found
        .iter()
        .map(|h| (h.instance_id.as_str(), h.zone.as_deref()))
        .collect();
    // The destroyed machine and the template are not found.
    assert_eq!(
        seen,
        [
            (uuids[0].as_str(), Some("DC0")),
            (uuids[4].as_str(), Some("DC1"))
        ]
    );
    assert_eq!(pages, 4, "one page per id");
    assert_eq!(sim.count("FindByUuid"), 4);
    assert_eq!(
        sim.count("RetrievePropertiesEx"),
        3,
        "the machines found only"
    );
    assert_eq!((sim.count("Login"), sim.count("Logout")), (1, 1));
    assert_eq!(sim.sessions_alive(), 0, "the lookup logged out");
}

/// The hosts a lookup of `ids` finds, or its error.
async fn look_up(p: &VsphereHostProvider, ids: Vec<String>) -> Result<Vec<Host>, Error> {
    let mut found = Vec::new();
    let mut stream = p.lookup(ids).unwrap();
    while let Some(page) = stream.next().await {
        match page {
            Ok(page) => found.extend(page.hosts),
            Err(e) => {
                assert!(stream.next().await.is_none(), "nothing follows an error");
                return Err(e);
            }
        }
    }
    Ok(found)
}

#[tokio::test(start_paused = true)]
async fn a_lookup_of_no_ids_makes_no_request() {
    let sim = SimulatedVsphere::start(&[("DC0", 3)]).await;
    let p = provider(&sim, SimulatedVsphere::PASSWORD);
    assert!(look_up(&p, Vec::new()).await.unwrap().is_empty());
    assert!(sim.calls().is_empty(), "{:?}", sim.calls());
}

#[tokio::test(start_paused = true)]
async fn a_machine_destroyed_between_find_by_uuid_and_its_properties_is_gone() {
    let sim = SimulatedVsphere::start(&[("DC0", 3)]).await;
    let p = provider(&sim, SimulatedVsphere::PASSWORD);
    let uuids = sim.instance_uuids();
    // Found by the first FindByUuid, destroyed before its RetrievePropertiesEx, which
    // answers ManagedObjectNotFound.
    sim.remove_vms_after("FindByUuid", 1, vec![uuids[0].clone()]);
    let found = look_up(&p, uuids.clone()).await.unwrap();
    let ids: Vec<&str> = found.iter().map(|h| h.instance_id.as_str()).collect();
    assert_eq!(ids, [uuids[1].as_str(), uuids[2].as_str()]);
    assert_eq!(sim.count("RetrievePropertiesEx"), 3);
    assert_eq!(sim.sessions_alive(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_expired_session_during_a_lookup_logs_in_again_once() {
    let sim = SimulatedVsphere::start(&[("DC0", 3)]).await;
    let p = provider(&sim, SimulatedVsphere::PASSWORD);
    let uuids = sim.instance_uuids();
    // FindByUuid and RetrievePropertiesEx of the first machine, then the session dies.
    sim.expire_sessions_after(2);
    let found = look_up(&p, uuids.clone()).await.unwrap();
    let ids: Vec<&str> = found.iter().map(|h| h.instance_id.as_str()).collect();
    assert_eq!(ids, uuids.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(sim.count("Login"), 2);
    assert_eq!(sim.sessions_alive(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_lookup_session_that_expires_again_right_after_a_new_login_fails() {
    let sim = SimulatedVsphere::start(&[("DC0", 3)]).await;
    let p = provider(&sim, SimulatedVsphere::PASSWORD);
    sim.fail_nth("FindByUuid", 2, "NotAuthenticated", "expired");
    sim.fail_nth("FindByUuid", 3, "NotAuthenticated", "expired");
    let e = look_up(&p, sim.instance_uuids()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert_eq!(code(&e), Some("NotAuthenticated"));
    assert_eq!(sim.count("Login"), 2, "one new login, no more");
    assert_eq!(sim.count("FindByUuid"), 3);
    // The injected faults leave the first session alive in the simulator: count logouts.
    assert_eq!(sim.count("Logout"), 1, "the session is closed");
}

#[tokio::test(start_paused = true)]
async fn lookup_failures_are_errors_never_absences() {
    let sim = SimulatedVsphere::start(&[("DC0", 3)]).await;
    let p = provider(&sim, SimulatedVsphere::PASSWORD);
    let uuids = sim.instance_uuids();
    // A fault reading a machine found.
    sim.fail_next("RetrievePropertiesEx", "SystemError", "boom");
    let e = look_up(&p, uuids.clone()).await.unwrap_err();
    assert_eq!(code(&e), Some("SystemError"), "{e}");
    // A 5xx that stays after the retries.
    for nth in 2..=5 {
        sim.fail_nth_with_status("FindByUuid", nth, 503);
    }
    let e = look_up(&p, uuids.clone()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    // A malformed answer.
    sim.malformed_next("FindByUuid");
    let e = look_up(&p, uuids.clone()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode, "{e}");
    // A wrong password.
    let e = look_up(&provider(&sim, "not-the-password-xyz"), uuids)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert_eq!(sim.sessions_alive(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_lookup_early_logs_out_in_the_background() {
    let sim = SimulatedVsphere::start(&[("DC0", 3)]).await;
    let p = provider(&sim, SimulatedVsphere::PASSWORD);
    let mut stream = p.lookup(sim.instance_uuids()).unwrap();
    assert_eq!(stream.next().await.unwrap().unwrap().hosts.len(), 1);
    assert_eq!(sim.sessions_alive(), 1);
    drop(stream);
    for _ in 0..500 {
        if sim.sessions_alive() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(sim.sessions_alive(), 0);
    assert_eq!(sim.calls().last().map(String::as_str), Some("Logout"));
}

#[tokio::test(start_paused = true)]
async fn a_failing_lookup_ends_its_stream_with_the_error() {
    let sim = SimulatedVsphere::start(&[("DC0", 3)]).await;
    let p = provider(&sim, SimulatedVsphere::PASSWORD);
    sim.fail_next(
        "FindByUuid",
        "NoPermission",
        "Permission to perform this operation was denied.",
    );
    let results: Vec<_> = p.lookup(sim.instance_uuids()).unwrap().collect().await;
    assert_eq!(results.len(), 1);
    let e = results[0].as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert_eq!(sim.sessions_alive(), 0);
}

#[tokio::test(start_paused = true)]
async fn inaccessible_machines_are_failed_records_naming_their_moref() {
    let sim = SimulatedVsphere::start(&[("DC0", 2)]).await;
    let moref = sim.add_inaccessible("DC0");
    let p = provider(&sim, SimulatedVsphere::PASSWORD);
    let mut stream = p.pages();
    let (mut hosts, mut failed) = (Vec::new(), Vec::new());
    while let Some(page) = stream.next().await {
        let page = page.unwrap();
        hosts.extend(page.hosts);
        failed.extend(page.failed);
    }
    assert_eq!(hosts.len(), 2);
    assert!(
        hosts.iter().all(|h| h.instance_id != moref),
        "never stored under its moref"
    );
    assert_eq!(failed.len(), 1);
    assert!(failed[0].reason.contains(&moref), "{failed:?}");
}

#[tokio::test(start_paused = true)]
async fn an_expired_session_logs_in_again_once_and_lists_nothing_twice() {
    let sim = SimulatedVsphere::start(&[("DC0", 250)]).await;
    // CreateContainerView, RetrievePropertiesEx, DestroyView (datacenters), then
    // CreateContainerView and the first page of DC0; the session dies before page 2.
    sim.expire_sessions_after(5);
    let (_, hosts, error) = drain(&provider(&sim, SimulatedVsphere::PASSWORD)).await;
    assert!(error.is_none(), "{error:?}");
    let ids: HashSet<_> = hosts.iter().map(|h| h.instance_id.as_str()).collect();
    assert_eq!((hosts.len(), ids.len()), (250, 250));
    assert_eq!(sim.count("Login"), 2);
    assert_eq!((sim.sessions_alive(), sim.views_alive()), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_session_that_expires_again_right_after_a_new_login_fails_the_listing() {
    let sim = SimulatedVsphere::start(&[("DC0", 10)]).await;
    sim.fail_nth("CreateContainerView", 2, "NotAuthenticated", "expired");
    sim.fail_nth("CreateContainerView", 3, "NotAuthenticated", "expired");
    let p: Arc<dyn HostProvider> = Arc::new(provider(&sim, SimulatedVsphere::PASSWORD));
    assert_eq!(host_provider_error_conformance(Arc::clone(&p)).await, 0);
    assert_eq!(sim.count("Login"), 2, "one new login, no more");
    assert_eq!(sim.count("Logout"), 1, "the session is closed");
    let (_, _, error) = drain(&provider(&sim, SimulatedVsphere::PASSWORD)).await;
    assert!(error.is_none(), "the faults were one-off");
}

#[tokio::test(start_paused = true)]
async fn a_wrong_password_is_unauthenticated_and_never_retried() {
    let sim = SimulatedVsphere::start(&[("DC0", 3)]).await;
    let (sizes, _, error) = drain(&provider(&sim, "not-the-password-xyz")).await;
    let e = error.expect("an error");
    assert!(sizes.is_empty());
    assert_eq!(
        (e.kind(), code(&e)),
        (ErrorKind::Unauthenticated, Some("InvalidLogin"))
    );
    assert!(!format!("{e} {e:?}").contains("not-the-password-xyz"));
    assert_eq!(sim.login_attempts(), 1);
    assert_eq!(sim.calls(), ["RetrieveServiceContent", "Login"]);
}

#[tokio::test(start_paused = true)]
async fn no_permission_is_permission_denied_and_the_session_is_closed() {
    let sim = SimulatedVsphere::start(&[("DC0", 3)]).await;
    sim.fail_nth(
        "RetrievePropertiesEx",
        2,
        "NoPermission",
        "Permission to perform this operation was denied.",
    );
    let (_, _, error) = drain(&provider(&sim, SimulatedVsphere::PASSWORD)).await;
    let e = error.expect("an error");
    assert_eq!(
        (e.kind(), code(&e)),
        (ErrorKind::PermissionDenied, Some("NoPermission"))
    );
    assert_eq!(sim.count("RetrievePropertiesEx"), 2, "not retried");
    let calls = sim.calls();
    assert_eq!(&calls[calls.len() - 2..], ["DestroyView", "Logout"]);
    assert_eq!((sim.sessions_alive(), sim.views_alive()), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn other_faults_keep_their_type_and_a_continuation_is_never_retried() {
    let sim = SimulatedVsphere::start(&[("DC0", 150)]).await;
    sim.fail_nth(
        "ContinueRetrievePropertiesEx",
        1,
        "SystemError",
        "A general system error occurred.",
    );
    let (sizes, _, error) = drain(&provider(&sim, SimulatedVsphere::PASSWORD)).await;
    let e = error.expect("an error");
    assert_eq!(sizes, [100], "the first page arrived");
    assert_eq!(
        (e.kind(), code(&e)),
        (ErrorKind::Vendor, Some("SystemError"))
    );
    assert!(
        e.to_string().contains("A general system error occurred."),
        "{e}"
    );
    assert_eq!(sim.count("ContinueRetrievePropertiesEx"), 1);
    assert_eq!(sim.sessions_alive(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_malformed_answer_is_a_decode_error() {
    let sim = SimulatedVsphere::start(&[("DC0", 150)]).await;
    sim.malformed_next("ContinueRetrievePropertiesEx");
    let (sizes, _, error) = drain(&provider(&sim, SimulatedVsphere::PASSWORD)).await;
    let e = error.expect("an error");
    assert_eq!(sizes, [100]);
    assert_eq!(e.kind(), ErrorKind::Decode, "{e}");
    assert_eq!(sim.sessions_alive(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_page_that_fails_to_decode_ends_the_listing_and_closes_the_session() {
    let sim = SimulatedVsphere::start(&[("DC0", 250)]).await;
    // The simulator writes power states unescaped: parsing the first page finds the
    // unknown entity.
    let vm = sim
        .vms()
        .into_iter()
        .find(|v| v.name == "DC0-vm-0003")
        .unwrap();
    sim.set_power_state(&vm.instance_uuid, "&bogus;");
    let (sizes, _, error) = drain(&provider(&sim, SimulatedVsphere::PASSWORD)).await;
    let e = error.expect("an error");
    assert!(sizes.is_empty());
    assert_eq!(e.kind(), ErrorKind::Decode, "{e}");
    assert!(e.to_string().contains("RetrievePropertiesEx"), "{e}");
    // Closed before the error was handed on, the next page's request cancelled.
    assert_eq!((sim.sessions_alive(), sim.views_alive()), (0, 0));
    let calls = sim.calls();
    assert_eq!(&calls[calls.len() - 2..], ["DestroyView", "Logout"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_page_is_asked_for_while_the_current_one_is_consumed() {
    let sim = SimulatedVsphere::start(&[("DC0", 250)]).await;
    let p = provider(&sim, SimulatedVsphere::PASSWORD);
    let mut stream = p.pages();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.hosts.len(), 100);
    // The stream is not polled now: the second page is requested all the same, once.
    for _ in 0..500 {
        if sim.count("ContinueRetrievePropertiesEx") > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(sim.count("ContinueRetrievePropertiesEx"), 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        sim.count("ContinueRetrievePropertiesEx"),
        1,
        "no more than one page ahead"
    );
    let rest: Vec<usize> = stream.map(|p| p.unwrap().hosts.len()).collect().await;
    assert_eq!(rest, [100, 50]);
    assert_eq!(sim.count("ContinueRetrievePropertiesEx"), 2);
    assert_eq!((sim.sessions_alive(), sim.views_alive()), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn unavailable_answers_are_retried_with_backoff() {
    let sim = SimulatedVsphere::start(&[("DC0", 150)]).await;
    sim.fail_nth_with_status("RetrievePropertiesEx", 2, 503);
    sim.fail_nth_with_status("RetrievePropertiesEx", 3, 503);
    let (sizes, _, error) = drain(&provider(&sim, SimulatedVsphere::PASSWORD)).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(sizes, [100, 50]);
    assert_eq!(
        sim.count("RetrievePropertiesEx"),
        4,
        "two 503s, then the page"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_stream_early_logs_out_in_the_background() {
    let sim = SimulatedVsphere::start(&[("DC0", 250)]).await;
    let p = provider(&sim, SimulatedVsphere::PASSWORD);
    let mut stream = p.pages();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.hosts.len(), 100);
    assert_eq!(sim.sessions_alive(), 1);
    drop(stream);
    // Wait for the outcome of the spawned cleanup, bounded.
    for _ in 0..500 {
        if sim.sessions_alive() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!((sim.sessions_alive(), sim.views_alive()), (0, 0));
    let calls = sim.calls();
    assert_eq!(&calls[calls.len() - 2..], ["DestroyView", "Logout"]);
}

/// A 6.5 vCenter has no `config.createDate`: asking for it would fault the whole
/// request, so the provider asks for what `about.apiVersion` says the server has.
#[tokio::test]
async fn a_6_5_vcenter_lists_and_looks_up_its_machines_without_create_dates() {
    let sim = SimulatedVsphere::start(&[("DC0", 40)]).await;
    sim.set_api_version("6.5");
    let p = provider(&sim, SimulatedVsphere::PASSWORD);
    let pages: Vec<_> = p.pages().collect().await;
    let hosts: Vec<Host> = pages
        .into_iter()
        .flat_map(|page| page.expect("a 6.5 listing").hosts)
        .collect();
    assert_eq!(hosts.len(), 40);
    assert!(hosts.iter().all(|h| h.created_at.is_none()));
    let ids: Vec<String> = sim.instance_uuids().into_iter().take(3).collect();
    let found: Vec<_> = p.lookup(ids).unwrap().collect().await;
    let found: usize = found
        .into_iter()
        .map(|page| page.unwrap().hosts.len())
        .sum();
    assert_eq!(found, 3);

    // A current vCenter's machines carry their creation date.
    let sim = SimulatedVsphere::start(&[("DC0", 5)]).await;
    let p = provider(&sim, SimulatedVsphere::PASSWORD);
    let page = p.pages().next().await.unwrap().unwrap();
    assert!(page.hosts.iter().all(|h| h.created_at.is_some()));
}
