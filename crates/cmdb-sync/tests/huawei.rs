#![cfg_attr(not(feature = "huawei"), allow(missing_docs))]
#![cfg(feature = "huawei")]
//! End to end: a Huawei secret pointing at `SimulatedHuawei`, synced by the `Syncer` with
//! the built-in providers into a memory store.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use cmdb_core::{ErrorKind, HostQuery, HostStatus, HostStore, MemoryHostStore, Vendor};
use cmdb_secret::Secret;
use cmdb_sync::{SyncRequest, Syncer};
use cmdb_testkit::huawei::{SimulatedHuawei, ACCESS_KEY, SECRET_KEY};
use serde_json::json;

/// Each test lists its own region: the provider caches project ids per endpoint, AK and
/// region for the whole process, and a later simulator may reuse a port.
const REGION: &str = "cn-north-4";
const THROTTLED_REGION: &str = "cn-east-3";
const REVOKED_REGION: &str = "ap-southeast-1";
const SHIFTING_REGION: &str = "cn-south-1";
const FAILED_LOOKUP_REGION: &str = "la-south-2";

struct Env {
    sim: SimulatedHuawei,
    hosts: Arc<MemoryHostStore>,
    secret: Secret,
    syncer: Syncer,
}

async fn env(region: &str, servers: u64) -> Env {
    let sim = SimulatedHuawei::start(region, servers).await;
    let common::Synced {
        hosts,
        secret,
        syncer,
    } = common::builtin_syncer(Vendor::Huawei, ACCESS_KEY, SECRET_KEY, region, &sim.uri()).await;
    Env {
        sim,
        hosts,
        secret,
        syncer,
    }
}

#[tokio::test]
async fn create_unchanged_change_and_release() {
    let env = env(REGION, 450).await;
    let request = || SyncRequest::new(&env.secret.id, REGION);

    let first = env.syncer.sync(request()).await.unwrap();
    assert!(first.complete, "{first:?}");
    assert_eq!(
        (first.created, first.total_succeed, first.pages),
        (450, 450, 3)
    );
    let stored = env
        .hosts
        .get(Vendor::Huawei, &env.sim.server_ids(REGION)[0])
        .await
        .unwrap()
        .expect("the first server is stored");
    assert_eq!(stored.host.secret_id, env.secret.id);
    assert_eq!(stored.host.name, "测试服务器-0");
    assert_eq!(stored.host.status, HostStatus::Running);

    let second = env.syncer.sync(request()).await.unwrap();
    assert_eq!(
        (
            second.unchanged,
            second.created,
            second.updated,
            second.released
        ),
        (450, 0, 0, 0)
    );

    // Between runs: 10 servers go, 5 arrive, 3 change.
    let ids = env.sim.server_ids(REGION);
    assert_eq!(env.sim.remove_servers(REGION, &ids[..10]), 10);
    env.sim.add_servers(REGION, 5);
    for id in &ids[10..13] {
        assert!(env
            .sim
            .change_server(REGION, id, |s| s["name"] = json!("renamed")));
    }
    let third = env.syncer.sync(request()).await.unwrap();
    assert!(third.complete, "{third:?}");
    assert_eq!(
        (
            third.created,
            third.updated,
            third.unchanged,
            third.released
        ),
        (5, 3, 437, 10)
    );
    // Each missing server was looked up (ShowServer, 404 Ecs.0114) before its release.
    assert_eq!(
        (third.release_confirmed, third.release_found_alive),
        (10, 0)
    );
    assert_eq!(env.sim.stats().show_server_requests, 10);
    let gone = env
        .hosts
        .get(Vendor::Huawei, &ids[0])
        .await
        .unwrap()
        .unwrap();
    assert!(gone.released_at.is_some());
    let active = env
        .hosts
        .query(&HostQuery::default().with_released(false))
        .await
        .unwrap();
    assert_eq!(active.total, 445);
    // One IAM lookup for all the runs (cached per endpoint, AK and region).
    assert_eq!(env.sim.stats().iam_requests, 1);
}

#[tokio::test]
async fn throttled_runs_still_complete() {
    let env = env(THROTTLED_REGION, 250).await;
    // IAM, then page 1 throttled, retried, then page 2 throttled, retried. The backoff
    // waits really (about 0.2 to 0.6 s each): the registry's factories cannot be given an
    // I/O runtime, which a paused clock would need.
    env.sim.throttle_every(Some(2));
    let response = env
        .syncer
        .sync(SyncRequest::new(&env.secret.id, THROTTLED_REGION))
        .await
        .unwrap();
    assert!(response.complete, "{response:?}");
    assert_eq!(response.created, 250);
    let stats = env.sim.stats();
    assert_eq!(stats.throttled, 2, "{stats:?}");
    assert_eq!(stats.pages, vec![(1, 200), (2, 200)]);
}

