//! Faults against the simulated clouds, through the `Syncer` and a SQL store: throttling
//! and 5xx at scale, slow and silent vendors, a permanent failure mid-listing, revoked
//! credentials, and the store failing mid-run. Every test states what must hold after
//! the fault: hosts stored exactly once, nothing released by an incomplete run, typed
//! errors, bounded time.

mod common;

use std::sync::Arc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cmdb::core::{ErrorKind, Vendor};
use cmdb::secret::{Cipher, Secret};
use cmdb::store_sql::SqlStore;
use cmdb::sync::{DetailsMode, ProviderRegistry, SyncOptions, SyncRequest, SyncResponse, Syncer};
use cmdb_testkit::aliyun::{self, SimulatedAliyun};
use cmdb_testkit::huawei::{self, SimulatedHuawei};
use cmdb_testkit::tencent::{self, SimulatedTencent};
use cmdb_testkit::vsphere::SimulatedVsphere;

use common::{add_secret, count, fast_http, LogBuffer};

const HOSTS: u64 = 20_000;

/// A syncer over one SQL store (hosts and secrets) with quick retries.
struct Rig {
    store: Arc<SqlStore>,
    cipher: Arc<Cipher>,
    syncer: Syncer,
}

impl Rig {
    async fn new(url: &str, options: SyncOptions) -> Rig {
        let store = Arc::new(SqlStore::connect(url).await.expect("store"));
        Rig::over(store, options)
    }

    fn over(store: Arc<SqlStore>, options: SyncOptions) -> Rig {
        let cipher = Arc::new(Cipher::new(Cipher::generate_key()));
        let syncer = Syncer::new(
            store.clone(),
            store.clone(),
            cipher.clone(),
            ProviderRegistry::with_builtin_providers(),
        )
        .with_options(options);
        Rig {
            store,
            cipher,
            syncer,
        }
    }

    async fn secret(&self, vendor: Vendor, key: &str, secret: &str, address: String) -> Secret {
        add_secret(&*self.store, &self.cipher, vendor, key, secret, address).await
    }

    async fn active(&self, vendor: Vendor) -> u64 {
        count(&*self.store, vendor, false).await
    }

    async fn released(&self, vendor: Vendor) -> u64 {
        count(&*self.store, vendor, true).await
    }
}

fn options(request_timeout: Duration, attempts: u32) -> SyncOptions {
    SyncOptions::default()
        .with_http(fast_http(request_timeout, attempts))
        // The simulators listen on 127.0.0.1.
        .with_private_addresses(true)
}

fn request(secret: &Secret, region: &str) -> SyncRequest {
    SyncRequest::new(&secret.id, region).with_details(DetailsMode::Failed)
}

/// Asserts a run stored every one of `HOSTS` hosts exactly once: all created, none
/// updated or unchanged (a page stored twice would show as unchanged), none failed.
async fn assert_stored_once(rig: &Rig, vendor: Vendor, r: &SyncResponse) {
    assert!(r.complete && r.error.is_none(), "{vendor}: {:?}", r.error);
    assert_eq!(
        (
            r.total_succeed,
            r.total_failed,
            r.created,
            r.updated,
            r.unchanged
        ),
        (HOSTS, 0, HOSTS, 0, 0),
        "{vendor}"
    );
    assert_eq!(rig.active(vendor).await, HOSTS, "{vendor}: stored hosts");
    assert_eq!(rig.released(vendor).await, 0, "{vendor}");
}

/// The logs of this whole test binary, at `cmdb_http=debug`. One global subscriber: the
/// tests run on parallel threads, and `tracing`'s per-callsite interest cache is shared by
/// every thread, so subscribers installed per thread by concurrent tests can miss events.
/// Each test reads only the lines that name its own simulator's address.
fn logs() -> &'static LogBuffer {
    static LOGS: OnceLock<LogBuffer> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = LogBuffer::default();
        tracing::subscriber::set_global_default(logs.subscriber("cmdb_http=debug"))
            .expect("no other global subscriber in this test binary");
        logs
    })
}

/// Where the captured logs end now: a test reads only what was logged after it.
fn log_mark() -> usize {
    logs().text().len()
}

/// The log lines captured since `mark` about requests to `uri` (a simulator's
/// `http://host:port`). Both are needed: tests run at the same time, and wiremock hands a
/// finished test's server (and port) to the next one.
fn log_lines_for(mark: usize, uri: &str) -> Vec<String> {
    let address = format!("{}/", uri.trim_start_matches("http://"));
    logs().text()[mark..]
        .lines()
        .filter(|l| l.contains(&address))
        .map(str::to_owned)
        .collect()
}

