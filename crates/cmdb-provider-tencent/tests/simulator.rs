//! The provider against `SimulatedTencent`, which verifies every TC3 signature with an
//! implementation of its own: conformance suites, mapping of the real JSON shape, clock
//! rules, faults.

use std::sync::{Arc, LazyLock};

use cmdb_core::testing::{
    host_provider_conformance, host_provider_error_conformance, ProviderExpectation,
};
use cmdb_core::{ErrorKind, HostProvider, HostStatus, PayMode};
use cmdb_provider_tencent::{TencentBuilder, TencentHostProvider};
use cmdb_secret::Credentials;
use cmdb_testkit::tencent::{SimulatedTencent, INSTANCE_STATES, REGION, SECRET_ID, SECRET_KEY};
use futures::{StreamExt, TryStreamExt};

static IO: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
});

fn builder(sim: &SimulatedTencent) -> TencentBuilder {
    TencentBuilder::new()
        .with_credentials(Credentials::new(SECRET_ID, SECRET_KEY))
        .with_region(REGION)
        .with_endpoint(sim.uri())
        .with_io_runtime(IO.handle().clone())
        .with_jitter_seed(11)
}

fn provider(sim: &SimulatedTencent) -> Arc<TencentHostProvider> {
    Arc::new(builder(sim).build().unwrap())
}

#[tokio::test]
async fn provider_passes_the_conformance_suite() {
    let sim = SimulatedTencent::start(1234).await;
    let n = host_provider_conformance(
        provider(&sim),
        ProviderExpectation {
            hosts: Some(1234),
            max_pages: 20,
            absent_ids: vec!["ins-zzzzzzzz".to_owned()],
        },
    )
    .await;
    assert_eq!(n, 1234);
    // 13 pages per listing, two listings: signed correctly every time.
    assert_eq!(sim.describe_instances_calls(), 26);
}

#[tokio::test]
async fn a_wrong_key_passes_the_error_conformance_suite() {
    let sim = SimulatedTencent::start(10).await;
    let p = builder(&sim)
        .with_credentials(Credentials::new(SECRET_ID, "not-the-key"))
        .build()
        .unwrap();
    assert_eq!(
        host_provider_error_conformance(Arc::new(p.clone())).await,
        0
    );
    let e = p.pages().next().await.unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    assert_eq!(
        e.vendor_error().unwrap().code.as_deref(),
        Some("AuthFailure.SignatureFailure")
    );
    assert_eq!(sim.requests(), 2, "never retried");

    let p = builder(&sim)
        .with_credentials(Credentials::new("AKIDunknown", SECRET_KEY))
        .build()
        .unwrap();
    let e = p.pages().next().await.unwrap().unwrap_err();
    assert_eq!(
        e.vendor_error().unwrap().code.as_deref(),
        Some("AuthFailure.SecretIdNotFound")
    );
}

#[tokio::test]
async fn simulated_instances_map_to_hosts() {
    let sim = SimulatedTencent::start(45).await;
    let pages: Vec<_> = provider(&sim).pages().try_collect().await.unwrap();
    let hosts: Vec<_> = pages.into_iter().flat_map(|p| p.hosts).collect();
    assert_eq!(hosts.len(), 45);
    for state in INSTANCE_STATES {
        let h = hosts.iter().find(|h| h.raw_status == *state).unwrap();
        assert_ne!(h.status, HostStatus::Unknown, "{state}");
    }
    let terminating = hosts
        .iter()
        .find(|h| h.raw_status == "TERMINATING")
        .unwrap();
    assert_eq!(terminating.status, HostStatus::Deleting);
    for h in &hosts {
        let raw = sim.instance(&h.instance_id).unwrap();
        assert_eq!(h.memory_mib, Some(raw["Memory"].as_u64().unwrap() * 1024));
        assert_eq!(h.name, raw["InstanceName"].as_str().unwrap());
        assert_eq!(h.zone.as_deref(), raw["Placement"]["Zone"].as_str());
        assert_eq!(h.extra["ProjectId"], raw["Placement"]["ProjectId"]);
        assert_eq!(h.extra["RestrictState"], raw["RestrictState"]);
        assert_eq!(h.serial_number.as_deref(), raw["Uuid"].as_str());
        assert_eq!(h.public_ips.is_empty(), raw["PublicIpAddresses"].is_null());
        assert_eq!(h.expire_at.is_none(), raw["ExpiredTime"].is_null());
        assert!(h.created_at.is_some());
        match raw["InstanceChargeType"].as_str().unwrap() {
            "PREPAID" => assert_eq!(h.pay_mode, PayMode::Prepaid),
            "POSTPAID_BY_HOUR" => assert_eq!(h.pay_mode, PayMode::Postpaid),
            _ => assert_eq!(h.pay_mode, PayMode::Spot),
        }
        assert_eq!(h.tags.get("env").map(String::as_str), Some("sim"));
    }
    assert!(hosts.iter().any(|h| h.name.starts_with("测试实例")));
    assert!(hosts.iter().any(|h| h.gpu_count == Some(1)));
}

#[tokio::test(start_paused = true)]
async fn throttling_and_5xx_injected_still_complete() {
    let sim = SimulatedTencent::start(950).await;
    sim.throttle_every(3);
    sim.fail_next(2, 503);
    let p = provider(&sim);
    let pages: Vec<_> = p.pages().try_collect().await.unwrap();
    let ids: Vec<String> = pages
        .into_iter()
        .flat_map(|p| p.hosts)
        .map(|h| h.instance_id)
        .collect();
    assert_eq!(ids, sim.instance_ids(), "every instance, in order");
    let stats = p.client().http().stats();
    assert!(stats.throttled >= 3, "{stats:?}");
    assert!(stats.retries >= 5, "{stats:?}");
}

