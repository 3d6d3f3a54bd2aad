//! Whole-account syncs (`Syncer::sync_all`, `sync_account_all`): every region its own
//! run, several at once, one answer adding them up. Fake providers, one per region,
//! through the `ProviderRegistry`; memory stores.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cmdb_core::{ErrorKind, HostProvider, HostQuery, HostStore, MemoryHostStore, Vendor};
use cmdb_http::RateLimiter;
use cmdb_secret::{Cipher, Credentials, MemorySecretStore, NewSecret, Secret, SecretStore};
use cmdb_sync::{
    Account, DetailsMode, ProviderContext, ProviderRegistry, SyncOptions, SyncRequest, Syncer,
};
use cmdb_testkit::FakeProvider;
use tokio::time::Instant;

/// The region and rate limiter of every provider built, in order.
type Built = Arc<Mutex<Vec<(String, Arc<RateLimiter>)>>>;

/// A stored secret, a memory host store, and what each region's provider lists.
struct Env {
    vendor: Vendor,
    cipher: Arc<Cipher>,
    secrets: Arc<MemorySecretStore>,
    hosts: Arc<MemoryHostStore>,
    secret: Secret,
    /// The provider of each region; a region not named lists no host.
    providers: Arc<Mutex<HashMap<String, FakeProvider>>>,
    built: Built,
}

impl Env {
    async fn new(vendor: Vendor, allowed: &[&str]) -> Env {
        let cipher = Arc::new(Cipher::new(Cipher::generate_key()));
        let secrets = Arc::new(MemorySecretStore::new());
        let mut new = NewSecret::new(vendor, "AKIDEXAMPLE12345", "not-a-real-secret")
            .with_description("whole-account test")
            .with_allowed_regions(allowed.iter().copied())
            .with_request_rate(1000);
        if vendor == Vendor::Vsphere {
            new = new.with_address("https://vc.example.test/sdk");
        }
        let secret = new.seal(&cipher).unwrap();
        secrets.create(&secret).await.unwrap();
        Env {
            vendor,
            cipher,
            secrets,
            hosts: Arc::new(MemoryHostStore::new()),
            secret,
            providers: Arc::default(),
            built: Arc::default(),
        }
    }

    /// Makes `region` list `count` hosts, in pages of 100, as `f` changes it.
    fn region(&self, region: &str, count: u64, f: impl FnOnce(FakeProvider) -> FakeProvider) {
        let p = f(FakeProvider::new(self.vendor, region, count, 100));
        self.providers.lock().unwrap().insert(region.to_owned(), p);
    }

    fn registry(&self) -> ProviderRegistry {
        let (providers, built, vendor) = (
            Arc::clone(&self.providers),
            Arc::clone(&self.built),
            self.vendor,
        );
        ProviderRegistry::new().with(vendor, move |ctx: ProviderContext| {
            built
                .lock()
                .unwrap()
                .push((ctx.region.clone(), Arc::clone(&ctx.limiter)));
            let p = providers
                .lock()
                .unwrap()
                .get(&ctx.region)
                .cloned()
                .unwrap_or_else(|| FakeProvider::new(vendor, ctx.region, 0, 100));
            Ok(Arc::new(p) as Arc<dyn HostProvider>)
        })
    }

    fn syncer(&self) -> Syncer {
        Syncer::new(
            self.secrets.clone(),
            self.hosts.clone(),
            self.cipher.clone(),
            self.registry(),
        )
    }

    fn all(&self) -> SyncRequest {
        SyncRequest::new(&self.secret.id, "*")
    }

    fn built_regions(&self) -> Vec<String> {
        self.built
            .lock()
            .unwrap()
            .iter()
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// Active hosts stored for `region`.
    async fn active_in(&self, region: &str) -> u64 {
        let q = HostQuery::default()
            .with_region(region)
            .with_released(false);
        self.hosts.query(&q).await.unwrap().total
    }
}

#[tokio::test(start_paused = true)]
async fn several_allowed_regions_sync_at_once_within_the_secrets_one_limiter() {
    let regions = ["cn-hangzhou", "cn-beijing", "cn-shanghai"];
    let env = Env::new(Vendor::Aliyun, &regions).await;
    let page = Duration::from_secs(1);
    env.region("cn-hangzhou", 250, |p| p.with_delay(page));
    env.region("cn-beijing", 120, |p| p.with_delay(page));
    env.region("cn-shanghai", 40, |p| p.with_delay(page));

    let started = Instant::now();
    let r = env.syncer().sync_all(env.all()).await.unwrap();
    // 3, 2 and 1 pages of a second each: 6 s one region after the other, 3 s at once.
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "regions ran at once: {took:?}"
    );