/// Runs `sync` with the HTTP client's logs captured; answers the response and the
/// number of "retrying HTTP request" lines about requests to `uri`.
async fn with_retry_logs<F: std::future::Future<Output = SyncResponse>>(
    uri: &str,
    run: F,
) -> (SyncResponse, usize) {
    let mark = log_mark();
    let r = run.await;
    let retries = log_lines_for(mark, uri)
        .iter()
        .filter(|l| l.contains("retrying HTTP request"))
        .count();
    (r, retries)
}

#[tokio::test]
async fn aliyun_twenty_thousand_hosts_through_throttling_and_5xx_are_stored_once() {
    let sim = SimulatedAliyun::start("cn-hangzhou", HOSTS).await;
    // 20% throttled (every 5th request), about 5% failing with 503 (every 19th).
    sim.throttle_every(5);
    sim.fail_every(19, 503);
    let rig = Rig::new("sqlite::memory:", options(Duration::from_secs(10), 8)).await;
    let secret = rig
        .secret(
            Vendor::Aliyun,
            aliyun::DEFAULT_ACCESS_KEY_ID,
            aliyun::DEFAULT_ACCESS_KEY_SECRET,
            sim.uri(),
        )
        .await;
    let (r, retries) = with_retry_logs(&sim.uri(), async {
        rig.syncer
            .sync(request(&secret, "cn-hangzhou"))
            .await
            .unwrap()
    })
    .await;
    assert_stored_once(&rig, Vendor::Aliyun, &r).await;
    let answers = sim.answers();
    let throttled = answers.iter().filter(|a| *a == "Throttling.User").count();
    let failed = answers
        .iter()
        .filter(|a| *a == "ServiceUnavailable")
        .count();
    assert!(
        throttled >= 40 && failed >= 10,
        "{throttled} throttled, {failed} 5xx"
    );
    assert_eq!(
        retries,
        throttled + failed,
        "every fault was retried, visibly"
    );
}

#[tokio::test]
async fn tencent_twenty_thousand_hosts_through_throttling_and_5xx_are_stored_once() {
    let sim = SimulatedTencent::start(HOSTS).await;
    sim.throttle_every(5);
    sim.fail_every(19, 502);
    let rig = Rig::new("sqlite::memory:", options(Duration::from_secs(10), 8)).await;
    let secret = rig
        .secret(
            Vendor::Tencent,
            tencent::SECRET_ID,
            tencent::SECRET_KEY,
            sim.uri(),
        )
        .await;
    let (r, retries) = with_retry_logs(&sim.uri(), async {
        rig.syncer
            .sync(request(&secret, tencent::REGION))
            .await
            .unwrap()
    })
    .await;
    assert_stored_once(&rig, Vendor::Tencent, &r).await;
    let pages = HOSTS / tencent::MAX_LIMIT;
    let calls = sim.describe_instances_calls();
    assert!(calls >= pages, "{calls} DescribeInstances calls");
    // Every request beyond one per page was a retry of a fault.
    assert!(retries >= 40, "{retries} retries logged");
    assert_eq!(
        sim.requests(),
        pages + retries as u64,
        "requests = pages + retries"
    );
}

#[tokio::test]
async fn huawei_twenty_thousand_hosts_through_throttling_and_5xx_are_stored_once() {
    let sim = SimulatedHuawei::start("cn-north-4", HOSTS).await;
    sim.throttle_every(Some(5));
    sim.fail_every(19, 503);
    let rig = Rig::new("sqlite::memory:", options(Duration::from_secs(10), 8)).await;
    let secret = rig
        .secret(
            Vendor::Huawei,
            huawei::ACCESS_KEY,
            huawei::SECRET_KEY,
            sim.uri(),
        )
        .await;
    let (r, retries) = with_retry_logs(&sim.uri(), async {
        rig.syncer
            .sync(request(&secret, "cn-north-4"))
            .await
            .unwrap()
    })
    .await;
    assert_stored_once(&rig, Vendor::Huawei, &r).await;
    let stats = sim.stats();
    assert!(
        stats.throttled >= 1 && stats.injected_failures >= 1,
        "{stats:?}"
    );
    assert_eq!(
        retries as u64,
        stats.throttled + stats.injected_failures,
        "every fault was retried, visibly: {stats:?}"
    );
    assert_eq!(sim.auth_failures(huawei::ACCESS_KEY), 0);
}

