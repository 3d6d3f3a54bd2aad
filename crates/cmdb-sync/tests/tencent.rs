#![cfg_attr(not(feature = "tencent"), allow(missing_docs))]
#![cfg(feature = "tencent")]
//! End to end: the builtin Tencent provider, built by the registry from a stored secret
//! whose address is a `SimulatedTencent`, synced into a `MemoryHostStore`.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use cmdb_core::{ErrorKind, HostQuery, HostStatus, HostStore, MemoryHostStore, Vendor};
use cmdb_secret::Secret;
use cmdb_sync::{ProviderRegistry, SyncRequest, Syncer};
use cmdb_testkit::tencent::{SimulatedTencent, REGION, SECRET_ID, SECRET_KEY};
use serde_json::json;

struct Env {
    sim: SimulatedTencent,
    hosts: Arc<MemoryHostStore>,
    secret: Secret,
    syncer: Syncer,
}

impl Env {
    async fn new(count: u64, api_secret: &str) -> Env {
        let sim = SimulatedTencent::start(count).await;
        let common::Synced {
            hosts,
            secret,
            syncer,
        } = common::builtin_syncer(Vendor::Tencent, SECRET_ID, api_secret, REGION, &sim.uri())
            .await;
        Env {
            sim,
            hosts,
            secret,
            syncer,
        }
    }

    fn request(&self) -> SyncRequest {
        SyncRequest::new(&self.secret.id, REGION)
    }

