//! The sync engine's rules, end to end over the memory stores and the fake provider.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cmdb_core::{
    ErrorKind, HostProvider, HostQuery, HostStatus, HostStore, MemoryHostStore, Vendor,
};
use cmdb_http::RateLimiter;
use cmdb_secret::{Cipher, Credentials, MemorySecretStore, NewSecret, Secret, SecretStore};
use cmdb_sync::{
    Account, DetailsMode, ProviderContext, ProviderRegistry, SyncOptions, SyncProgress,
    SyncRequest, SyncState, Syncer,
};
use cmdb_testkit::{FakeProvider, InstrumentedStore, PageGauge};

const REGION: &str = "cn-hangzhou";

struct Env {
    cipher: Arc<Cipher>,
    secrets: Arc<MemorySecretStore>,
    hosts: Arc<MemoryHostStore>,
    secret: Secret,
    provider: Arc<Mutex<FakeProvider>>,
}

impl Env {
    async fn new(count: u64) -> Env {
        Env::with_secret(count, Vendor::Aliyun, vec![REGION.into()], None).await
    }

    async fn with_secret(
        count: u64,
        vendor: Vendor,
        regions: Vec<String>,
        address: Option<String>,
    ) -> Env {
        let cipher = Arc::new(Cipher::new(Cipher::generate_key()));
        let secrets = Arc::new(MemorySecretStore::new());
        let mut new = NewSecret::new(vendor, "AKIDEXAMPLE12345", "not-a-real-secret")
            .with_description("test account")
            .with_allowed_regions(regions)
            .with_request_rate(1000);
        new.address = address;
        let secret = new.seal(&cipher).unwrap();
        secrets.create(&secret).await.unwrap();
        let region = if vendor == Vendor::Vsphere {
            "vc.example.test"
        } else {
            REGION
        };
        Env {
            cipher,
            secrets,
            hosts: Arc::new(MemoryHostStore::new()),
            secret,
            provider: Arc::new(Mutex::new(FakeProvider::new(vendor, region, count, 100))),
        }
    }

    /// Replaces what the next sync lists.
    fn set_provider(&self, f: impl FnOnce(FakeProvider) -> FakeProvider) {
        let mut p = self.provider.lock().unwrap();
        *p = f(p.clone());
    }

    fn id(&self, i: u64) -> String {
        self.provider.lock().unwrap().instance_id(i)
    }

    fn registry(&self) -> ProviderRegistry {
        let provider = Arc::clone(&self.provider);
        let vendor = self.secret.vendor;
        ProviderRegistry::new().with(vendor, move |_ctx: ProviderContext| {
            let p: Arc<dyn HostProvider> = Arc::new(provider.lock().unwrap().clone());
            Ok(p)
        })
    }

    fn syncer(&self) -> Syncer {
        self.syncer_over(self.hosts.clone())
    }

    fn syncer_over(&self, store: Arc<dyn HostStore>) -> Syncer {
        Syncer::new(
            self.secrets.clone(),
            store,
            self.cipher.clone(),
            self.registry(),
        )
    }

    fn request(&self) -> SyncRequest {
        SyncRequest::new(&self.secret.id, REGION)
    }

    async fn active(&self) -> u64 {
        let q = HostQuery::default().with_released(false);
        self.hosts.query(&q).await.unwrap().total
    }
}

#[tokio::test]
async fn first_sync_creates_then_unchanged_then_updated() {
    let env = Env::new(250).await;
    let syncer = env.syncer();

    let r = syncer.sync(env.request()).await.unwrap();
    assert!(r.complete && r.error.is_none());
    assert_eq!((r.pages, r.total_succeed, r.total_failed), (3, 250, 0));
    assert_eq!(
        (r.created, r.updated, r.unchanged, r.released),
        (250, 0, 0, 0)
    );
    assert_eq!(r.details.len(), 250);
    assert!(r
        .details
        .iter()
        .all(|d| d.is_success && d.message == "created"));
    let stored = env.hosts.get(Vendor::Aliyun, &env.id(7)).await;
    assert_eq!(
        stored.unwrap().unwrap().host.secret_id,
        env.secret.id,
        "hosts carry the secret"
    );

    let r = syncer.sync(env.request()).await.unwrap();
    assert_eq!(
        (r.created, r.updated, r.unchanged),
        (0, 0, 250),
        "identical sync"
    );

    env.set_provider(|p| {
        p.with_host_fn(|h| {
            if h.instance_id.ends_with("0000005") {
                h.status = HostStatus::Stopped;
            }
        })
    });
    let r = syncer.sync(env.request()).await.unwrap();
    assert_eq!(
        (r.created, r.updated, r.unchanged),
        (0, 1, 249),
        "one changed host"
    );
    let changed = r.details.iter().find(|d| d.message == "updated").unwrap();
    assert!(changed.instance_id.ends_with("0000005"));
}