    assert!(r.complete && r.error.is_none(), "{r:?}");
    assert_eq!(
        (r.total_succeed, r.created, r.total_failed, r.pages),
        (410, 410, 0, 6)
    );
    assert_eq!(r.details.len(), 410);
    let names: Vec<&str> = r.regions.iter().map(|s| s.region.as_str()).collect();
    assert_eq!(
        names, regions,
        "one summary per region, in the secret's order"
    );
    let created: Vec<u64> = r.regions.iter().map(|s| s.created).collect();
    assert_eq!(created, [250, 120, 40]);
    assert!(r.regions.iter().all(|s| s.complete && s.error.is_none()));
    for (region, n) in [
        ("cn-hangzhou", 250),
        ("cn-beijing", 120),
        ("cn-shanghai", 40),
    ] {
        assert_eq!(env.active_in(region).await, n, "{region}");
    }

    // No region listing was asked for: the secret names its regions.
    assert_eq!(env.built_regions(), regions);
    let built = env.built.lock().unwrap().clone();
    assert!(
        built.iter().all(|(_, l)| Arc::ptr_eq(l, &built[0].1)),
        "every region draws from the secret's one rate limiter"
    );

    // One region at a time when asked: the same answer, one region after the other.
    let one_at_a_time = env
        .syncer()
        .with_options(SyncOptions::default().with_regions_in_flight(1));
    let started = Instant::now();
    let r = one_at_a_time.sync_all(env.all()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(6));
    assert!(r.complete && r.unchanged == 410, "{r:?}");
}

#[tokio::test]
async fn star_syncs_the_regions_the_vendor_lists() {
    let env = Env::new(Vendor::Aliyun, &["*"]).await;
    // The provider built for the vendor's default region answers the region list.
    env.region("cn-hangzhou", 30, |p| {
        p.with_regions(["cn-qingdao", "cn-hangzhou", "ap-southeast-1"])
    });
    env.region("cn-qingdao", 12, |p| p);
    env.region("ap-southeast-1", 7, |p| p);

    let r = env.syncer().sync_all(env.all()).await.unwrap();
    assert!(r.complete && r.error.is_none(), "{r:?}");
    let names: Vec<&str> = r.regions.iter().map(|s| s.region.as_str()).collect();
    assert_eq!(names, ["cn-qingdao", "cn-hangzhou", "ap-southeast-1"]);
    assert_eq!((r.total_succeed, r.created), (49, 49));
    assert_eq!(
        env.built_regions(),
        ["cn-hangzhou", "cn-qingdao", "cn-hangzhou", "ap-southeast-1"],
        "a provider for cn-hangzhou to ask, then one per region"
    );

    // An empty region is `""` too.
    let r = env
        .syncer()
        .sync_all(SyncRequest::new(&env.secret.id, ""))
        .await
        .unwrap();
    assert_eq!((r.regions.len(), r.unchanged), (3, 49));
}

