#![cfg_attr(not(feature = "aliyun"), allow(missing_docs))]
#![cfg(feature = "aliyun")]
//! End to end: the built-in Alibaba Cloud provider, through the `Syncer`, against the
//! signature-checking simulator, into the memory store.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use cmdb_core::{HostQuery, HostStore, MemoryHostStore, Vendor};
use cmdb_secret::{NewSecret, Secret};
use cmdb_sync::{ProviderRegistry, SyncRequest, Syncer};
use cmdb_testkit::aliyun::SimulatedAliyun;

const REGION: &str = "cn-shanghai";

struct Env {
    sim: SimulatedAliyun,
    hosts: Arc<MemoryHostStore>,
    secret: Secret,
    syncer: Syncer,
}

impl Env {
    async fn new(count: u64) -> Env {
        let sim = SimulatedAliyun::start(REGION, count).await;
        let common::Synced {
            hosts,
            secret,
            syncer,
        } = common::builtin_syncer(
            Vendor::Aliyun,
            &sim.access_key_id(),
            &sim.access_key_secret(),
            REGION,
            &sim.uri(),
        )
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

    async fn count(&self, released: bool) -> u64 {
        let q = HostQuery::default().with_released(released);
        self.hosts.query(&q).await.unwrap().total
    }
}

#[tokio::test]
async fn sync_creates_then_is_unchanged_then_releases_a_removed_host() {
    let env = Env::new(250).await;
    assert!(ProviderRegistry::with_builtin_providers()
        .vendors()
        .contains(&Vendor::Aliyun));

    let r = env.syncer.sync(env.request()).await.unwrap();
    assert!(r.complete && r.error.is_none(), "{r:?}");
    assert_eq!((r.pages, r.total_succeed, r.total_failed), (3, 250, 0));
    assert_eq!(
        (r.created, r.updated, r.unchanged, r.released),
        (250, 0, 0, 0)
    );
    assert_eq!(env.count(false).await, 250);
    let stored = env
        .hosts
        .get(Vendor::Aliyun, &env.sim.instance_id(0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.host.secret_id, env.secret.id);
    assert_eq!(stored.host.region, REGION);
    assert_eq!(stored.host.name, "网站-0");

    let r = env.syncer.sync(env.request()).await.unwrap();
    assert!(r.complete);
    assert_eq!(
        (r.created, r.updated, r.unchanged, r.released),
        (0, 0, 250, 0)
    );

    let gone = env.sim.instance_id(17);
    assert!(env.sim.remove_host(&gone));
    let changed = env.sim.instance_id(18);
    assert!(env
        .sim
        .update_host(&changed, |h| h["Status"] = "Stopped".into()));
    let added = env.sim.add_hosts(2);
    let r = env.syncer.sync(env.request()).await.unwrap();
    assert!(r.complete, "{r:?}");
    assert_eq!(
        (r.created, r.updated, r.unchanged, r.released),
        (2, 1, 248, 1)
    );
    let released = env.hosts.get(Vendor::Aliyun, &gone).await.unwrap().unwrap();
    assert!(
        released.released_at.is_some(),
        "the removed host is released"
    );
    let new = env
        .hosts
        .get(Vendor::Aliyun, &added[0])
        .await
        .unwrap()
        .unwrap();
    assert!(new.released_at.is_none());
    assert_eq!((env.count(false).await, env.count(true).await), (251, 1));
}

#[tokio::test]
async fn sync_completes_through_injected_throttling_and_server_errors() {
    let env = Env::new(300).await;
    env.sim.throttle_every(2);
    env.sim.fail_next(1, 503);
    let r = env.syncer.sync(env.request()).await.unwrap();
    assert!(r.complete && r.error.is_none(), "{r:?}");
    assert_eq!((r.created, r.total_failed), (300, 0));
    let answers = env.sim.answers();
    assert!(
        answers.iter().any(|a| a == "Throttling.User"),
        "{answers:?}"
    );
    assert!(
        answers.iter().any(|a| a == "ServiceUnavailable"),
        "{answers:?}"
    );
}

#[tokio::test]
async fn a_wrong_secret_fails_the_sync_without_retrying() {
    let env = Env::new(10).await;
    env.sim
        .set_credentials(&env.sim.access_key_id(), "rotated-secret");
    let e = env.syncer.sync(env.request()).await.unwrap_err();
    assert_eq!(e.kind(), cmdb_core::ErrorKind::Unauthenticated);
    assert_eq!(
        e.vendor_error().unwrap().code.as_deref(),
        Some("SignatureDoesNotMatch")
    );
    assert_eq!(env.sim.requests(), 1);
    assert_eq!(env.count(false).await, 0);
}

#[tokio::test]
async fn deletions_and_creations_during_a_throttled_listing_never_release_a_live_host() {
    const HOSTS: u64 = 1000;
    let env = Env::new(HOSTS).await;
    let r = env.syncer.sync(env.request()).await.unwrap();
    assert!(r.complete && r.created == HOSTS, "{r:?}");
    let listed_so_far = env.sim.listings();

    // Twelve hosts at seeded random positions are deleted, two after each of the next
    // run's listing requests 1 to 6; five are created at the front after request 3.
    let mut seed: u64 = 0x5eed;
    let mut deleted = BTreeSet::new();
    while deleted.len() < 12 {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        deleted.insert(env.sim.instance_id((seed >> 33) % HOSTS));
    }
    let deleted: Vec<String> = deleted.into_iter().collect();
    for (k, pair) in deleted.chunks(2).enumerate() {
        env.sim
            .remove_hosts_after(listed_so_far + k as u64 + 1, pair.to_vec());
    }
    let created = env.sim.add_hosts_after(listed_so_far + 3, 5);
    let mut cloud: BTreeSet<String> = (0..HOSTS).map(|i| env.sim.instance_id(i)).collect();
    cloud.extend(created.iter().cloned());
    for id in &deleted {
        cloud.remove(id);
    }
    // The vendor throttles every third request meanwhile.
    env.sim.throttle_every(3);

    let r = env.syncer.sync(env.request()).await.unwrap();
    assert!(r.complete && r.error.is_none(), "{r:?}");
    let (active, released) = common::stored_ids(&env.hosts).await;
    let wrongly_released: Vec<_> = released.intersection(&cloud).collect();
    assert!(
        wrongly_released.is_empty(),
        "live hosts released: {wrongly_released:?} ({r:?})"
    );
    assert!(
        r.release_found_alive > 0,
        "the shifted listing skipped live hosts that the lookup found: {r:?}"
    );
    assert!(active.is_superset(
        &cloud
            .difference(&created.iter().cloned().collect())
            .cloned()
            .collect()
    ));

    env.sim.throttle_every(0);
    common::assert_settles(&env.syncer, || env.request(), &env.hosts, &cloud, &deleted).await;
}

#[tokio::test]
async fn a_failed_lookup_releases_nothing() {
    let env = Env::new(250).await;
    env.syncer.sync(env.request()).await.unwrap();
    assert!(env.sim.remove_host(&env.sim.instance_id(3)));
    env.sim.fail_lookups(Some(403));
    let r = env.syncer.sync(env.request()).await.unwrap();
    assert!(!r.complete, "{r:?}");
    assert_eq!((r.released, r.release_confirmed), (0, 0));
    assert!(r.release_skipped.unwrap().contains("lookup"));
    assert_eq!(env.count(true).await, 0);

    env.sim.fail_lookups(None);
    let r = env.syncer.sync(env.request()).await.unwrap();
    assert_eq!(
        (r.released, r.release_confirmed, r.release_found_alive),
        (1, 1, 0)
    );
}

/// A stored secret of temporary credentials: the session token is decrypted with the
/// secret and sent, and an expired one ends the run as unauthenticated, storing nothing.
#[tokio::test]
async fn a_secret_with_a_session_token_syncs_and_an_expired_token_fails() {
    let sim = SimulatedAliyun::start(REGION, 120).await;
    let token = "CAIS-stored-sts-token";
    sim.set_security_token(Some(token));
    let common::Synced {
        hosts,
        secret,
        syncer,
    } = common::builtin_syncer_for(
        NewSecret::new(Vendor::Aliyun, sim.access_key_id(), sim.access_key_secret())
            .with_description("temporary credentials")
            .with_allowed_regions([REGION])
            .with_request_rate(1000)
            .with_address(sim.uri())
            .with_session_token(token),
    )
    .await;
    let r = syncer
        .sync(SyncRequest::new(&secret.id, REGION))
        .await
        .unwrap();
    assert_eq!((r.created, r.total_failed), (120, 0));
    assert!(r.complete);

    sim.expire_security_token();
    let e = syncer
        .sync(SyncRequest::new(&secret.id, REGION))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), cmdb_core::ErrorKind::Unauthenticated, "{e}");
    assert_eq!(
        e.vendor_error().unwrap().code.as_deref(),
        Some("InvalidSecurityToken.Expired")
    );
    assert!(!e.to_string().contains(token));
    assert_eq!(hosts.len(), 120);
}