#[tokio::test]
async fn removed_host_is_released_and_comes_back() {
    let env = Env::new(250).await;
    let syncer = env.syncer();
    syncer.sync(env.request()).await.unwrap();

    env.set_provider(|_| FakeProvider::new(Vendor::Aliyun, REGION, 249, 100));
    let r = syncer.sync(env.request()).await.unwrap();
    assert_eq!((r.released, r.release_skipped.as_deref()), (1, None));
    assert_eq!(env.active().await, 249);
    let gone_id = env.id(249);
    let gone = env
        .hosts
        .get(Vendor::Aliyun, &gone_id)
        .await
        .unwrap()
        .unwrap();
    assert!(gone.released_at.is_some(), "released, not deleted");

    env.set_provider(|_| FakeProvider::new(Vendor::Aliyun, REGION, 250, 100));
    let r = syncer.sync(env.request()).await.unwrap();
    assert_eq!(
        (r.updated, r.unchanged, r.released),
        (1, 249, 0),
        "the host reappears"
    );
    assert_eq!(env.active().await, 250);
}

#[tokio::test]
async fn guard_refuses_to_release_a_whole_scope_on_an_empty_listing() {
    let env = Env::new(250).await;
    let syncer = env.syncer();
    syncer.sync(env.request()).await.unwrap();

    env.set_provider(|_| FakeProvider::new(Vendor::Aliyun, REGION, 0, 100));
    let r = syncer.sync(env.request()).await.unwrap();
    assert!(r.complete);
    assert_eq!(r.released, 0);
    let reason = r.release_skipped.expect("the guard says why");
    assert!(reason.contains("all 250 hosts"), "{reason}");
    assert_eq!(env.active().await, 250, "nothing released");

    let r = syncer
        .sync(env.request().with_force_release(true))
        .await
        .unwrap();
    assert_eq!(
        (r.released, r.release_skipped),
        (250, None),
        "forced release"
    );
    assert_eq!(env.active().await, 0);
}

#[tokio::test]
async fn guard_refuses_releasing_more_than_the_allowed_share() {
    let env = Env::new(250).await;
    let syncer = env.syncer();
    syncer.sync(env.request()).await.unwrap();

    env.set_provider(|_| FakeProvider::new(Vendor::Aliyun, REGION, 100, 100));
    let r = syncer.sync(env.request()).await.unwrap();
    assert_eq!(r.released, 0);
    assert!(r.release_skipped.unwrap().contains("150 of 250"));
    assert_eq!(env.active().await, 250);

    let lenient = env
        .syncer()
        .with_options(SyncOptions::default().with_max_release_share(0.7));
    let r = lenient.sync(env.request()).await.unwrap();
    assert_eq!(r.released, 150, "within a larger allowed share");
}

#[tokio::test]
async fn mid_stream_failure_keeps_stored_pages_and_releases_nothing() {
    let env = Env::new(500).await;
    let syncer = env.syncer();
    syncer.sync(env.request()).await.unwrap();

    env.set_provider(|_| {
        FakeProvider::new(Vendor::Aliyun, REGION, 300, 100)
            .with_failure_at(2, ErrorKind::RateLimited)
    });
    let r = syncer.sync(env.request()).await.unwrap();
    assert!(!r.complete);
    assert_eq!((r.pages, r.total_succeed, r.released), (2, 200, 0));
    let err = r.error.expect("error reported");
    assert_eq!(err.kind, ErrorKind::RateLimited);
    assert!(r.release_skipped.unwrap().contains("incomplete"));
    assert_eq!(env.active().await, 500, "a partial sync never releases");

    env.set_provider(|_| FakeProvider::new(Vendor::Aliyun, REGION, 500, 100));
    let r = syncer.sync(env.request()).await.unwrap();
    assert!(r.complete && r.error.is_none(), "the next sync recovers");
}

#[tokio::test]
async fn failure_before_anything_is_stored_is_an_error() {
    let env = Env::new(300).await;
    env.set_provider(|p| p.with_failure_at(0, ErrorKind::Unauthenticated));
    let e = env.syncer().sync(env.request()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    assert_eq!(env.hosts.len(), 0);
}

#[tokio::test]
async fn store_failure_mid_run_ends_incomplete_with_a_store_error() {
    let env = Env::new(500).await;
    let store = Arc::new(InstrumentedStore::new(MemoryHostStore::new()).with_failure_on_upsert(3));
    // With one page queued an upsert holds at most two of the five pages, so the third
    // upsert comes.
    let r = env
        .syncer_over(store.clone())
        .with_options(SyncOptions::default().with_queue_pages(1))
        .sync(env.request())
        .await
        .unwrap();
    assert!(!r.complete);
    // Pages waiting when the store is free are stored together: two upserts hold at
    // least two pages, and whatever they held is stored and counted.
    assert!(r.pages >= 2, "{} pages", r.pages);
    assert_eq!(r.error.unwrap().kind, ErrorKind::Store);
    assert_eq!(store.upserts(), 3, "no upsert after the failing one");
    assert_eq!(
        store.inner().len() as u64,
        r.pages * 100,
        "committed pages are intact"
    );
}

#[tokio::test]
async fn a_host_that_fails_to_store_is_a_failed_detail_not_a_failed_run() {
    let env = Env::new(150).await;
    env.set_provider(|p| {
        p.with_host_fn(|h| {
            if h.instance_id.ends_with("0000003") {
                h.instance_id.clear();
            }
        })
    });
    let syncer = env.syncer();
    let r = syncer.sync(env.request()).await.unwrap();
    assert!(r.complete);
    assert_eq!((r.total_succeed, r.total_failed), (149, 1));
    let failed: Vec<_> = r.details.iter().filter(|d| !d.is_success).collect();
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0].message.contains("instance_id"),
        "{}",
        failed[0].message
    );
    assert!(r
        .release_skipped
        .unwrap()
        .contains("failed to map or store"));

    let r = syncer
        .sync(env.request().with_details(DetailsMode::Failed))
        .await
        .unwrap();
    assert_eq!(r.details.len(), 1, "only failed details");
    let r = syncer
        .sync(env.request().with_details(DetailsMode::None))
        .await
        .unwrap();
    assert!(r.details.is_empty());
    assert_eq!(r.total_succeed, 149, "counters are kept without details");
}