#[tokio::test]
async fn a_clock_off_by_more_than_5_minutes_is_signature_expire() {
    let sim = SimulatedTencent::start(5).await;
    let p = builder(&sim)
        .with_clock(|| chrono::Utc::now().timestamp() - 600)
        .build()
        .unwrap();
    let e = p.pages().next().await.unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    assert_eq!(
        e.vendor_error().unwrap().code.as_deref(),
        Some("AuthFailure.SignatureExpire")
    );
    assert!(e.to_string().contains("clock"), "{e}");
    assert_eq!(sim.requests(), 1, "never retried");
}

#[tokio::test]
async fn the_scope_uses_the_utc_date_around_midnight_in_utc_plus_8() {
    // 07:59:59 and 08:00:00 on 1 March 2024 in UTC+8: the UTC dates differ.
    for stamp in [1_709_251_199_i64, 1_709_251_200] {
        let sim = SimulatedTencent::start(3).await;
        sim.set_clock_offset(stamp - chrono::Utc::now().timestamp());
        let p = builder(&sim).with_clock(move || stamp).build().unwrap();
        let pages: Vec<_> = p.pages().try_collect().await.unwrap();
        assert_eq!(pages[0].hosts.len(), 3, "{stamp}");
    }
}

#[tokio::test]
async fn total_count_growing_mid_listing_marks_the_listing_as_moved() {
    let sim = SimulatedTencent::start(300).await;
    sim.grow_after(1, 5);
    let p = builder(&sim).with_concurrency(1).build().unwrap();
    let pages: Vec<_> = p.pages().try_collect().await.unwrap();
    let moved: Vec<bool> = pages.iter().map(|p| p.moved.is_some()).collect();
    assert_eq!(
        moved.last(),
        Some(&true),
        "the last page is marked: {moved:?}"
    );
    assert!(moved[..moved.len() - 1].iter().all(|m| !m));
    // The next listing sees the settled inventory, and is not marked.
    let pages: Vec<_> = p.pages().try_collect().await.unwrap();
    assert_eq!(pages.iter().map(|p| p.hosts.len()).sum::<usize>(), 305);
    assert!(pages.iter().all(|p| p.moved.is_none()));
}

#[tokio::test]
async fn concurrent_pages_are_yielded_in_order() {
    let sim = SimulatedTencent::start(1000).await;
    sim.set_latency(Some(std::time::Duration::from_millis(20)));
    let p = builder(&sim).with_concurrency(4).build().unwrap();
    let pages: Vec<_> = p.pages().try_collect().await.unwrap();
    assert_eq!(pages.len(), 10);
    let ids: Vec<String> = pages
        .into_iter()
        .flat_map(|p| p.hosts)
        .map(|h| h.instance_id)
        .collect();
    assert_eq!(ids, sim.instance_ids());
}

#[tokio::test]
async fn regions_come_from_the_region_service() {
    let sim = SimulatedTencent::start(0).await;
    let regions = builder(&sim)
        .build_client()
        .unwrap()
        .describe_regions()
        .await
        .unwrap();
    assert!(regions.iter().any(|r| r.region == "ap-guangzhou"));
    assert!(regions.iter().any(|r| r.region == "ap-shanghai-fsi"));
}

#[tokio::test]
async fn the_provider_lists_the_regions_and_another_region_is_empty() {
    let sim = SimulatedTencent::start(30).await;
    let regions = provider(&sim)
        .regions()
        .expect("Tencent Cloud lists regions")
        .await
        .unwrap();
    assert_eq!(
        regions,
        [
            "ap-guangzhou",
            "ap-shanghai",
            "ap-beijing",
            "ap-shanghai-fsi",
            "ap-singapore"
        ]
    );
    // The instances live in the simulator's region; another region of the account
    // lists none, and a region the API does not serve is an error.
    let other = builder(&sim).with_region("ap-beijing").build().unwrap();
    let pages: Vec<_> = other.pages().try_collect().await.unwrap();
    assert_eq!(pages.iter().map(|p| p.hosts.len()).sum::<usize>(), 0);
    let unknown = builder(&sim).with_region("xx-nowhere").build().unwrap();
    let e = unknown.pages().try_collect::<Vec<_>>().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert_eq!(
        e.vendor_error().unwrap().code.as_deref(),
        Some("UnsupportedRegion")
    );
}

#[tokio::test]
async fn temporary_credentials_send_their_token_and_an_expired_one_fails_once() {
    let sim = SimulatedTencent::start(250).await;
    let token = "tc-simulated-sts-token";
    sim.set_session_token(Some(token));
    let sts = |token: Option<&str>| {
        let mut credentials = Credentials::new(SECRET_ID, SECRET_KEY);
        if let Some(t) = token {
            credentials = credentials.with_session_token(t);
        }
        builder(&sim).with_credentials(credentials).build().unwrap()
    };
    let pages: Vec<_> = sts(Some(token)).pages().try_collect().await.unwrap();
    assert_eq!(pages.iter().map(|p| p.hosts.len()).sum::<usize>(), 250);

    for (credentials, expired) in [(None, false), (Some(token), true)] {
        if expired {
            sim.expire_session_token();
        }
        let before = sim.requests();
        let e = sts(credentials)
            .pages()
            .try_collect::<Vec<_>>()
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
        assert!(!e.is_retryable());
        assert_eq!(
            e.vendor_error().unwrap().code.as_deref(),
            Some("AuthFailure.TokenFailure")
        );
        assert!(e.to_string().contains("STS token"), "{e}");
        assert!(!format!("{e:?}").contains(token));
        assert_eq!(sim.requests() - before, 1, "never retried");
    }
}