#[tokio::test]
async fn a_whole_account_sync_reports_each_region_describe_regions_names() {
    // The simulator serves one region; the others DescribeRegions names answer
    // InvalidRegionId.NotFound, as an endpoint that does not serve a region does.
    let sim = SimulatedAliyun::start("cn-hangzhou", 60).await;
    let synced = common::builtin_syncer(
        Vendor::Aliyun,
        &sim.access_key_id(),
        &sim.access_key_secret(),
        "",
        &sim.uri(),
    )
    .await;
    let r = synced
        .syncer
        .sync_all(SyncRequest::new(&synced.secret.id, "*"))
        .await
        .unwrap();
    assert!(!r.complete, "{r:?}");
    let regions: Vec<(&str, bool, u64)> = r
        .regions
        .iter()
        .map(|s| (s.region.as_str(), s.complete, s.created))
        .collect();
    assert_eq!(
        regions,
        [
            ("cn-hangzhou", true, 60),
            ("cn-beijing", false, 0),
            ("ap-southeast-1", false, 0)
        ]
    );
    let e = r.regions[1].error.as_ref().unwrap();
    assert_eq!(e.code.as_deref(), Some("InvalidRegionId.NotFound"));
    assert_eq!(
        r.error
            .as_ref()
            .map(|e| e.message.starts_with("region cn-beijing: ")),
        Some(true)
    );
    assert_eq!((r.created, synced.count(false).await), (60, 60));
}