#[tokio::test]
async fn a_record_the_provider_cannot_map_is_a_failed_detail_and_releases_nothing() {
    let env = Env::new(250).await;
    let syncer = env.syncer();
    syncer.sync(env.request()).await.unwrap();
    // Host 7 now comes back as a record without an id; host 249 is gone.
    env.set_provider(|_| FakeProvider::new(Vendor::Aliyun, REGION, 249, 100).with_unmapped([7]));
    let r = syncer.sync(env.request()).await.unwrap();
    assert_eq!((r.total_succeed, r.total_failed), (248, 1), "{r:?}");
    let failed: Vec<_> = r.details.iter().filter(|d| !d.is_success).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].message, "fake record 7 has no id");
    assert_eq!(r.released, 0, "nothing is released while a record failed");
    assert!(r.release_skipped.unwrap().contains("1 hosts failed"));
    assert_eq!(env.active().await, 250);
}

#[tokio::test]
async fn details_are_capped_and_say_so_while_the_counters_count_every_host() {
    let env = Env::new(250).await;
    let syncer = env
        .syncer()
        .with_options(SyncOptions::default().with_max_details(100));
    let r = syncer.sync(env.request()).await.unwrap();
    assert_eq!((r.total_succeed, r.created), (250, 250));
    assert_eq!(r.details.len(), 100);
    assert!(r.details_truncated);
    let r = env.syncer().sync(env.request()).await.unwrap();
    assert_eq!((r.details.len(), r.details_truncated), (250, false));
}

#[tokio::test]
async fn request_validation_and_secret_rules() {
    let env = Env::new(10).await;
    let syncer = env.syncer();

    let e = syncer.sync(SyncRequest::new("", REGION)).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.field()),
        (ErrorKind::InvalidInput, Some("secret_id"))
    );
    let e = syncer
        .sync(SyncRequest::new("x".repeat(101), REGION))
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("secret_id"));
    let e = syncer
        .sync(SyncRequest::new("no-such-secret", REGION))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let e = syncer
        .sync(SyncRequest::new(&env.secret.id, ""))
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.field()),
        (ErrorKind::InvalidInput, Some("region"))
    );
    let e = syncer
        .sync(SyncRequest::new(&env.secret.id, "us-west-1"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    assert!(e.message().contains("us-west-1"));
    let mut rds = env.request();
    rds.resource_type = cmdb_core::ResourceType::Rds;
    // This registry builds no database provider (nor has the syncer a database store).
    let e = syncer.sync(rds).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.message().contains("no database (rds) provider"), "{e}");
    assert_eq!(env.hosts.len(), 0, "no invalid request stored anything");
}

#[tokio::test]
async fn wildcard_regions_and_vsphere_without_region() {
    let env = Env::with_secret(5, Vendor::Tencent, vec!["*".into()], None).await;
    env.set_provider(|_| FakeProvider::new(Vendor::Tencent, "ap-tokyo", 5, 100));
    let r = env
        .syncer()
        .sync(SyncRequest::new(&env.secret.id, "ap-tokyo"))
        .await
        .unwrap();
    assert_eq!(r.created, 5);

    let env = Env::with_secret(
        4,
        Vendor::Vsphere,
        vec!["*".into()],
        Some("https://vc.example.test/sdk".into()),
    )
    .await;
    let r = env
        .syncer()
        .sync(SyncRequest::new(&env.secret.id, ""))
        .await
        .unwrap();
    assert_eq!(r.created, 4, "vSphere needs no region");
}

#[tokio::test]
async fn link_local_and_metadata_endpoints_are_refused_unless_allowed() {
    for address in [
        "http://169.254.169.254/latest",
        "http://[fe80::1]:8080",
        "http://100.100.100.200/",
        "http://[fd00:ec2::254]/",
    ] {
        let env = Env::with_secret(3, Vendor::Aliyun, vec!["*".into()], Some(address.into())).await;
        let e = env.syncer().sync(env.request()).await.unwrap_err();
        assert_eq!(
            (e.kind(), e.field()),
            (ErrorKind::InvalidInput, Some("address")),
            "{address}"
        );
        assert_eq!(env.hosts.len(), 0);
        let mut lab = SyncOptions::default();
        lab.http.addresses = lab.http.addresses.with_link_local(true);
        let allowed = env.syncer().with_options(lab);
        assert_eq!(
            allowed.sync(env.request()).await.unwrap().created,
            3,
            "{address}"
        );
    }
}