    async fn active(&self) -> u64 {
        let q = HostQuery::default().with_released(false);
        self.hosts.query(&q).await.unwrap().total
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tencent_sync_creates_keeps_updates_and_releases() {
    assert!(ProviderRegistry::with_builtin_providers()
        .vendors()
        .contains(&Vendor::Tencent));
    let env = Env::new(250, SECRET_KEY).await;

    let r = env.syncer.sync(env.request()).await.unwrap();
    assert!(r.complete && r.error.is_none(), "{:?}", r.error);
    assert_eq!((r.pages, r.total_succeed, r.total_failed), (3, 250, 0));
    assert_eq!(
        (r.created, r.updated, r.unchanged, r.released),
        (250, 0, 0, 0)
    );
    let ids = env.sim.instance_ids();
    let stored = env
        .hosts
        .get(Vendor::Tencent, &ids[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.host.secret_id, env.secret.id);
    assert_eq!(stored.host.region, REGION);
    let raw = env.sim.instance(&ids[0]).unwrap();
    assert_eq!(
        stored.host.memory_mib,
        Some(raw["Memory"].as_u64().unwrap() * 1024)
    );

    let r = env.syncer.sync(env.request()).await.unwrap();
    assert_eq!(
        (r.created, r.updated, r.unchanged, r.released),
        (0, 0, 250, 0)
    );

    // Between runs: two instances released, one stopped, one created.
    assert!(env.sim.remove_instance(&ids[10]));
    assert!(env.sim.remove_instance(&ids[20]));
    assert!(env
        .sim
        .update_instance(&ids[30], |i| i["InstanceState"] = json!("STOPPED")));
    let added = env.sim.add_instances(1);
    let r = env.syncer.sync(env.request()).await.unwrap();
    assert!(r.complete);
    assert_eq!(
        (r.created, r.updated, r.unchanged, r.released),
        (1, 1, 247, 2)
    );
    assert_eq!(env.active().await, 249);
    let gone = env
        .hosts
        .get(Vendor::Tencent, &ids[10])
        .await
        .unwrap()
        .unwrap();
    assert!(gone.released_at.is_some(), "released, not deleted");
    let stopped = env
        .hosts
        .get(Vendor::Tencent, &ids[30])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stopped.host.status, HostStatus::Stopped);
    assert!(env
        .hosts
        .get(Vendor::Tencent, &added[0])
        .await
        .unwrap()
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tencent_sync_completes_under_injected_throttling() {
    let env = Env::new(250, SECRET_KEY).await;
    // Every 2nd request is RequestLimitExceeded (HTTP 200): each page needs a retry.
    env.sim.throttle_every(2);
    let r = env.syncer.sync(env.request()).await.unwrap();
    assert!(r.complete && r.error.is_none(), "{:?}", r.error);
    assert_eq!((r.created, r.total_succeed), (250, 250));
    // 3 pages and, with every 2nd request throttled, at least 2 throttled answers.
    assert!(env.sim.requests() >= 5, "{} requests", env.sim.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tencent_sync_with_a_wrong_key_fails_without_releasing() {
    let env = Env::new(20, "wrong-secret-key").await;
    let (kind, code) = match env.syncer.sync(env.request()).await {
        Ok(r) => {
            assert!(!r.complete);
            assert_eq!(r.released, 0);
            let report = r.error.expect("the error is reported");
            (report.kind, report.code)
        }
        Err(e) => (e.kind(), e.vendor_error().and_then(|v| v.code.clone())),
    };
    assert_eq!(kind, ErrorKind::Unauthenticated);
    assert_eq!(code.as_deref(), Some("AuthFailure.SignatureFailure"));
    assert_eq!(env.active().await, 0);
    assert_eq!(env.sim.requests(), 1, "auth errors are never retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletions_and_creations_during_a_throttled_listing_never_release_a_live_host() {
    const INSTANCES: u64 = 1000;
    let env = Env::new(INSTANCES, SECRET_KEY).await;
    let r = env.syncer.sync(env.request()).await.unwrap();
    assert!(r.complete && r.created == INSTANCES, "{r:?}");
    let ids = env.sim.instance_ids();

    // Twelve instances at seeded random positions are released, three after each of the
    // next run's listing calls 1 to 4 (offsets shift); five are created after call 2.
    let mut seed: u64 = 0x7c3;
    let mut deleted = BTreeSet::new();
    while deleted.len() < 12 {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        deleted.insert(ids[((seed >> 33) % INSTANCES) as usize].clone());
    }
    let deleted: Vec<String> = deleted.into_iter().collect();
    for (k, three) in deleted.chunks(3).enumerate() {
        env.sim.remove_after(k as u64 + 1, three.to_vec());
    }
    env.sim.grow_after(2, 5);
    env.sim.throttle_every(3);

    let r = env.syncer.sync(env.request()).await.unwrap();
    assert!(r.error.is_none(), "{r:?}");
    let cloud: BTreeSet<String> = env.sim.instance_ids().into_iter().collect();
    assert_eq!(cloud.len() as u64, INSTANCES - 12 + 5);
    common::assert_no_live_host_released(&env.hosts, &cloud, &r).await;

    env.sim.throttle_every(0);
    common::assert_settles(&env.syncer, || env.request(), &env.hosts, &cloud, &deleted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_lookup_releases_nothing_and_a_later_one_releases() {
    let env = Env::new(250, SECRET_KEY).await;
    env.syncer.sync(env.request()).await.unwrap();
    let gone = env.sim.instance_ids()[3].clone();
    assert!(env.sim.remove_instance(&gone));

    env.sim.fail_lookups(Some("UnauthorizedOperation"));
    let r = env.syncer.sync(env.request()).await.unwrap();
    assert!(!r.complete, "{r:?}");
    assert_eq!((r.released, r.release_confirmed), (0, 0));
    assert!(r.release_skipped.unwrap().contains("lookup"));
    assert_eq!(env.active().await, 250);

    env.sim.fail_lookups(None);
    let r = env.syncer.sync(env.request()).await.unwrap();
    assert!(r.complete, "{r:?}");
    assert_eq!(
        (r.released, r.release_confirmed, r.release_found_alive),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn a_whole_account_sync_lists_every_region_the_region_service_names() {
    let sim = SimulatedTencent::start(130).await;
    let synced =
        common::builtin_syncer(Vendor::Tencent, SECRET_ID, SECRET_KEY, "", &sim.uri()).await;
    let r = synced
        .syncer
        .sync_all(SyncRequest::new(&synced.secret.id, "*"))
        .await
        .unwrap();
    assert!(r.complete && r.error.is_none(), "{r:?}");
    let regions: Vec<(&str, u64)> = r
        .regions
        .iter()
        .map(|s| (s.region.as_str(), s.created))
        .collect();
    // The instances live in ap-guangzhou; the other regions are empty.
    assert_eq!(
        regions,
        [
            ("ap-guangzhou", 130),
            ("ap-shanghai", 0),
            ("ap-beijing", 0),
            ("ap-shanghai-fsi", 0),
            ("ap-singapore", 0)
        ]
    );
    assert_eq!(synced.count(false).await, 130);
}