#[tokio::test]
async fn vsphere_twenty_thousand_machines_through_throttling_5xx_and_session_loss_are_stored_once()
{
    let sim = SimulatedVsphere::start(&[("dc-a", HOSTS as usize)]).await;
    // vim25 has no throttling fault; a gateway in front answers 429 and 503. Only the
    // calls that can be repeated are retried: `ContinueRetrievePropertiesEx` consumes
    // its token, so a fault there ends the run incomplete (see the page-k test). The
    // transient fault of a long listing is the session expiring: the provider logs in
    // again and restarts, listing no machine twice.
    sim.fail_nth_with_status("RetrieveServiceContent", 1, 429);
    sim.fail_nth_with_status("CreateContainerView", 1, 503);
    sim.fail_nth_with_status("RetrievePropertiesEx", 1, 429);
    sim.fail_nth_with_status("RetrievePropertiesEx", 2, 503);
    sim.expire_sessions_after(120);
    let rig = Rig::new("sqlite::memory:", options(Duration::from_secs(10), 8)).await;
    let secret = rig
        .secret(
            Vendor::Vsphere,
            SimulatedVsphere::USER,
            SimulatedVsphere::PASSWORD,
            sim.uri(),
        )
        .await;
    let (r, retries) = with_retry_logs(&sim.uri(), async {
        rig.syncer.sync(request(&secret, "")).await.unwrap()
    })
    .await;
    assert_stored_once(&rig, Vendor::Vsphere, &r).await;
    assert_eq!(retries, 4, "the four injected faults were retried, visibly");
    assert_eq!(
        sim.login_attempts(),
        2,
        "one re-login after the session expired"
    );
}