#[tokio::test]
async fn wrong_cipher_key_is_a_crypto_error() {
    let env = Env::new(10).await;
    let other = Arc::new(Cipher::new(Cipher::generate_key()));
    let syncer = Syncer::new(
        env.secrets.clone(),
        env.hosts.clone(),
        other,
        env.registry(),
    );
    let e = syncer.sync(env.request()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Crypto);
    assert_eq!(env.hosts.len(), 0);
}

#[tokio::test]
async fn missing_provider_is_a_clear_error() {
    let env = Env::new(10).await;
    let syncer = Syncer::new(
        env.secrets.clone(),
        env.hosts.clone(),
        env.cipher.clone(),
        ProviderRegistry::new(),
    );
    let e = syncer.sync(env.request()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.message().contains("aliyun"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn same_scope_twice_at_once_is_a_conflict_other_scopes_run() {
    let env = Env::with_secret(300, Vendor::Aliyun, vec!["*".into()], None).await;
    env.set_provider(|p| p.with_delay(Duration::from_millis(50)));
    let syncer = env.syncer();
    let (a, b) = tokio::join!(syncer.sync(env.request()), syncer.sync(env.request()));
    let (ok, err) = match (a, b) {
        (Ok(r), Err(e)) | (Err(e), Ok(r)) => (r, e),
        other => panic!("expected one success and one conflict, got {other:?}"),
    };
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(ok.created, 300);

    // The lock is gone once the run ended.
    syncer.sync(env.request()).await.unwrap();

    // Another region (another scope) runs alongside.
    let registry = ProviderRegistry::new().with(Vendor::Aliyun, |ctx: ProviderContext| {
        let p: Arc<dyn HostProvider> = Arc::new(
            FakeProvider::new(Vendor::Aliyun, ctx.region, 200, 100)
                .with_delay(Duration::from_millis(50)),
        );
        Ok(p)
    });
    let syncer = Syncer::new(
        env.secrets.clone(),
        env.hosts.clone(),
        env.cipher.clone(),
        registry,
    );
    let (a, b) = tokio::join!(
        syncer.sync(SyncRequest::new(&env.secret.id, "cn-beijing")),
        syncer.sync(SyncRequest::new(&env.secret.id, "cn-shanghai"))
    );
    assert_eq!((a.unwrap().created, b.unwrap().created), (200, 200));
}

#[tokio::test]
async fn a_prepared_sync_holds_the_scope_until_run_or_dropped() {
    let env = Env::new(120).await;
    let syncer = env.syncer();
    let prepared = syncer.prepare(env.request()).await.unwrap();
    assert_eq!(prepared.scope().region, REGION);
    assert_eq!(prepared.scope().secret_id, env.secret.id);
    let e = syncer.prepare(env.request()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "the scope is held");
    assert_eq!(env.hosts.len(), 0, "preparing lists nothing");
    drop(prepared);
    let prepared = syncer
        .prepare(env.request())
        .await
        .expect("dropping released the scope");
    // A prepared sync owns what it needs: it is spawned as is, the syncer dropped
    // (a clone, which shares its locks, is kept to check them).
    let clone = syncer.clone();
    drop(syncer);
    let (tx, rx) = tokio::sync::watch::channel(SyncProgress::default());
    let r = tokio::spawn(prepared.with_progress(tx).run())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.created, 120);
    assert_eq!(rx.borrow().state, SyncState::Succeeded);
    assert_eq!(rx.borrow().stored, 120);
    clone
        .prepare(env.request())
        .await
        .expect("running released the scope");
}

#[tokio::test]
async fn a_scope_locked_by_another_process_is_a_conflict() {
    let env = Env::new(10).await;
    let store =
        Arc::new(InstrumentedStore::new(MemoryHostStore::new()).with_scope_locks_held_elsewhere());
    let e = env
        .syncer_over(store.clone())
        .sync(env.request())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert!(e.message().contains("another process"), "{e}");
    assert_eq!(store.upserts(), 0);
}

#[tokio::test]
async fn a_thousand_page_sync_holds_at_most_two_queues_and_two_pages() {
    thousand_page_sync_is_bounded().await;
}

/// The same on a multi-threaded runtime, where the listing runs as a task of its own and
/// stored hosts go back to it to be freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_page_sync_on_two_threads_holds_at_most_two_queues_and_two_pages() {
    thousand_page_sync_is_bounded().await;
}

async fn thousand_page_sync_is_bounded() {
    let env = Env::new(0).await;
    let gauge = PageGauge::new();
    {
        let gauge = gauge.clone();
        env.set_provider(move |_| {
            FakeProvider::new(Vendor::Aliyun, REGION, 10_000, 10).with_gauge(gauge)
        });
    }
    let store = Arc::new(InstrumentedStore::new(MemoryHostStore::new()).with_gauge(gauge.clone()));
    let r = env
        .syncer_over(store)
        .sync(env.request().with_details(DetailsMode::None))
        .await
        .unwrap();
    assert_eq!((r.pages, r.created), (1000, 10_000));
    assert_eq!(gauge.current(), 0, "every host was consumed");
    // A batch of queue + 1 pages being stored, a full queue, and the page the listing
    // waits to queue: 2 x 4 + 2 pages of 10 hosts.
    let bound = (2 * SyncOptions::default().queue_pages as i64 + 2) * 10;
    assert!(
        gauge.max() <= bound,
        "at most {bound} hosts alive, saw {}",
        gauge.max()
    );
}

#[tokio::test(start_paused = true)]
async fn storing_overlaps_fetching() {
    // 10 pages, 100 ms to fetch each and 100 ms to store each: serially 2 s; pipelined
    // the store of page k runs during the fetch of page k+1, about 1.1 s.
    let env = Env::new(0).await;
    env.set_provider(|_| {
        FakeProvider::new(Vendor::Aliyun, REGION, 1000, 100).with_delay(Duration::from_millis(100))
    });
    let store = Arc::new(
        InstrumentedStore::new(MemoryHostStore::new()).with_delay(Duration::from_millis(100)),
    );
    let start = tokio::time::Instant::now();
    let r = env.syncer_over(store).sync(env.request()).await.unwrap();
    let took = start.elapsed();
    assert_eq!(r.pages, 10);
    assert!(
        took <= Duration::from_millis(1150),
        "pipelined run took {took:?}"
    );
    assert!(
        took >= Duration::from_millis(1100),
        "cannot beat fetch + last store: {took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_the_future_stops_at_a_page_boundary_and_unlocks() {
    let env = Env::new(1000).await;
    env.set_provider(|p| p.with_delay(Duration::from_millis(100)));
    let syncer = env.syncer();
    let cut = tokio::time::timeout(Duration::from_millis(350), syncer.sync(env.request())).await;
    assert!(cut.is_err(), "the run was still going");
    let requested = env.provider.lock().unwrap().requests();
    assert!(
        (3..=4).contains(&requested),
        "requests before the drop: {requested}"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        env.provider.lock().unwrap().requests(),
        requested,
        "nothing runs after the drop"
    );
    let stored = env.hosts.len() as u64;
    assert_eq!(stored % 100, 0, "whole pages only");
    assert!(stored >= 200);

    // The scope is free again, and nothing was released by the dropped run.
    env.set_provider(|_| FakeProvider::new(Vendor::Aliyun, REGION, 1000, 100));
    let r = syncer.sync(env.request()).await.unwrap();
    assert_eq!(r.created + r.unchanged, 1000);
}

#[tokio::test(start_paused = true)]
async fn run_timeout_ends_with_a_timeout_error() {
    let env = Env::new(1000).await;
    env.set_provider(|p| p.with_delay(Duration::from_secs(1)));
    let syncer = env
        .syncer()
        .with_options(SyncOptions::default().with_run_timeout(Duration::from_millis(3500)));
    let r = syncer.sync(env.request()).await.unwrap();
    assert!(!r.complete);
    assert_eq!(r.error.unwrap().kind, ErrorKind::Timeout);
    assert_eq!(r.pages, 3);
    assert_eq!(r.released, 0);
}

#[tokio::test(start_paused = true)]
async fn progress_is_published_while_the_run_goes() {
    let env = Env::new(500).await;
    env.set_provider(|p| p.with_delay(Duration::from_millis(100)));
    let syncer = Arc::new(env.syncer());
    let (tx, mut rx) = tokio::sync::watch::channel(SyncProgress::default());
    let run = {
        let syncer = Arc::clone(&syncer);
        let req = env.request();
        tokio::spawn(async move { syncer.sync_with_progress(req, &tx).await })
    };
    let mut seen = Vec::new();
    while rx.changed().await.is_ok() {
        let p = rx.borrow_and_update().clone();
        let done = p.state != SyncState::Running;
        seen.push(p);
        if done {
            break;
        }
    }
    let r = run.await.unwrap().unwrap();
    let mid = seen
        .iter()
        .find(|p| p.state == SyncState::Running && p.pages == 2)
        .expect("a running state after two pages");
    assert_eq!(
        (mid.hosts_seen, mid.stored, mid.expected_total),
        (200, 200, Some(500))
    );
    let last = seen.last().unwrap();
    assert_eq!(last.state, SyncState::Succeeded);
    assert_eq!((last.pages, last.stored), (5, r.total_succeed));
}

#[tokio::test]
async fn runs_of_one_secret_share_one_rate_limiter() {
    let env = Env::with_secret(10, Vendor::Aliyun, vec!["*".into()], None).await;
    let seen: Arc<Mutex<Vec<Arc<RateLimiter>>>> = Arc::default();
    let registry = {
        let seen = seen.clone();
        ProviderRegistry::new().with(Vendor::Aliyun, move |ctx: ProviderContext| {
            assert_eq!(ctx.request_rate, 1000);
            seen.lock().unwrap().push(ctx.limiter.clone());
            let p: Arc<dyn HostProvider> = Arc::new(
                FakeProvider::new(Vendor::Aliyun, ctx.region, 10, 5)
                    .with_delay(Duration::from_millis(10)),
            );
            Ok(p)
        })
    };
    let syncer = Syncer::new(
        env.secrets.clone(),
        env.hosts.clone(),
        env.cipher.clone(),
        registry,
    );
    let (a, b) = tokio::join!(
        syncer.sync(SyncRequest::new(&env.secret.id, "cn-beijing")),
        syncer.sync(SyncRequest::new(&env.secret.id, "cn-shanghai"))
    );
    a.unwrap();
    b.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert!(
        Arc::ptr_eq(&seen[0], &seen[1]),
        "concurrent runs of one secret share a limiter"
    );
}

#[test]
fn sync_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let syncer = Syncer::new(
        Arc::new(MemorySecretStore::new()),
        Arc::new(MemoryHostStore::new()),
        Arc::new(Cipher::new([7; 32])),
        ProviderRegistry::new(),
    );
    assert_send(&syncer.sync(SyncRequest::new("s", REGION)));
}

#[tokio::test(start_paused = true)]
async fn pages_waiting_for_a_slow_store_are_stored_together() {
    let env = Env::new(1000).await;
    env.set_provider(|_| FakeProvider::new(Vendor::Aliyun, REGION, 1000, 10));
    let store = Arc::new(
        InstrumentedStore::new(MemoryHostStore::new()).with_delay(Duration::from_millis(10)),
    );
    let r = env
        .syncer_over(store.clone())
        .sync(env.request())
        .await
        .unwrap();
    assert!(r.complete && r.error.is_none());
    assert_eq!((r.pages, r.created, r.total_succeed), (100, 1000, 1000));
    assert_eq!(store.inner().len(), 1000);
    // The listing is instant and each upsert takes 10 ms: after the first page, every
    // upsert takes the full queue of four pages (five when the listing, on another
    // thread, queues its next page meanwhile).
    assert!(
        store.upserts() <= 1 + 99_u64.div_ceil(4),
        "100 pages in {} upserts",
        store.upserts()
    );
}

#[tokio::test(start_paused = true)]
async fn a_listing_error_queued_behind_pages_ends_the_run_after_they_are_stored() {
    let env = Env::new(1000).await;
    env.set_provider(|_| {
        FakeProvider::new(Vendor::Aliyun, REGION, 1000, 10)
            .with_failure_at(50, ErrorKind::RateLimited)
    });
    let store = Arc::new(
        InstrumentedStore::new(MemoryHostStore::new()).with_delay(Duration::from_millis(10)),
    );
    let r = env
        .syncer_over(store.clone())
        .sync(env.request())
        .await
        .unwrap();
    assert!(!r.complete);
    assert_eq!(r.error.unwrap().kind, ErrorKind::RateLimited);
    assert_eq!(
        (r.pages, r.created),
        (50, 500),
        "every page before the error"
    );
    assert_eq!(store.inner().len(), 500);
    assert_eq!(r.released, 0);
    assert!(store.upserts() < 50, "{} upserts", store.upserts());
}

#[tokio::test]
async fn a_sync_with_nothing_missing_makes_no_lookup_call() {
    let env = Env::new(250).await;
    let syncer = env.syncer();
    for _ in 0..2 {
        let r = syncer.sync(env.request()).await.unwrap();
        assert!(r.complete, "{r:?}");
        assert_eq!(
            (r.pages, r.release_confirmed, r.release_found_alive),
            (3, 0, 0)
        );
    }
    assert_eq!(env.provider.lock().unwrap().lookups(), 0);
}

#[tokio::test]
async fn hosts_a_listing_skipped_but_the_vendor_still_has_are_refreshed_not_released() {
    let env = Env::new(250).await;
    let syncer = env.syncer();
    syncer.sync(env.request()).await.unwrap();
    let before = env
        .hosts
        .get(Vendor::Aliyun, &env.id(17))
        .await
        .unwrap()
        .unwrap();

    // The listing skips four live hosts (as offset paging does when hosts before them
    // are deleted) and host 249 is really gone.
    env.set_provider(|_| {
        FakeProvider::new(Vendor::Aliyun, REGION, 249, 100).with_hidden([17, 18, 120, 248])
    });
    let r = syncer.sync(env.request()).await.unwrap();
    assert!(r.complete && r.error.is_none(), "{r:?}");
    assert_eq!(
        (r.released, r.release_confirmed, r.release_found_alive),
        (1, 1, 4),
        "{r:?}"
    );
    assert_eq!(r.release_skipped, None);
    assert_eq!(r.total_succeed, 249, "hosts found by id count as stored");
    assert_eq!(r.pages, 3 + 1, "three listing pages and one lookup request");
    assert_eq!(env.active().await, 249);
    let after = env
        .hosts
        .get(Vendor::Aliyun, &env.id(17))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        after.released_at, None,
        "a host found by id is never released"
    );
    assert!(
        after.last_seen_at > before.last_seen_at,
        "and is seen by the run"
    );
    let gone = env
        .hosts
        .get(Vendor::Aliyun, &env.id(249))
        .await
        .unwrap()
        .unwrap();
    assert!(
        gone.released_at.is_some(),
        "the host the vendor lacks is released"
    );
}