#[tokio::test]
async fn revoked_credentials_fail_unauthenticated_after_one_attempt() {
    let env = env(REVOKED_REGION, 10).await;
    env.sim.revoke_key(ACCESS_KEY);
    let e = env
        .syncer
        .sync(SyncRequest::new(&env.secret.id, REVOKED_REGION))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert_eq!(
        e.vendor_error().unwrap().code.as_deref(),
        Some("APIGW.0301")
    );
    assert_eq!(env.sim.auth_failures(ACCESS_KEY), 1);
    assert!(!env.sim.is_locked(ACCESS_KEY));
}

#[tokio::test]
async fn deletions_and_creations_during_a_throttled_listing_never_release_a_live_host() {
    const SERVERS: u64 = 1000;
    let env = env(SHIFTING_REGION, SERVERS).await;
    let request = || SyncRequest::new(&env.secret.id, SHIFTING_REGION);
    let r = env.syncer.sync(request()).await.unwrap();
    assert!(r.complete && r.created == SERVERS, "{r:?}");
    let served = env.sim.stats().pages.len();
    let ids = env.sim.server_ids(SHIFTING_REGION);

    // Twelve servers at seeded random positions are deleted, three after each of the next
    // run's pages 1 to 4 (offset paging: every later server moves up); five are created
    // after page 2.
    let mut seed: u64 = 0x4a3b;
    let mut deleted = BTreeSet::new();
    while deleted.len() < 12 {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        deleted.insert(ids[((seed >> 33) % SERVERS) as usize].clone());
    }
    let deleted: Vec<String> = deleted.into_iter().collect();
    for (k, three) in deleted.chunks(3).enumerate() {
        env.sim
            .remove_servers_after(served + k + 1, SHIFTING_REGION, three.to_vec());
    }
    env.sim.add_servers_after(served + 2, SHIFTING_REGION, 5);
    env.sim.throttle_every(Some(3));

    let r = env.syncer.sync(request()).await.unwrap();
    assert!(r.error.is_none(), "{r:?}");
    let cloud: BTreeSet<String> = env.sim.server_ids(SHIFTING_REGION).into_iter().collect();
    assert_eq!(cloud.len() as u64, SERVERS - 12 + 5);
    common::assert_no_live_host_released(&env.hosts, &cloud, &r).await;

    env.sim.throttle_every(None);
    common::assert_settles(&env.syncer, request, &env.hosts, &cloud, &deleted).await;
}

#[tokio::test]
async fn a_failed_lookup_releases_nothing_and_a_later_one_releases() {
    let env = env(FAILED_LOOKUP_REGION, 250).await;
    let request = || SyncRequest::new(&env.secret.id, FAILED_LOOKUP_REGION);
    env.syncer.sync(request()).await.unwrap();
    let gone = env.sim.server_ids(FAILED_LOOKUP_REGION)[3].clone();
    assert_eq!(
        env.sim
            .remove_servers(FAILED_LOOKUP_REGION, std::slice::from_ref(&gone)),
        1
    );

    env.sim.fail_lookups(Some(403));
    let r = env.syncer.sync(request()).await.unwrap();
    assert!(!r.complete, "{r:?}");
    assert_eq!((r.released, r.release_confirmed), (0, 0));
    assert!(r.release_skipped.unwrap().contains("lookup"));
    let stored = env.hosts.get(Vendor::Huawei, &gone).await.unwrap().unwrap();
    assert!(stored.released_at.is_none());

    env.sim.fail_lookups(None);
    let r = env.syncer.sync(request()).await.unwrap();
    assert!(r.complete, "{r:?}");
    assert_eq!(
        (r.released, r.release_confirmed, r.release_found_alive),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn a_whole_account_sync_lists_every_region_project() {
    // Regions of their own: project ids are cached per endpoint, AK and region.
    let sim = SimulatedHuawei::start("af-south-1", 120).await;
    sim.add_region("cn-southwest-2", 30);
    sim.add_region("ap-southeast-3", 0);
    sim.add_sub_project("af-south-1", "sub");
    let synced =
        common::builtin_syncer(Vendor::Huawei, ACCESS_KEY, SECRET_KEY, "", &sim.uri()).await;
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
    // IAM also lists MOS and af-south-1_sub: no region of their own.
    assert_eq!(
        regions,
        [
            ("af-south-1", 120),
            ("ap-southeast-3", 0),
            ("cn-southwest-2", 30)
        ]
    );
    assert_eq!((r.created, synced.count(false).await), (150, 150));
}