#[tokio::test]
async fn star_fails_as_a_whole_when_the_regions_cannot_be_known() {
    let env = Env::new(Vendor::Tencent, &["*"]).await;
    // A provider that cannot list regions: the caller must name them.
    let e = env.syncer().sync_all(env.all()).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.field()),
        (ErrorKind::InvalidInput, Some("region")),
        "{e}"
    );
    assert_eq!(
        env.built_regions(),
        ["ap-guangzhou"],
        "Tencent's default region"
    );

    env.region("ap-guangzhou", 0, |p| {
        p.with_regions_failure(ErrorKind::PermissionDenied)
    });
    let e = env.syncer().sync_all(env.all()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(
        e.message().contains("listing the regions of tencent"),
        "{e}"
    );

    env.region("ap-guangzhou", 0, |p| p.with_regions(Vec::<String>::new()));
    let e = env.syncer().sync_all(env.all()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert_eq!(env.active_in("ap-guangzhou").await, 0);
}

#[tokio::test]
async fn a_failing_region_does_not_stop_the_others() {
    let regions = ["cn-hangzhou", "cn-beijing", "cn-shanghai", "cn-shenzhen"];
    let env = Env::new(Vendor::Aliyun, &regions).await;
    env.region("cn-hangzhou", 150, |p| p);
    // Refused before anything is stored.
    env.region("cn-beijing", 80, |p| {
        p.with_failure_at(0, ErrorKind::PermissionDenied)
    });
    // Fails after a page is stored: incomplete.
    env.region("cn-shanghai", 300, |p| {
        p.with_failure_at(1, ErrorKind::Unavailable)
    });
    env.region("cn-shenzhen", 20, |p| p);
    let syncer = env.syncer();
    // A sync of cn-shenzhen already running: that region conflicts at prepare.
    let running = syncer
        .prepare(SyncRequest::new(&env.secret.id, "cn-shenzhen"))
        .await
        .unwrap();

    let r = syncer.sync_all(env.all()).await.unwrap();
    assert!(!r.complete, "{r:?}");
    let e = r.error.as_ref().expect("the first region's error");
    assert_eq!(e.kind, ErrorKind::PermissionDenied);
    assert!(
        e.message.starts_with("region cn-beijing: "),
        "{}",
        e.message
    );
    assert_eq!((r.total_succeed, r.created), (250, 250));

    let [hangzhou, beijing, shanghai, shenzhen] = &r.regions[..] else {
        panic!("four summaries: {:?}", r.regions);
    };
    assert!(hangzhou.complete && hangzhou.error.is_none() && hangzhou.created == 150);
    assert!(!beijing.complete && beijing.total_succeed == 0);
    assert_eq!(
        beijing.error.as_ref().map(|e| e.kind),
        Some(ErrorKind::PermissionDenied)
    );
    assert!(!shanghai.complete && shanghai.total_succeed == 100 && shanghai.pages == 1);
    assert_eq!(
        shanghai.error.as_ref().map(|e| e.kind),
        Some(ErrorKind::Unavailable)
    );
    assert_eq!(
        shenzhen.error.as_ref().map(|e| e.kind),
        Some(ErrorKind::Conflict)
    );
    assert_eq!(env.active_in("cn-shenzhen").await, 0);

    // Once the other run is done, the next whole-account sync completes that region too;
    // the others keep their own scope and answer as before.
    drop(running);
    env.region("cn-beijing", 80, |p| p);
    env.region("cn-shanghai", 300, |p| p);
    let r = syncer.sync_all(env.all()).await.unwrap();
    assert!(r.complete && r.error.is_none(), "{r:?}");
    assert_eq!((r.created, r.unchanged), (300, 250));
}

#[tokio::test]
async fn each_region_releases_within_its_own_scope() {
    let env = Env::new(Vendor::Aliyun, &["cn-hangzhou", "cn-beijing"]).await;
    env.region("cn-hangzhou", 40, |p| p);
    env.region("cn-beijing", 40, |p| p);
    let syncer = env.syncer();
    syncer.sync_all(env.all()).await.unwrap();

    // Hangzhou's last host is gone (the fake's lookup no longer finds it either);
    // Beijing's listing fails: nothing of Beijing is released.
    env.region("cn-hangzhou", 39, |p| p);
    env.region("cn-beijing", 140, |p| {
        p.with_failure_at(0, ErrorKind::Unavailable)
    });
    let r = syncer.sync_all(env.all()).await.unwrap();
    assert_eq!(r.released, 1, "{r:?}");
    assert_eq!(
        (r.regions[0].released, r.regions[1].released),
        (1, 0),
        "{r:?}"
    );
    assert_eq!(env.active_in("cn-hangzhou").await, 39);
    assert_eq!(env.active_in("cn-beijing").await, 40);
}

#[tokio::test]
async fn a_single_region_request_answers_as_before() {
    let env = Env::new(Vendor::Aliyun, &["*"]).await;
    env.region("cn-hangzhou", 25, |p| {
        p.with_regions(["cn-hangzhou", "cn-beijing"])
    });
    let syncer = env.syncer();

    let one = SyncRequest::new(&env.secret.id, "cn-hangzhou");
    let r = syncer.sync(one.clone()).await.unwrap();
    assert!(r.regions.is_empty() && r.created == 25);
    let json = serde_json::to_value(&r).unwrap();
    assert!(json.get("regions").is_none(), "{json}");

    // sync_all of one named region is that region's sync.
    let r = syncer.sync_all(one).await.unwrap();
    assert!(r.regions.is_empty() && r.unchanged == 25, "{r:?}");
    assert_eq!(env.built_regions(), ["cn-hangzhou", "cn-hangzhou"]);

    // "*" is for sync_all only.
    for e in [
        syncer.sync(env.all()).await.unwrap_err(),
        syncer.prepare(env.all()).await.unwrap_err(),
    ] {
        assert_eq!(
            (e.kind(), e.field()),
            (ErrorKind::InvalidInput, Some("region")),
            "{e}"
        );
        assert!(e.message().contains("sync_all"), "{e}");
    }

    // A whole-account answer lists its regions in JSON, and reads back.
    let r = syncer.sync_all(env.all()).await.unwrap();
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["regions"][1]["region"], "cn-beijing");
    assert_eq!(json["regions"][0]["unchanged"], 25);
    let back: cmdb_sync::SyncResponse = serde_json::from_value(json).unwrap();
    assert_eq!(back, r);
}