#[tokio::test]
async fn a_failed_lookup_releases_nothing_and_says_why() {
    let env = Env::new(250).await;
    let syncer = env.syncer();
    syncer.sync(env.request()).await.unwrap();

    env.set_provider(|_| {
        FakeProvider::new(Vendor::Aliyun, REGION, 240, 100)
            .with_lookup_failure(ErrorKind::RateLimited)
    });
    let r = syncer.sync(env.request()).await.unwrap();
    assert_eq!(r.released, 0);
    assert!(
        !r.complete,
        "a failed release step leaves the run incomplete"
    );
    assert_eq!(
        r.error.as_ref().map(|e| e.kind),
        Some(ErrorKind::RateLimited)
    );
    let reason = r.release_skipped.expect("says why");
    assert!(reason.contains("lookup"), "{reason}");
    assert_eq!(env.active().await, 250, "nothing released");
}

#[tokio::test]
async fn without_a_lookup_hosts_are_released_after_two_complete_runs_miss_them() {
    let env = Env::new(250).await;
    let syncer = env.syncer();
    syncer.sync(env.request()).await.unwrap();

    // Run 2 misses hosts 10, 11 and 12.
    env.set_provider(|_| {
        FakeProvider::new(Vendor::Aliyun, REGION, 250, 100)
            .with_hidden([10, 11, 12])
            .without_lookup()
    });
    let r = syncer.sync(env.request()).await.unwrap();
    assert!(r.complete, "{r:?}");
    assert_eq!((r.released, r.release_confirmed), (0, 0));
    assert!(r
        .release_skipped
        .unwrap()
        .contains("3 hosts missing for the first time"));
    assert_eq!(env.active().await, 250);

    // An incomplete run in between neither releases nor clears the marks.
    env.set_provider(|_| {
        FakeProvider::new(Vendor::Aliyun, REGION, 250, 100)
            .with_hidden([10, 11, 12])
            .without_lookup()
            .with_failure_at(2, ErrorKind::Unavailable)
    });
    let r = syncer.sync(env.request()).await.unwrap();
    assert!(!r.complete);
    assert_eq!(env.active().await, 250);

    // Run 4 lists host 11 again and still misses 10 and 12: they go, 11 stays.
    env.set_provider(|_| {
        FakeProvider::new(Vendor::Aliyun, REGION, 250, 100)
            .with_hidden([10, 12])
            .without_lookup()
    });
    let r = syncer.sync(env.request()).await.unwrap();
    assert!(r.complete, "{r:?}");
    assert_eq!(r.released, 2, "{r:?}");
    assert_eq!(env.active().await, 248);

    // Run 5 misses 11 for the first time since it was seen: kept.
    env.set_provider(|_| {
        FakeProvider::new(Vendor::Aliyun, REGION, 250, 100)
            .with_hidden([10, 11, 12])
            .without_lookup()
    });
    let r = syncer.sync(env.request()).await.unwrap();
    assert_eq!(r.released, 0, "a host seen in between starts over: {r:?}");
    assert_eq!(env.active().await, 248);
}