#[tokio::test]
async fn an_answer_slower_than_the_request_timeout_is_retried() {
    let sim = SimulatedAliyun::start("cn-hangzhou", 250).await;
    // The first answer takes 10 s, far past the 300 ms request timeout; once that request
    // is in, the simulator answers at once again.
    sim.set_latency(Some(Duration::from_secs(10)));
    let rig = Rig::new("sqlite::memory:", options(Duration::from_millis(300), 4)).await;
    let secret = rig
        .secret(
            Vendor::Aliyun,
            aliyun::DEFAULT_ACCESS_KEY_ID,
            aliyun::DEFAULT_ACCESS_KEY_SECRET,
            sim.uri(),
        )
        .await;
    let started = Instant::now();
    let mark = log_mark();
    let run = rig.syncer.sync(request(&secret, "cn-hangzhou"));
    let unblock = async {
        for _ in 0..2000 {
            if sim.requests() >= 1 {
                sim.set_latency(None);
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("the simulator never got a request");
    };
    let (r, ()) = tokio::join!(run, unblock);
    let r = r.unwrap();
    assert!(r.complete, "{:?}", r.error);
    assert_eq!(r.created, 250);
    assert_eq!(
        sim.requests(),
        r.pages + 1,
        "one retry: the timed-out request"
    );
    let lines = log_lines_for(mark, &sim.uri());
    assert!(
        lines
            .iter()
            .any(|l| l.contains("retrying HTTP request") && l.contains("timed out")),
        "{lines:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "no wait for the slow answer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_that_never_answers_ends_with_timeout_within_the_configured_time() {
    let ali = SimulatedAliyun::start("cn-hangzhou", 10).await;
    let tc = SimulatedTencent::start(10).await;
    let hw = SimulatedHuawei::start("cn-north-4", 10).await;
    let vc = SimulatedVsphere::start(&[("dc", 10)]).await;
    let never = Some(Duration::from_secs(600));
    ali.set_latency(never);
    tc.set_latency(never);
    hw.set_latency(never);
    vc.set_latency(never);

    // 200 ms per attempt, three attempts, a one-second retry budget and a five-second
    // run budget: every run must end with `Timeout` well within five seconds.
    let mut opts = options(Duration::from_millis(200), 3);
    opts.http.retry.max_elapsed = Duration::from_secs(1);
    opts.run_timeout = Duration::from_secs(5);
    let rig = Rig::new("sqlite::memory:", opts).await;
    let runs = [
        (
            rig.secret(
                Vendor::Aliyun,
                aliyun::DEFAULT_ACCESS_KEY_ID,
                aliyun::DEFAULT_ACCESS_KEY_SECRET,
                ali.uri(),
            )
            .await,
            "cn-hangzhou",
        ),
        (
            rig.secret(
                Vendor::Tencent,
                tencent::SECRET_ID,
                tencent::SECRET_KEY,
                tc.uri(),
            )
            .await,
            tencent::REGION,
        ),
        (
            rig.secret(
                Vendor::Huawei,
                huawei::ACCESS_KEY,
                huawei::SECRET_KEY,
                hw.uri(),
            )
            .await,
            "cn-north-4",
        ),
        (
            rig.secret(
                Vendor::Vsphere,
                SimulatedVsphere::USER,
                SimulatedVsphere::PASSWORD,
                vc.uri(),
            )
            .await,
            "",
        ),
    ];
    let started = Instant::now();
    let sync = |i: usize| rig.syncer.sync(request(&runs[i].0, runs[i].1));
    let (a, b, c, d) = tokio::join!(sync(0), sync(1), sync(2), sync(3));
    let results = [a, b, c, d];
    let elapsed = started.elapsed();
    for ((secret, _), result) in runs.iter().zip(results) {
        let e = result.expect_err("a silent vendor cannot succeed");
        assert_eq!(e.kind(), ErrorKind::Timeout, "{}: {e}", secret.vendor);
        assert_eq!(rig.active(secret.vendor).await, 0);
    }
    assert!(
        elapsed < Duration::from_secs(5),
        "ended in {elapsed:?}, past the run budget"
    );
    assert!(
        elapsed >= Duration::from_millis(400),
        "attempts were made: {elapsed:?}"
    );
}

#[tokio::test]
async fn a_permanent_failure_at_page_k_keeps_earlier_pages_releases_nothing_and_recovers() {
    let sim = SimulatedVsphere::start(&[("dc-a", 1000)]).await;
    let rig = Rig::new("sqlite::memory:", options(Duration::from_secs(10), 4)).await;
    let secret = rig
        .secret(
            Vendor::Vsphere,
            SimulatedVsphere::USER,
            SimulatedVsphere::PASSWORD,
            sim.uri(),
        )
        .await;
    let r = rig.syncer.sync(request(&secret, "")).await.unwrap();
    assert!(r.complete && r.created == 1000, "{r:?}");
    assert_eq!(r.pages, 10);

    // Ten machines go away; then page 4 of the next run is refused for good.
    let gone: Vec<String> = sim.instance_uuids().into_iter().rev().take(10).collect();
    for uuid in &gone {
        sim.remove_vm(uuid);
    }
    let nth = sim.count("ContinueRetrievePropertiesEx") + 3;
    sim.fail_nth(
        "ContinueRetrievePropertiesEx",
        nth,
        "NoPermission",
        "Permission to perform this operation was denied.",
    );
    let r = rig.syncer.sync(request(&secret, "")).await.unwrap();
    assert!(!r.complete, "{r:?}");
    let error = r.error.as_ref().expect("the error is reported");
    assert_eq!(error.kind, ErrorKind::PermissionDenied, "{error:?}");
    assert_eq!(r.pages, 3, "pages 1 to 3 stored, page 4 failed");
    assert_eq!((r.total_succeed, r.unchanged, r.released), (300, 300, 0));
    assert_eq!(rig.active(Vendor::Vsphere).await, 1000, "nothing released");
    assert_eq!(rig.released(Vendor::Vsphere).await, 0);

    let r = rig.syncer.sync(request(&secret, "")).await.unwrap();
    assert!(r.complete && r.error.is_none(), "{r:?}");
    assert_eq!((r.total_succeed, r.released), (990, 10));
    assert_eq!(rig.active(Vendor::Vsphere).await, 990);
    assert_eq!(rig.released(Vendor::Vsphere).await, 10);
}

/// Asserts a run refused for good from page `k` on (`k` pages of `per_page` stored, the
/// error reported as `PermissionDenied` with the vendor's `code`) kept every one of `hosts` stored hosts active.
async fn assert_failed_at_page_k(
    rig: &Rig,
    vendor: Vendor,
    r: &SyncResponse,
    code: &str,
    k: u64,
    per_page: u64,
    hosts: u64,
) {
    assert!(!r.complete, "{vendor}: {r:?}");
    let error = r.error.as_ref().expect("the error is reported");
    assert_eq!(
        error.kind,
        ErrorKind::PermissionDenied,
        "{vendor}: {error:?}"
    );
    assert_eq!(error.code.as_deref(), Some(code), "{vendor}: {error:?}");
    assert_eq!(r.pages, k, "{vendor}: pages before k stored, page k failed");
    assert_eq!(
        (r.total_succeed, r.unchanged, r.released),
        (k * per_page, k * per_page, 0),
        "{vendor}"
    );
    assert_eq!(
        rig.active(vendor).await,
        hosts,
        "{vendor}: nothing released"
    );
    assert_eq!(rig.released(vendor).await, 0, "{vendor}");
}

/// Asserts a run after a failed one completed and released the `gone` hosts.
async fn assert_recovered(rig: &Rig, vendor: Vendor, r: &SyncResponse, hosts: u64, gone: u64) {
    assert!(r.complete && r.error.is_none(), "{vendor}: {r:?}");
    assert_eq!(
        (r.total_succeed, r.released),
        (hosts - gone, gone),
        "{vendor}"
    );
    assert_eq!(rig.active(vendor).await, hosts - gone, "{vendor}");
    assert_eq!(rig.released(vendor).await, gone, "{vendor}");
}

#[tokio::test]
async fn aliyun_a_permanent_failure_at_page_k_keeps_earlier_pages_releases_nothing_and_recovers() {
    let sim = SimulatedAliyun::start("cn-hangzhou", 1000).await;
    let rig = Rig::new("sqlite::memory:", options(Duration::from_secs(10), 4)).await;
    let secret = rig
        .secret(
            Vendor::Aliyun,
            aliyun::DEFAULT_ACCESS_KEY_ID,
            aliyun::DEFAULT_ACCESS_KEY_SECRET,
            sim.uri(),
        )
        .await;
    let r = rig
        .syncer
        .sync(request(&secret, "cn-hangzhou"))
        .await
        .unwrap();
    assert!(r.complete && r.created == 1000, "{r:?}");
    assert_eq!(r.pages, 10);

    // Ten hosts go away; then page 3 (0-based) and later of the next run are refused.
    for i in 990..1000 {
        assert!(sim.remove_host(&sim.instance_id(i)));
    }
    sim.fail_pages_from(Some(3));
    let before = sim.requests();
    let r = rig
        .syncer
        .sync(request(&secret, "cn-hangzhou"))
        .await
        .unwrap();
    assert_failed_at_page_k(&rig, Vendor::Aliyun, &r, "Forbidden.RAM", 3, 100, 1000).await;
    assert_eq!(
        sim.requests() - before,
        4,
        "a permission error is not retried"
    );
    assert_eq!(
        sim.answers().last().map(String::as_str),
        Some("Forbidden.RAM")
    );

    sim.fail_pages_from(None);
    let r = rig
        .syncer
        .sync(request(&secret, "cn-hangzhou"))
        .await
        .unwrap();
    assert_recovered(&rig, Vendor::Aliyun, &r, 1000, 10).await;
}

#[tokio::test]
async fn tencent_a_permanent_failure_at_page_k_keeps_earlier_pages_releases_nothing_and_recovers() {
    let sim = SimulatedTencent::start(1000).await;
    let rig = Rig::new("sqlite::memory:", options(Duration::from_secs(10), 4)).await;
    let secret = rig
        .secret(
            Vendor::Tencent,
            tencent::SECRET_ID,
            tencent::SECRET_KEY,
            sim.uri(),
        )
        .await;
    let r = rig
        .syncer
        .sync(request(&secret, tencent::REGION))
        .await
        .unwrap();
    assert!(r.complete && r.created == 1000, "{r:?}");
    assert_eq!(r.pages, 1000 / tencent::MAX_LIMIT);

    // Ten instances go away; then every page from Offset 300 on is refused. Pages are
    // fetched concurrently but yielded in order: exactly pages 0 to 2 are stored.
    let gone: Vec<String> = sim.instance_ids().into_iter().rev().take(10).collect();
    for id in &gone {
        assert!(sim.remove_instance(id));
    }
    sim.fail_pages_from(Some(3));
    let r = rig
        .syncer
        .sync(request(&secret, tencent::REGION))
        .await
        .unwrap();
    assert_failed_at_page_k(
        &rig,
        Vendor::Tencent,
        &r,
        "UnauthorizedOperation",
        3,
        tencent::MAX_LIMIT,
        1000,
    )
    .await;

    sim.fail_pages_from(None);
    let r = rig
        .syncer
        .sync(request(&secret, tencent::REGION))
        .await
        .unwrap();
    assert_recovered(&rig, Vendor::Tencent, &r, 1000, 10).await;
}

#[tokio::test]
async fn huawei_a_permanent_failure_at_page_k_keeps_earlier_pages_releases_nothing_and_recovers() {
    let sim = SimulatedHuawei::start("cn-north-4", 1000).await;
    let rig = Rig::new("sqlite::memory:", options(Duration::from_secs(10), 4)).await;
    let secret = rig
        .secret(
            Vendor::Huawei,
            huawei::ACCESS_KEY,
            huawei::SECRET_KEY,
            sim.uri(),
        )
        .await;
    let r = rig
        .syncer
        .sync(request(&secret, "cn-north-4"))
        .await
        .unwrap();
    assert!(r.complete && r.created == 1000, "{r:?}");
    let pages = r.pages;
    let per_page = 1000 / pages;
    assert!(pages > 3 && 1000 % pages == 0, "{r:?}");

    // Ten servers go away; then every page after page 3 (page numbers from 1) is refused.
    // Pages are fetched concurrently but yielded in order: exactly pages 1 to 3 are stored.
    let gone: Vec<String> = sim
        .server_ids("cn-north-4")
        .into_iter()
        .rev()
        .take(10)
        .collect();
    assert_eq!(sim.remove_servers("cn-north-4", &gone), 10);
    sim.fail_pages_from(Some(3));
    let r = rig
        .syncer
        .sync(request(&secret, "cn-north-4"))
        .await
        .unwrap();
    assert_failed_at_page_k(&rig, Vendor::Huawei, &r, "Ecs.0319", 3, per_page, 1000).await;
    assert_eq!(sim.auth_failures(huawei::ACCESS_KEY), 0);

    sim.fail_pages_from(None);
    let r = rig
        .syncer
        .sync(request(&secret, "cn-north-4"))
        .await
        .unwrap();
    assert_recovered(&rig, Vendor::Huawei, &r, 1000, 10).await;
}

/// Asserts a run with revoked credentials failed as `Unauthenticated`, naming the
/// vendor's code in the error and its message.
fn assert_unauthenticated(vendor: Vendor, e: &cmdb::core::Error) {
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{vendor}: {e}");
    let code = e
        .vendor_error()
        .and_then(|v| v.code.clone())
        .unwrap_or_else(|| panic!("{vendor}: no vendor code in {e}"));
    assert!(!code.is_empty());
    assert!(
        e.to_string().contains(&code),
        "{vendor}: {e} does not name {code}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_revoked_between_syncs_fail_unauthenticated_once_and_release_nothing() {
    let rig = Rig::new("sqlite::memory:", options(Duration::from_secs(10), 6)).await;

    // Alibaba Cloud: the AccessKey is deleted in the console.
    let ali = SimulatedAliyun::start("cn-hangzhou", 120).await;
    let s = rig
        .secret(
            Vendor::Aliyun,
            aliyun::DEFAULT_ACCESS_KEY_ID,
            aliyun::DEFAULT_ACCESS_KEY_SECRET,
            ali.uri(),
        )
        .await;
    assert!(
        rig.syncer
            .sync(request(&s, "cn-hangzhou"))
            .await
            .unwrap()
            .complete
    );
    ali.set_credentials("LTAI5tAnotherKey0002", "another-secret");
    let before = ali.requests();
    let e = rig
        .syncer
        .sync(request(&s, "cn-hangzhou"))
        .await
        .unwrap_err();
    assert_unauthenticated(Vendor::Aliyun, &e);
    assert_eq!(ali.requests() - before, 1, "no retry on an auth error");
    assert_eq!(rig.active(Vendor::Aliyun).await, 120);

    // Tencent Cloud: the SecretKey is rotated.
    let tc = SimulatedTencent::start(120).await;
    let s = rig
        .secret(
            Vendor::Tencent,
            tencent::SECRET_ID,
            tencent::SECRET_KEY,
            tc.uri(),
        )
        .await;
    assert!(
        rig.syncer
            .sync(request(&s, tencent::REGION))
            .await
            .unwrap()
            .complete
    );
    tc.set_credentials(tencent::SECRET_ID, "rotated-tencent-secret-key");
    let before = tc.requests();
    let e = rig
        .syncer
        .sync(request(&s, tencent::REGION))
        .await
        .unwrap_err();
    assert_unauthenticated(Vendor::Tencent, &e);
    assert!(
        tc.requests() - before <= 4,
        "at most one attempt per page in flight"
    );
    assert_eq!(rig.active(Vendor::Tencent).await, 120);

    // Huawei Cloud: the AK is revoked; five failures would lock it, so every run must
    // make exactly one attempt.
    let hw = SimulatedHuawei::start("cn-north-4", 120).await;
    let s = rig
        .secret(
            Vendor::Huawei,
            huawei::ACCESS_KEY,
            huawei::SECRET_KEY,
            hw.uri(),
        )
        .await;
    assert!(
        rig.syncer
            .sync(request(&s, "cn-north-4"))
            .await
            .unwrap()
            .complete
    );
    hw.revoke_key(huawei::ACCESS_KEY);
    for run in 1..=3u32 {
        let e = rig
            .syncer
            .sync(request(&s, "cn-north-4"))
            .await
            .unwrap_err();
        assert_unauthenticated(Vendor::Huawei, &e);
        assert_eq!(
            hw.auth_failures(huawei::ACCESS_KEY),
            run,
            "one attempt per run"
        );
    }
    assert!(!hw.is_locked(huawei::ACCESS_KEY));
    assert_eq!(rig.active(Vendor::Huawei).await, 120);

    // vSphere: the password changed; the next login is refused.
    let vc = SimulatedVsphere::start(&[("dc", 120)]).await;
    let s = rig
        .secret(
            Vendor::Vsphere,
            SimulatedVsphere::USER,
            SimulatedVsphere::PASSWORD,
            vc.uri(),
        )
        .await;
    assert!(rig.syncer.sync(request(&s, "")).await.unwrap().complete);
    vc.fail_next(
        "Login",
        "InvalidLogin",
        "Cannot complete login due to an incorrect user name or password.",
    );
    let before = vc.login_attempts();
    let e = rig.syncer.sync(request(&s, "")).await.unwrap_err();
    assert_unauthenticated(Vendor::Vsphere, &e);
    assert_eq!(vc.login_attempts() - before, 1);
    assert_eq!(rig.active(Vendor::Vsphere).await, 120);
    assert_eq!(
        rig.released(Vendor::Aliyun).await
            + rig.released(Vendor::Tencent).await
            + rig.released(Vendor::Huawei).await
            + rig.released(Vendor::Vsphere).await,
        0
    );
}

/// Starts a sync, waits until this run stored at least 300 hosts, runs `break_store`,
/// and answers the run's result.
async fn sync_and_break_store<B: std::future::Future<Output = ()>>(
    rig: &Rig,
    secret: &Secret,
    break_store: B,
) -> cmdb::core::Result<SyncResponse> {
    let (progress, mut watch) = tokio::sync::watch::channel(Default::default());
    let run = rig
        .syncer
        .sync_with_progress(request(secret, "cn-hangzhou"), &progress);
    let breaker = async {
        for _ in 0..3000 {
            if watch.borrow_and_update().stored >= 300 {
                break_store.await;
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(10), watch.changed()).await;
        }
        panic!("the run never stored 300 hosts");
    };
    let (r, ()) = tokio::join!(run, breaker);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_store_closed_mid_run_ends_with_a_store_error_and_keeps_committed_pages() {
    let path = common::sqlite_path("store_closed");
    let url = format!("sqlite://{}", path.display());
    let sim = SimulatedAliyun::start("cn-hangzhou", 2000).await;
    let rig = Rig::new(&url, options(Duration::from_secs(10), 4)).await;
    let secret = rig
        .secret(
            Vendor::Aliyun,
            aliyun::DEFAULT_ACCESS_KEY_ID,
            aliyun::DEFAULT_ACCESS_KEY_SECRET,
            sim.uri(),
        )
        .await;
    let first = rig
        .syncer
        .sync(request(&secret, "cn-hangzhou"))
        .await
        .unwrap();
    assert!(first.complete);
    // Half the hosts go, so a complete run would release them; the pages come slowly.
    for i in 1000..2000 {
        sim.remove_host(&sim.instance_id(i));
    }
    sim.set_latency(Some(Duration::from_millis(40)));
    let r = sync_and_break_store(&rig, &secret, async { rig.store.close().await }).await;
    let r = r.expect("pages were stored before the store failed: a response");
    assert!(!r.complete, "{r:?}");
    assert_eq!(
        r.error.as_ref().map(|e| e.kind),
        Some(ErrorKind::Store),
        "{r:?}"
    );
    assert_eq!(r.released, 0);

    // Reopened: every host is there once, none released; the next run recovers.
    let store = Arc::new(SqlStore::connect(&url).await.unwrap());
    assert_eq!(count(&*store, Vendor::Aliyun, false).await, 2000);
    assert_eq!(count(&*store, Vendor::Aliyun, true).await, 0);
    sim.set_latency(None);
    let syncer = Syncer::new(
        store.clone(),
        store.clone(),
        rig.cipher.clone(),
        ProviderRegistry::with_builtin_providers(),
    )
    .with_options(options(Duration::from_secs(10), 4).with_max_release_share(0.6));
    let r = syncer.sync(request(&secret, "cn-hangzhou")).await.unwrap();
    assert!(r.complete && r.error.is_none(), "{r:?}");
    assert_eq!((r.total_succeed, r.released), (1000, 1000));
    let _ = std::fs::remove_file(&path);
}

/// A PostgreSQL role and schema of the test's own, so that its connections can be cut
/// without touching any other test's.
#[cfg(feature = "postgres")]
struct PgRole {
    admin: sqlx::PgPool,
    name: String,
    url: String,
}

#[cfg(feature = "postgres")]
impl PgRole {
    async fn create(admin_url: &str) -> PgRole {
        let admin = sqlx::PgPool::connect(admin_url).await.expect("postgres");
        let name = common::unique("cmdb_rel").to_lowercase();
        let database: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(&admin)
            .await
            .unwrap();
        for sql in [
            format!("CREATE ROLE {name} LOGIN PASSWORD 'pw'"),
            format!("GRANT CREATE, CONNECT ON DATABASE \"{database}\" TO {name}"),
            format!("CREATE SCHEMA {name} AUTHORIZATION {name}"),
        ] {
            sqlx::query(&sql).execute(&admin).await.expect(&sql);
        }
        let (scheme, rest) = admin_url.split_once("://").expect("a URL");
        let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        let url = format!("{scheme}://{name}:pw@{host}");
        PgRole { admin, name, url }
    }

    async fn exec(&self, sql: &str) {
        sqlx::query(sql).execute(&self.admin).await.expect(sql);
    }

    async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.admin)
            .await
            .expect(sql)
    }

    async fn drop(self) {
        let n = &self.name;
        self.exec(&format!("DROP SCHEMA {n} CASCADE")).await;
        self.exec(&format!("DROP OWNED BY {n}")).await;
        self.exec(&format!("DROP ROLE {n}")).await;
    }
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_store_cut_off_mid_run_ends_with_a_store_error_and_keeps_committed_pages() {
    let Some(admin_url) = common::postgres_url("the store-failure test") else {
        return;
    };
    let role = PgRole::create(&admin_url).await;
    let n = role.name.clone();
    let store = Arc::new(
        SqlStore::builder(role.url.clone())
            .schema(&n)
            .acquire_timeout(Duration::from_secs(2))
            .connect()
            .await
            .expect("store as the test role"),
    );
    let sim = SimulatedAliyun::start("cn-hangzhou", 2000).await;
    let rig = Rig::over(store, options(Duration::from_secs(10), 4));
    let secret = rig
        .secret(
            Vendor::Aliyun,
            aliyun::DEFAULT_ACCESS_KEY_ID,
            aliyun::DEFAULT_ACCESS_KEY_SECRET,
            sim.uri(),
        )
        .await;
    assert!(
        rig.syncer
            .sync(request(&secret, "cn-hangzhou"))
            .await
            .unwrap()
            .complete
    );
    for i in 1000..2000 {
        sim.remove_host(&sim.instance_id(i));
    }
    sim.set_latency(Some(Duration::from_millis(40)));
    // The connection is dropped: the role may not log in again, and its sessions are
    // terminated from another connection.
    let cut = async {
        role.exec(&format!("ALTER ROLE {n} NOLOGIN")).await;
        role.exec(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{n}'"
        ))
        .await;
    };
    let r = sync_and_break_store(&rig, &secret, cut)
        .await
        .expect("pages were stored before the store failed: a response");
    assert!(!r.complete, "{r:?}");
    assert_eq!(
        r.error.as_ref().map(|e| e.kind),
        Some(ErrorKind::Store),
        "{r:?}"
    );
    assert_eq!(r.released, 0);

    let table = format!("{n}.cmdb_hosts");
    assert_eq!(
        role.scalar(&format!("SELECT COUNT(*) FROM {table}")).await,
        2000
    );
    assert_eq!(
        role.scalar(&format!(
            "SELECT COUNT(*) FROM (SELECT vendor, instance_id FROM {table} GROUP BY vendor, instance_id HAVING COUNT(*) > 1) d"
        ))
        .await,
        0
    );
    assert_eq!(
        role.scalar(&format!(
            "SELECT COUNT(*) FROM {table} WHERE released_at IS NOT NULL"
        ))
        .await,
        0,
        "nothing released"
    );

    // The database is back: the next run completes and releases the missing half.
    role.exec(&format!("ALTER ROLE {n} LOGIN")).await;
    sim.set_latency(None);
    let store = Arc::new(
        SqlStore::builder(role.url.clone())
            .schema(&n)
            .connect()
            .await
            .unwrap(),
    );
    let syncer = Syncer::new(
        store.clone(),
        store.clone(),
        rig.cipher.clone(),
        ProviderRegistry::with_builtin_providers(),
    )
    .with_options(options(Duration::from_secs(10), 4).with_max_release_share(0.6));
    let r = syncer.sync(request(&secret, "cn-hangzhou")).await.unwrap();
    assert!(r.complete && r.error.is_none(), "{r:?}");
    assert_eq!((r.total_succeed, r.released), (1000, 1000));
    store.close().await;
    rig.store.close().await;
    role.drop().await;
}