#[tokio::test]
async fn details_stay_within_the_cap_across_regions() {
    let regions = ["cn-hangzhou", "cn-beijing", "cn-shanghai"];
    let env = Env::new(Vendor::Aliyun, &regions).await;
    for region in regions {
        env.region(region, 60, |p| p);
    }
    let syncer = env
        .syncer()
        .with_options(SyncOptions::default().with_max_details(100));
    let r = syncer.sync_all(env.all()).await.unwrap();
    assert_eq!((r.total_succeed, r.details.len()), (180, 100));
    assert!(r.details_truncated && r.complete);

    let r = syncer
        .sync_all(env.all().with_details(DetailsMode::Failed))
        .await
        .unwrap();
    assert!(r.details.is_empty() && !r.details_truncated && r.unchanged == 180);
}

#[tokio::test]
async fn an_account_in_hand_syncs_every_region_the_vendor_lists() {
    let env = Env::new(Vendor::Huawei, &["*"]).await;
    env.region("cn-north-4", 10, |p| {
        p.with_regions(["cn-north-4", "ap-southeast-1"])
    });
    env.region("ap-southeast-1", 15, |p| p);
    let syncer = Syncer::for_host_store(env.hosts.clone()).with_registry(env.registry());
    let account = Account::new(Vendor::Huawei, Credentials::new("AK", "SK"));

    let r = syncer
        .sync_account_all(SyncRequest::new("cli-huawei-1", "*"), account.clone())
        .await
        .unwrap();
    assert!(r.complete, "{r:?}");
    assert_eq!((r.regions.len(), r.created), (2, 25));
    assert_eq!(
        env.built_regions()[0],
        "cn-north-4",
        "Huawei's default region"
    );
    let stored = env
        .hosts
        .query(&HostQuery::default().with_secret_id("cli-huawei-1"))
        .await
        .unwrap();
    assert_eq!(stored.total, 25);

    // Regions named by the caller: duplicates run once, the vendor is not asked.
    env.built.lock().unwrap().clear();
    let r = syncer
        .sync_account_regions(
            SyncRequest::new("cli-huawei-1", "*"),
            account,
            vec!["ap-southeast-1".into(), "ap-southeast-1".into()],
        )
        .await
        .unwrap();
    assert_eq!((r.regions.len(), r.unchanged), (1, 15));
    assert_eq!(env.built_regions(), ["ap-southeast-1"]);
}

#[tokio::test]
async fn a_vcenter_is_one_scope() {
    let env = Env::new(Vendor::Vsphere, &["*"]).await;
    // The vSphere provider knows its region (the vCenter host) from the address.
    let vcenter = FakeProvider::new(Vendor::Vsphere, "vc.example.test", 20, 100);
    env.providers.lock().unwrap().insert(String::new(), vcenter);

    let r = env
        .syncer()
        .sync_all(SyncRequest::new(&env.secret.id, ""))
        .await
        .unwrap();
    assert!(r.complete, "{r:?}");
    assert_eq!(r.regions.len(), 1);
    assert_eq!(
        (r.regions[0].region.as_str(), r.created),
        ("vc.example.test", 20)
    );
    assert_eq!(env.built_regions(), [""], "no region listing, one provider");
}