#[tokio::test]
async fn a_moved_listing_without_a_lookup_is_incomplete_and_releases_nothing() {
    let env = Env::new(250).await;
    let syncer = env.syncer();
    syncer.sync(env.request()).await.unwrap();
    let missed_twice = || {
        FakeProvider::new(Vendor::Aliyun, REGION, 250, 100)
            .with_hidden([5])
            .without_lookup()
    };
    env.set_provider(|_| missed_twice());
    syncer.sync(env.request()).await.unwrap();

    env.set_provider(|_| missed_twice().with_moved_listing());
    let r = syncer.sync(env.request()).await.unwrap();
    assert!(
        !r.complete,
        "a moved listing cannot have seen everything: {r:?}"
    );
    assert_eq!(r.released, 0);
    assert_eq!(r.error.map(|e| e.kind), Some(ErrorKind::Conflict));
    assert!(r.release_skipped.unwrap().contains("moved"));
    assert_eq!(env.active().await, 250);

    // With a lookup, the same listing is confirmed by id instead.
    env.set_provider(|_| {
        FakeProvider::new(Vendor::Aliyun, REGION, 250, 100)
            .with_hidden([5])
            .with_moved_listing()
    });
    let r = syncer.sync(env.request()).await.unwrap();
    assert!(r.complete, "{r:?}");
    assert_eq!((r.released, r.release_found_alive), (0, 1));
}

#[tokio::test]
async fn a_lost_scope_lock_releases_nothing() {
    let env = Env::new(250).await;
    let store = Arc::new(InstrumentedStore::new(MemoryHostStore::new()).with_lost_leases());
    let syncer = env.syncer_over(store.clone());
    syncer.sync(env.request()).await.unwrap();

    env.set_provider(|_| FakeProvider::new(Vendor::Aliyun, REGION, 240, 100));
    let r = syncer.sync(env.request()).await.unwrap();
    assert!(!r.complete);
    assert_eq!((r.released, r.release_confirmed), (0, 10));
    assert!(r.release_skipped.unwrap().contains("lock was lost"));
    let q = HostQuery::default().with_released(false);
    assert_eq!(store.query(&q).await.unwrap().total, 250);
}

#[tokio::test]
async fn an_invalid_release_share_is_refused() {
    let env = Env::new(10).await;
    for share in [f64::NAN, f64::INFINITY, -0.1, 1.5] {
        let syncer = env
            .syncer()
            .with_options(SyncOptions::default().with_max_release_share(share));
        let e = syncer.sync(env.request()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{share}");
        assert!(e.to_string().contains("max_release_share"), "{e}");
    }
}

#[tokio::test]
async fn credentials_in_hand_sync_with_no_secret_store() {
    let env = Env::new(250).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let provider = Arc::clone(&env.provider);
    let contexts = Arc::clone(&seen);
    let registry = ProviderRegistry::new().with(Vendor::Aliyun, move |ctx: ProviderContext| {
        contexts.lock().unwrap().push((
            ctx.secret_id.clone(),
            ctx.credentials.api_secret().to_owned(),
            ctx.request_rate,
        ));
        let p: Arc<dyn HostProvider> = Arc::new(provider.lock().unwrap().clone());
        Ok(p)
    });
    let syncer = Syncer::for_host_store(env.hosts.clone()).with_registry(registry);
    assert!(syncer.secret_store().is_none() && syncer.cipher().is_none());

    let account = Account::new(
        Vendor::Aliyun,
        Credentials::new("LTAI5tInHand", "in-hand-secret"),
    )
    .with_request_rate(7);
    let r = syncer
        .sync_account(SyncRequest::new("prod-account", REGION), account.clone())
        .await
        .unwrap();
    assert!(r.complete);
    assert_eq!((r.created, r.total_failed), (250, 0));
    assert_eq!(
        *seen.lock().unwrap(),
        vec![("prod-account".to_owned(), "in-hand-secret".to_owned(), 7)],
        "the provider is built from the account, keyed by the request's id"
    );
    let stored = env
        .hosts
        .get(Vendor::Aliyun, &env.id(0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.host.secret_id, "prod-account");

    // Releases stay within the account's id, as they do within a secret's.
    env.set_provider(|_| FakeProvider::new(Vendor::Aliyun, REGION, 249, 100));
    let r = syncer
        .sync_account(SyncRequest::new("prod-account", REGION), account)
        .await
        .unwrap();
    assert_eq!((r.unchanged, r.released), (249, 1));

    // Without a secret store, a sync by secret id is a clear error.
    let e = syncer.sync(env.request()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.message().contains("no secret store"), "{e}");
}

#[tokio::test]
async fn an_account_is_checked_like_a_secret() {
    let env = Env::new(10).await;
    let syncer = Syncer::for_host_store(env.hosts.clone()).with_registry(env.registry());
    let account = || Account::new(Vendor::Aliyun, Credentials::new("k", "s"));
    let e = syncer
        .sync_account(
            SyncRequest::new("a", REGION),
            account().with_endpoint("http://169.254.169.254/latest"),
        )
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("address"), "{e}");
    let e = syncer
        .sync_account(SyncRequest::new("a", ""), account())
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("region"), "{e}");
    let e = syncer
        .sync_account(
            SyncRequest::new("a", REGION),
            Account::new(Vendor::Tencent, Credentials::new("k", "s")),
        )
        .await
        .unwrap_err();
    assert!(e.message().contains("no provider is registered"), "{e}");
    assert_eq!(env.hosts.len(), 0);
}

#[tokio::test]
async fn a_provider_built_by_hand_syncs_its_own_region() {
    let env = Env::new(120).await;
    let syncer = Syncer::for_host_store(env.hosts.clone());
    let provider: Arc<dyn HostProvider> = Arc::new(env.provider.lock().unwrap().clone());
    let e = syncer
        .sync_provider(
            SyncRequest::new("mine", "cn-beijing"),
            Arc::clone(&provider),
        )
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("region"), "{e}");
    let r = syncer
        .sync_provider(SyncRequest::new("mine", REGION), provider)
        .await
        .unwrap();
    assert_eq!((r.created, r.pages), (120, 2));
    assert!(r.complete);
}

#[tokio::test]
async fn clones_of_a_syncer_share_its_scope_locks() {
    let env = Env::new(10).await;
    let syncer = env.syncer();
    let clone = syncer.clone();
    let held = syncer.prepare(env.request()).await.unwrap();
    let e = clone.prepare(env.request()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    drop(held);
    clone.prepare(env.request()).await.unwrap();
}

#[tokio::test]
async fn the_memory_store_locks_a_scope_for_every_syncer_using_it() {
    // Two syncers share no process-local state: only the store's own lock keeps the
    // second one out.
    let env = Env::new(10).await;
    let (one, two) = (env.syncer(), env.syncer());
    let held = one.prepare(env.request()).await.unwrap();
    let e = two.prepare(env.request()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert!(e.message().contains("another process"), "{e}");
    drop(held);
    two.prepare(env.request()).await.unwrap();
}
