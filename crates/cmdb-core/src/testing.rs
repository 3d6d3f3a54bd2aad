//! Conformance suites: every [`HostStore`], [`DatabaseStore`], [`RunStore`] and
//! [`HostProvider`] must pass these.
//!
//! The suites panic with a message naming the broken rule. The store suites work in
//! scopes of their own (unique secret ids), so they may run against a store other tests
//! use; the run suite's pruning check removes every run that ended before 1900-01-01
//! 00:00:10 UTC, so run it once at a time on a store.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use cmdb_core::{testing, MemoryHostStore};
//!
//! let store = Arc::new(MemoryHostStore::new());
//! testing::host_store_conformance(store.clone()).await;
//! testing::database_store_conformance(store).await;
//! # });
//! ```

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use futures::StreamExt;

use crate::database::{Database, DatabaseEndpoint, DatabaseEngine, DatabaseStatus};
use crate::database_store::{DatabaseQuery, DatabaseSort, DatabaseStore};
use crate::error::{ErrorKind, ErrorReport};
use crate::model::{Host, HostStatus, OsType, PayMode, SyncScope, UpsertOutcome, Vendor};
use crate::provider::HostProvider;
use crate::run::{
    RunCounters, RunQuery, RunState, RunStore, RunTrigger, SyncDetail, SyncRun,
    MAX_RUN_FAILED_DETAILS,
};
use crate::store::{HostQuery, HostSort, HostStore, MissingHost, ScopeStats};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A prefix no other run of the suite uses, so suites can share one store.
fn unique(prefix: &str) -> String {
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{nanos:x}-{n}")
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(seconds)
}

/// A host of `scope` with a few fields filled in.
pub fn sample_host(scope: &SyncScope, instance_id: &str) -> Host {
    let mut h = Host::new(scope.vendor, instance_id, scope.region.clone());
    h.secret_id.clone_from(&scope.secret_id);
    h.name = format!("name-{instance_id}");
    h.status = HostStatus::Running;
    h.raw_status = "Running".into();
    h.cpu = Some(2);
    h.memory_mib = Some(4096);
    h.private_ips = vec![format!("10.9.{}.1", instance_id.len() % 250)];
    h.tags.insert("env".into(), "test".into());
    h
}

/// A host with the fields a cloud fills in (ids, name, zone, type, sizes, OS, addresses,
/// tags, extra fields): the host `content_hash` is benchmarked on, and whose hashing time
/// the sync benchmark reports as a measure of the machine's speed at the time.
pub fn reference_host() -> Host {
    let mut h = Host::new(Vendor::Aliyun, "i-bp1abcdefghijklmnop", "cn-hangzhou");
    h.name = "web-production-0042".into();
    h.hostname = Some("web-0042".into());
    h.description = Some("front end".into());
    h.zone = Some("cn-hangzhou-h".into());
    h.status = HostStatus::Running;
    h.raw_status = "Running".into();
    h.instance_type = Some("ecs.g6.large".into());
    h.cpu = Some(2);
    h.memory_mib = Some(8192);
    h.os_type = OsType::Linux;
    h.os_name = Some("Alibaba Cloud Linux 3.2104 LTS 64位".into());
    h.image_id = Some("aliyun_3_x64_20G_alibase_20240528.vhd".into());
    h.public_ips = vec!["47.96.1.42".into()];
    h.private_ips = vec!["172.16.3.42".into(), "172.16.3.43".into()];
    h.pay_mode = PayMode::Postpaid;
    h.created_at = Some(Utc.with_ymd_and_hms(2024, 3, 1, 8, 15, 0).unwrap());
    h.vpc_id = Some("vpc-bp1qpo0kug3a20qqe7xyz".into());
    h.security_groups = vec!["sg-bp1fg655nh68xyz".into(), "sg-bp1abc".into()];
    h.key_pairs = vec!["deploy-key".into()];
    h.serial_number = Some("4a7b2c3d-1e2f-4a5b-8c9d-0e1f2a3b4c5d".into());
    for (k, v) in [("env", "prod"), ("team", "web"), ("cost-center", "cc-1042")] {
        h.tags.insert(k.into(), v.into());
    }
    h.extra
        .insert("InstanceChargeType".into(), serde_json::json!("PostPaid"));
    h.extra
        .insert("DeletionProtection".into(), serde_json::json!(false));
    h
}

fn ids(scope: &SyncScope, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("{}-i{i:03}", scope.secret_id))
        .collect()
}

/// Runs every check of the [`HostStore`] contract against `store`.
pub async fn host_store_conformance(store: Arc<dyn HostStore>) {
    created_unchanged_updated(&*store).await;
    failed_host_does_not_lose_the_batch(&*store).await;
    release_and_reappear(&*store).await;
    missing_pages_and_marks(&*store).await;
    queries_filter_sort_and_page(&*store).await;
    concurrent_upserts_of_different_scopes(store).await;
}

async fn created_unchanged_updated(store: &dyn HostStore) {
    let scope = SyncScope::hosts(unique("conf-cu"), Vendor::Aliyun, "cn-hangzhou");
    let hosts: Vec<Host> = ids(&scope, 3)
        .iter()
        .map(|id| sample_host(&scope, id))
        .collect();

    let out = store
        .upsert(&scope, &hosts, at(0))
        .await
        .expect("first upsert");
    assert_eq!(
        out,
        vec![UpsertOutcome::Created; 3],
        "first upsert creates every host"
    );

    let stored = store
        .get(Vendor::Aliyun, &hosts[0].instance_id)
        .await
        .expect("get")
        .expect("created host is found");
    assert_eq!(stored.host, hosts[0], "stored host equals the host given");
    assert_eq!(stored.content_hash, hosts[0].content_hash());
    assert_eq!(stored.first_seen_at, at(0));
    assert_eq!(stored.last_seen_at, at(0));
    assert_eq!(stored.released_at, None);

    let out = store
        .upsert(&scope, &hosts, at(10))
        .await
        .expect("second upsert");
    assert_eq!(
        out,
        vec![UpsertOutcome::Unchanged; 3],
        "same content is unchanged"
    );
    let stored = store
        .get(Vendor::Aliyun, &hosts[0].instance_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.first_seen_at, at(0), "first_seen_at never moves");
    assert_eq!(
        stored.last_seen_at,
        at(10),
        "unchanged host still moves last_seen_at"
    );

    let mut changed = hosts.clone();
    changed[1].status = HostStatus::Stopped;
    changed[1].raw_status = "Stopped".into();
    // Reordered lists are not a change.
    changed[2].private_ips.push("10.200.0.1".into());
    let mut reordered = changed[2].clone();
    reordered.private_ips.reverse();
    store.upsert(&scope, &changed[2..3], at(15)).await.unwrap();
    let out = store
        .upsert(
            &scope,
            &[changed[0].clone(), changed[1].clone(), reordered],
            at(20),
        )
        .await
        .expect("third upsert");
    assert_eq!(
        out,
        vec![
            UpsertOutcome::Unchanged,
            UpsertOutcome::Updated,
            UpsertOutcome::Unchanged
        ],
        "only the changed host is updated; list order is not a change"
    );
    let stored = store
        .get(Vendor::Aliyun, &hosts[1].instance_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.host.status, HostStatus::Stopped, "update is stored");

    let missing = store
        .get(Vendor::Aliyun, "no-such-host")
        .await
        .expect("get");
    assert!(missing.is_none(), "unknown host is None");
}

async fn failed_host_does_not_lose_the_batch(store: &dyn HostStore) {
    let scope = SyncScope::hosts(unique("conf-fail"), Vendor::Tencent, "ap-guangzhou");
    let good = ids(&scope, 2);
    let batch = vec![
        sample_host(&scope, &good[0]),
        sample_host(&scope, ""),
        sample_host(&scope, &good[1]),
    ];
    let out = store.upsert(&scope, &batch, at(0)).await.expect("upsert");
    assert_eq!(out.len(), 3, "one outcome per host");
    assert_eq!(out[0], UpsertOutcome::Created);
    assert!(
        matches!(out[1], UpsertOutcome::Failed(_)),
        "empty id fails: {:?}",
        out[1]
    );
    assert_eq!(
        out[2],
        UpsertOutcome::Created,
        "hosts after a failed one are stored"
    );
    assert!(store
        .get(Vendor::Tencent, &good[1])
        .await
        .unwrap()
        .is_some());
}

async fn release_and_reappear(store: &dyn HostStore) {
    let scope = SyncScope::hosts(unique("conf-rel"), Vendor::Huawei, "cn-north-4");
    let other = SyncScope::hosts(unique("conf-rel-other"), Vendor::Huawei, "cn-north-4");
    let hosts: Vec<Host> = ids(&scope, 4)
        .iter()
        .map(|id| sample_host(&scope, id))
        .collect();
    let other_host = sample_host(&other, &format!("{}-x", other.secret_id));
    store.upsert(&scope, &hosts, at(0)).await.unwrap();
    store
        .upsert(&other, std::slice::from_ref(&other_host), at(0))
        .await
        .unwrap();

    // Run two sees three of the four hosts.
    store.upsert(&scope, &hosts[..3], at(100)).await.unwrap();
    let stats = store.scope_stats(&scope, at(100)).await.expect("stats");
    assert_eq!(stats.active, 4, "active hosts of the scope");
    assert_eq!(stats.missing, 1, "hosts not seen by run two");

    let missing = store
        .missing(&scope, at(100), None, 10)
        .await
        .expect("missing");
    assert_eq!(
        missing,
        vec![MissingHost {
            instance_id: hosts[3].instance_id.clone(),
            missed_at: None
        }],
        "the host run two did not see, unmarked"
    );
    let released = store
        .release(
            &scope,
            &[
                hosts[3].instance_id.clone(),
                hosts[0].instance_id.clone(),
                other_host.instance_id.clone(),
                "no-such-host".to_owned(),
            ],
            at(100),
            at(101),
        )
        .await
        .expect("release");
    assert_eq!(
        released, 1,
        "only the named host that is missing from the scope is released"
    );
    let gone = store
        .get(Vendor::Huawei, &hosts[3].instance_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gone.released_at, Some(at(101)), "released, not deleted");
    let kept = store
        .get(Vendor::Huawei, &hosts[0].instance_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.released_at, None);
    let untouched = store
        .get(Vendor::Huawei, &other_host.instance_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        untouched.released_at, None,
        "release never reaches another scope"
    );

    let stats = store.scope_stats(&scope, at(100)).await.unwrap();
    assert_eq!(
        (stats.active, stats.missing),
        (3, 0),
        "released hosts are not active"
    );
    let again = store
        .release(&scope, &[hosts[3].instance_id.clone()], at(100), at(102))
        .await
        .unwrap();
    assert_eq!(again, 0, "release is idempotent");
    assert!(
        store
            .missing(&scope, at(100), None, 10)
            .await
            .unwrap()
            .is_empty(),
        "released hosts are not missing"
    );

    let out = store.upsert(&scope, &hosts[3..], at(200)).await.unwrap();
    assert_eq!(
        out,
        vec![UpsertOutcome::Updated],
        "a reappearing host is updated"
    );
    let back = store
        .get(Vendor::Huawei, &hosts[3].instance_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.released_at, None, "a reappearing host is active again");
    assert_eq!(back.first_seen_at, at(0));
}

async fn missing_pages_and_marks(store: &dyn HostStore) {
    let scope = SyncScope::hosts(unique("conf-miss"), Vendor::Tencent, "ap-guangzhou");
    let other_region = SyncScope::hosts(scope.secret_id.clone(), Vendor::Tencent, "ap-beijing");
    let hosts: Vec<Host> = ids(&scope, 7)
        .iter()
        .map(|id| sample_host(&scope, id))
        .collect();
    let elsewhere = sample_host(&other_region, &format!("{}-elsewhere", scope.secret_id));
    store.upsert(&scope, &hosts, at(0)).await.unwrap();
    store
        .upsert(&other_region, std::slice::from_ref(&elsewhere), at(0))
        .await
        .unwrap();
    // Run two sees hosts 0 and 3 only.
    store
        .upsert(&scope, &[hosts[0].clone(), hosts[3].clone()], at(100))
        .await
        .unwrap();
    let mut expected: Vec<String> = [1, 2, 4, 5, 6]
        .iter()
        .map(|&i| hosts[i].instance_id.clone())
        .collect();
    expected.sort();
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .missing(&scope, at(100), after.as_deref(), 2)
            .await
            .expect("missing");
        assert!(page.len() <= 2, "missing answers at most `limit` hosts");
        let Some(last) = page.last() else { break };
        after = Some(last.instance_id.clone());
        paged.extend(page.into_iter().map(|m| m.instance_id));
    }
    assert_eq!(
        paged, expected,
        "missing pages through the scope's unseen hosts in id order, no other scope's"
    );

    let marked = store
        .mark_missed(&scope, &expected[..3], at(100))
        .await
        .expect("mark_missed");
    assert_eq!(marked, 3, "three hosts marked");
    let marked = store
        .mark_missed(
            &scope,
            &[expected[0].clone(), hosts[0].instance_id.clone()],
            at(100),
        )
        .await
        .unwrap();
    assert_eq!(
        marked, 0,
        "a mark is kept from the first miss, and a host seen since is not marked"
    );
    let missing = store.missing(&scope, at(100), None, 10).await.unwrap();
    let marks: Vec<Option<DateTime<Utc>>> = missing.iter().map(|m| m.missed_at).collect();
    assert_eq!(
        marks,
        vec![Some(at(100)), Some(at(100)), Some(at(100)), None, None],
        "the first three carry their first miss"
    );
    // Seen again: the mark is gone with it.
    store
        .upsert(
            &scope,
            std::slice::from_ref(&hosts_by_id(&hosts, &expected[0])),
            at(300),
        )
        .await
        .unwrap();
    store
        .upsert(
            &scope,
            std::slice::from_ref(&hosts_by_id(&hosts, &expected[0])),
            at(400),
        )
        .await
        .unwrap();
    let again = store.missing(&scope, at(500), None, 10).await.unwrap();
    let first = again
        .iter()
        .find(|m| m.instance_id == expected[0])
        .expect("missing from a run at 500");
    assert_eq!(first.missed_at, None, "an upsert clears the mark");
}

fn hosts_by_id(hosts: &[Host], id: &str) -> Host {
    hosts
        .iter()
        .find(|h| h.instance_id == id)
        .cloned()
        .expect("a host of the test")
}

async fn queries_filter_sort_and_page(store: &dyn HostStore) {
    let secret = unique("conf-q");
    let ali = SyncScope::hosts(secret.clone(), Vendor::Aliyun, "cn-beijing");
    let ali2 = SyncScope::hosts(secret.clone(), Vendor::Aliyun, "cn-shanghai");
    let tc = SyncScope::hosts(secret.clone(), Vendor::Tencent, "ap-beijing");
    let mut a: Vec<Host> = ids(&ali, 5)
        .iter()
        .map(|id| sample_host(&ali, id))
        .collect();
    a[0].name = "Zeta-web".into();
    a[0].public_ips = vec!["203.0.113.77".into()];
    a[1].status = HostStatus::Stopped;
    let mut b: Vec<Host> = (0..3)
        .map(|i| sample_host(&ali2, &format!("{secret}-s{i}")))
        .collect();
    b[0].name = "alpha".into();
    let c: Vec<Host> = (0..4)
        .map(|i| sample_host(&tc, &format!("{secret}-t{i}")))
        .collect();
    store.upsert(&ali, &a, at(0)).await.unwrap();
    store.upsert(&ali2, &b, at(0)).await.unwrap();
    store.upsert(&tc, &c, at(5)).await.unwrap();
    store.upsert(&ali, &a[..4], at(10)).await.unwrap();
    store
        .release(&ali, &[a[4].instance_id.clone()], at(10), at(11))
        .await
        .unwrap();

    let base = HostQuery {
        secret_id: Some(secret.clone()),
        page_size: 100,
        ..HostQuery::default()
    };
    let q = |f: &dyn Fn(&mut HostQuery)| {
        let mut q = base.clone();
        f(&mut q);
        q
    };
    let total = |q: HostQuery| async move { store.query(&q).await.expect("query").total };

    assert_eq!(total(base.clone()).await, 12, "every host of the secret");
    assert_eq!(
        total(q(&|q| q.vendor = Some(Vendor::Tencent))).await,
        4,
        "vendor filter"
    );
    assert_eq!(
        total(q(&|q| q.region = Some("cn-shanghai".into()))).await,
        3,
        "region filter"
    );
    assert_eq!(
        total(q(&|q| q.status = Some(HostStatus::Stopped))).await,
        1,
        "status filter"
    );
    assert_eq!(
        total(q(&|q| q.released = Some(true))).await,
        1,
        "released filter"
    );
    assert_eq!(
        total(q(&|q| q.released = Some(false))).await,
        11,
        "active filter"
    );
    assert_eq!(
        total(q(&|q| q.keywords = Some("zeta".into()))).await,
        1,
        "name keyword"
    );
    assert_eq!(
        total(q(&|q| q.keywords = Some("203.0.113".into()))).await,
        1,
        "ip keyword"
    );
    let id_kw = format!("{secret}-t");
    assert_eq!(
        total(q(&|q| q.keywords = Some(id_kw.clone()))).await,
        4,
        "id keyword"
    );
    let other_secret = HostQuery {
        secret_id: Some(unique("conf-q-none")),
        ..base.clone()
    };
    assert_eq!(total(other_secret).await, 0, "secret filter");
    let injection = q(&|q| q.keywords = Some("' OR '1'='1".into()));
    assert_eq!(total(injection).await, 0, "keywords are data, not syntax");

    // Paging: 12 hosts in pages of 5 -> 5, 5, 2, then nothing; no host twice.
    let mut seen = HashSet::new();
    for (page, expect) in [(1, 5), (2, 5), (3, 2), (4, 0)] {
        let list = store
            .query(&q(&|q| {
                q.page_size = 5;
                q.page_number = page;
            }))
            .await
            .unwrap();
        assert_eq!(list.total, 12, "total does not depend on the page");
        assert_eq!(list.items.len(), expect, "page {page} size");
        for h in list.items {
            assert!(
                seen.insert((h.host.vendor, h.host.instance_id.clone())),
                "a host appears on two pages"
            );
        }
    }

    let by_id = store.query(&base).await.unwrap();
    let keys: Vec<_> = by_id
        .items
        .iter()
        .map(|h| (h.host.vendor, h.host.instance_id.clone()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "default order is (vendor, instance_id)");
    let by_name = store.query(&q(&|q| q.sort = HostSort::Name)).await.unwrap();
    let names: Vec<_> = by_name.items.iter().map(|h| h.host.name.clone()).collect();
    let mut sorted_names = names.clone();
    sorted_names.sort();
    assert_eq!(names, sorted_names, "name order");
    let recent = store
        .query(&q(&|q| q.sort = HostSort::LastSeenDesc))
        .await
        .unwrap();
    assert_eq!(
        recent.items[0].last_seen_at,
        at(10),
        "most recently seen first"
    );

    for bad in [0, crate::store::MAX_PAGE_SIZE + 1] {
        let err = store
            .query(&q(&|q| q.page_size = bad))
            .await
            .expect_err("page_size out of range");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
}

async fn concurrent_upserts_of_different_scopes(store: Arc<dyn HostStore>) {
    let scopes: Vec<SyncScope> = (0..6)
        .map(|i| SyncScope::hosts(unique("conf-conc"), Vendor::ALL[i % 4], format!("r{i}")))
        .collect();
    let tasks: Vec<_> = scopes
        .iter()
        .cloned()
        .map(|scope| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let hosts: Vec<Host> = ids(&scope, 40)
                    .iter()
                    .map(|id| sample_host(&scope, id))
                    .collect();
                for chunk in hosts.chunks(10) {
                    let out = store.upsert(&scope, chunk, at(0)).await.expect("upsert");
                    assert!(out.iter().all(|o| *o == UpsertOutcome::Created));
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("concurrent upsert task");
    }
    for scope in &scopes {
        let stats = store.scope_stats(scope, at(1)).await.unwrap();
        assert_eq!(stats.active, 40, "every host of {scope} stored once");
    }
}

/// A database instance of `scope` with a few fields filled in.
pub fn sample_database(scope: &SyncScope, instance_id: &str) -> Database {
    Database::new(scope.vendor, instance_id, scope.region.clone())
        .with_secret_id(scope.secret_id.clone())
        .with_name(format!("db-{instance_id}"))
        .with_engine(DatabaseEngine::MySql, Some("8.0"))
        .with_status(DatabaseStatus::Running, "Running")
        .with_cpu(2)
        .with_memory_mib(4096)
        .with_storage(100, Some("cloud_essd"))
        .with_endpoint(DatabaseEndpoint::private(
            format!("10.8.{}.1", instance_id.len() % 250),
            Some(3306),
        ))
        .with_tag("env", "test")
}

/// A database instance with every field set, times to the microsecond.
fn full_database(scope: &SyncScope, instance_id: &str) -> Database {
    let micros = Duration::microseconds(123_456);
    Database::new(scope.vendor, instance_id, scope.region.clone())
        .with_secret_id(scope.secret_id.clone())
        .with_zone(format!("{}-a", scope.region))
        .with_name("Orders 'primary' 订单")
        .with_engine(DatabaseEngine::from_vendor("TDSQL-C"), Some("5.7.18"))
        .with_status(DatabaseStatus::Modifying, "DBInstanceClassChanging")
        .with_instance_class("mysql.n2.medium.1")
        .with_cpu(4)
        .with_memory_mib(16_384)
        .with_storage(500, Some("cloud_essd"))
        .with_endpoint(DatabaseEndpoint::private("192.168.3.4", Some(3306)))
        .with_endpoint(DatabaseEndpoint::public("orders.mysql.example.com", None))
        .with_vpc_id("vpc-orders")
        .with_pay_mode(PayMode::Prepaid)
        .with_created_at(at(-86_400) + micros)
        .with_expire_at(at(86_400 * 365) + micros)
        .with_tag("env", "prod")
        .with_tag("owner", "dba team")
        .with_extra(
            "ReadOnlyInstances",
            serde_json::json!([{"id": "ro-1"}, 2.5, null]),
        )
        .with_extra("DeletionProtection", serde_json::json!(true))
}

fn databases_of(scope: &SyncScope, n: usize) -> Vec<Database> {
    ids(scope, n)
        .iter()
        .map(|id| sample_database(scope, id))
        .collect()
}

/// Runs every check of the [`DatabaseStore`] contract against `store`: what
/// [`host_store_conformance`] checks of a [`HostStore`], for database instances.
pub async fn database_store_conformance(store: Arc<dyn DatabaseStore>) {
    databases_created_unchanged_updated(&*store).await;
    failed_database_does_not_lose_the_batch(&*store).await;
    databases_release_and_reappear(&*store).await;
    missing_databases_pages_and_marks(&*store).await;
    database_queries_filter_sort_and_page(&*store).await;
    concurrent_database_upserts_of_different_scopes(store).await;
}

async fn databases_created_unchanged_updated(store: &dyn DatabaseStore) {
    let scope = SyncScope::databases(unique("conf-db-cu"), Vendor::Aliyun, "cn-hangzhou");
    let mut dbs = databases_of(&scope, 3);
    dbs[0] = full_database(&scope, &dbs[0].instance_id);
    // The secret comes from the scope, whatever the record says.
    let mut given = dbs.clone();
    given[2].secret_id = "someone-else".into();

    let out = store
        .upsert(&scope, &given, at(0))
        .await
        .expect("first upsert");
    assert_eq!(
        out,
        vec![UpsertOutcome::Created; 3],
        "first upsert creates every instance"
    );
    let stored = store
        .get(Vendor::Aliyun, &dbs[0].instance_id)
        .await
        .expect("get")
        .expect("created instance is found");
    assert_eq!(
        stored.database, dbs[0],
        "stored instance equals the one given, every field"
    );
    assert_eq!(stored.content_hash, dbs[0].content_hash());
    assert_eq!(
        (
            stored.first_seen_at,
            stored.last_seen_at,
            stored.released_at
        ),
        (at(0), at(0), None)
    );
    let other = store
        .get(Vendor::Aliyun, &dbs[2].instance_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        other.database.secret_id, scope.secret_id,
        "the stored secret is the scope's"
    );

    let out = store
        .upsert(&scope, &dbs, at(10))
        .await
        .expect("second upsert");
    assert_eq!(
        out,
        vec![UpsertOutcome::Unchanged; 3],
        "same content is unchanged"
    );
    let stored = store
        .get(Vendor::Aliyun, &dbs[0].instance_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.first_seen_at, at(0), "first_seen_at never moves");
    assert_eq!(
        stored.last_seen_at,
        at(10),
        "unchanged instance still moves last_seen_at"
    );

    let mut changed = dbs.clone();
    changed[1].status = DatabaseStatus::Isolated;
    changed[1].raw_status = "Isolated".into();
    // Reordered endpoints are not a change.
    changed[0].endpoints.reverse();
    let out = store
        .upsert(&scope, &changed, at(20))
        .await
        .expect("third upsert");
    assert_eq!(
        out,
        vec![
            UpsertOutcome::Unchanged,
            UpsertOutcome::Updated,
            UpsertOutcome::Unchanged
        ],
        "only the changed instance is updated; endpoint order is not a change"
    );
    let stored = store
        .get(Vendor::Aliyun, &dbs[1].instance_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.database.status,
        DatabaseStatus::Isolated,
        "update is stored"
    );
    assert_eq!(stored.content_hash, changed[1].content_hash());

    assert!(
        store
            .get(Vendor::Aliyun, "no-such-database")
            .await
            .expect("get")
            .is_none(),
        "unknown instance is None"
    );
    assert!(
        store
            .get(Vendor::Tencent, &dbs[0].instance_id)
            .await
            .unwrap()
            .is_none(),
        "the key includes the vendor"
    );
}

async fn failed_database_does_not_lose_the_batch(store: &dyn DatabaseStore) {
    let scope = SyncScope::databases(unique("conf-db-fail"), Vendor::Tencent, "ap-guangzhou");
    let good = ids(&scope, 2);
    let mut elsewhere = sample_database(&scope, &format!("{}-x", scope.secret_id));
    elsewhere.region = "ap-beijing".into();
    let batch = vec![
        sample_database(&scope, &good[0]),
        sample_database(&scope, ""),
        elsewhere,
        sample_database(&scope, &good[1]),
    ];
    let out = store.upsert(&scope, &batch, at(0)).await.expect("upsert");
    assert_eq!(out.len(), 4, "one outcome per instance");
    assert_eq!(out[0], UpsertOutcome::Created);
    assert!(
        matches!(out[1], UpsertOutcome::Failed(_)),
        "empty id fails: {:?}",
        out[1]
    );
    assert!(
        matches!(out[2], UpsertOutcome::Failed(_)),
        "an instance outside the scope's region fails: {:?}",
        out[2]
    );
    assert_eq!(
        out[3],
        UpsertOutcome::Created,
        "instances after a failed one are stored"
    );
    assert!(store
        .get(Vendor::Tencent, &good[1])
        .await
        .unwrap()
        .is_some());
}

async fn databases_release_and_reappear(store: &dyn DatabaseStore) {
    let scope = SyncScope::databases(unique("conf-db-rel"), Vendor::Huawei, "cn-north-4");
    let other = SyncScope::databases(unique("conf-db-rel-other"), Vendor::Huawei, "cn-north-4");
    let dbs = databases_of(&scope, 4);
    let other_db = sample_database(&other, &format!("{}-x", other.secret_id));
    store.upsert(&scope, &dbs, at(0)).await.unwrap();
    store
        .upsert(&other, std::slice::from_ref(&other_db), at(0))
        .await
        .unwrap();

    // Run two sees three of the four instances.
    store.upsert(&scope, &dbs[..3], at(100)).await.unwrap();
    let stats = store.scope_stats(&scope, at(100)).await.expect("stats");
    assert_eq!(
        (stats.active, stats.missing),
        (4, 1),
        "active instances of the scope, and those run two did not see"
    );
    let host_scope = SyncScope::hosts(scope.secret_id.clone(), scope.vendor, &scope.region);
    assert_eq!(
        store.scope_stats(&host_scope, at(100)).await.unwrap(),
        ScopeStats::default(),
        "a host scope holds no database instance"
    );

    let missing = store
        .missing(&scope, at(100), None, 10)
        .await
        .expect("missing");
    assert_eq!(
        missing,
        vec![MissingHost::new(dbs[3].instance_id.clone(), None)],
        "the instance run two did not see, unmarked"
    );
    let released = store
        .release(
            &scope,
            &[
                dbs[3].instance_id.clone(),
                dbs[0].instance_id.clone(),
                other_db.instance_id.clone(),
                "no-such-database".to_owned(),
            ],
            at(100),
            at(101),
        )
        .await
        .expect("release");
    assert_eq!(
        released, 1,
        "only the named instance that is missing from the scope is released"
    );
    let gone = store
        .get(Vendor::Huawei, &dbs[3].instance_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gone.released_at, Some(at(101)), "released, not deleted");
    let kept = store
        .get(Vendor::Huawei, &dbs[0].instance_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.released_at, None);
    let untouched = store
        .get(Vendor::Huawei, &other_db.instance_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        untouched.released_at, None,
        "release never reaches another secret's scope"
    );
    assert_eq!(
        store
            .release(&host_scope, &[dbs[2].instance_id.clone()], at(200), at(201))
            .await
            .unwrap(),
        0,
        "a host scope releases no database instance"
    );

    let stats = store.scope_stats(&scope, at(100)).await.unwrap();
    assert_eq!(
        (stats.active, stats.missing),
        (3, 0),
        "released instances are not active"
    );
    let again = store
        .release(&scope, &[dbs[3].instance_id.clone()], at(100), at(102))
        .await
        .unwrap();
    assert_eq!(again, 0, "release is idempotent");
    assert!(
        store
            .missing(&scope, at(100), None, 10)
            .await
            .unwrap()
            .is_empty(),
        "released instances are not missing"
    );

    let out = store.upsert(&scope, &dbs[3..], at(200)).await.unwrap();
    assert_eq!(
        out,
        vec![UpsertOutcome::Updated],
        "a reappearing instance is updated"
    );
    let back = store
        .get(Vendor::Huawei, &dbs[3].instance_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        back.released_at, None,
        "a reappearing instance is active again"
    );
    assert_eq!(back.first_seen_at, at(0));
    assert_eq!(back.last_seen_at, at(200));
}

async fn missing_databases_pages_and_marks(store: &dyn DatabaseStore) {
    let scope = SyncScope::databases(unique("conf-db-miss"), Vendor::Tencent, "ap-guangzhou");
    let other_region = SyncScope::databases(scope.secret_id.clone(), Vendor::Tencent, "ap-beijing");
    let dbs = databases_of(&scope, 7);
    let elsewhere = sample_database(&other_region, &format!("{}-elsewhere", scope.secret_id));
    store.upsert(&scope, &dbs, at(0)).await.unwrap();
    store
        .upsert(&other_region, std::slice::from_ref(&elsewhere), at(0))
        .await
        .unwrap();
    // Run two sees instances 0 and 3 only.
    store
        .upsert(&scope, &[dbs[0].clone(), dbs[3].clone()], at(100))
        .await
        .unwrap();
    let mut expected: Vec<String> = [1, 2, 4, 5, 6]
        .iter()
        .map(|&i| dbs[i].instance_id.clone())
        .collect();
    expected.sort();
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .missing(&scope, at(100), after.as_deref(), 2)
            .await
            .expect("missing");
        assert!(page.len() <= 2, "missing answers at most `limit` instances");
        let Some(last) = page.last() else { break };
        after = Some(last.instance_id.clone());
        paged.extend(page.into_iter().map(|m| m.instance_id));
    }
    assert_eq!(
        paged, expected,
        "missing pages through the scope's unseen instances in id order, no other region's"
    );
    assert_eq!(
        store
            .scope_stats(&other_region, at(100))
            .await
            .unwrap()
            .active,
        1,
        "the other region's scope holds its own instance only"
    );

    let marked = store
        .mark_missed(&scope, &expected[..3], at(100))
        .await
        .expect("mark_missed");
    assert_eq!(marked, 3, "three instances marked");
    let marked = store
        .mark_missed(
            &scope,
            &[
                expected[0].clone(),
                dbs[0].instance_id.clone(),
                elsewhere.instance_id.clone(),
            ],
            at(100),
        )
        .await
        .unwrap();
    assert_eq!(
        marked, 0,
        "a mark is kept from the first miss; an instance seen since, or of another \
         scope, is not marked"
    );
    let missing = store.missing(&scope, at(100), None, 10).await.unwrap();
    let marks: Vec<Option<DateTime<Utc>>> = missing.iter().map(|m| m.missed_at).collect();
    assert_eq!(
        marks,
        vec![Some(at(100)), Some(at(100)), Some(at(100)), None, None],
        "the first three carry their first miss"
    );
    // Seen again: the mark is gone with it.
    let first = dbs
        .iter()
        .find(|d| d.instance_id == expected[0])
        .cloned()
        .expect("an instance of the test");
    store
        .upsert(&scope, std::slice::from_ref(&first), at(300))
        .await
        .unwrap();
    let again = store.missing(&scope, at(500), None, 10).await.unwrap();
    let seen = again
        .iter()
        .find(|m| m.instance_id == expected[0])
        .expect("missing from a run at 500");
    assert_eq!(seen.missed_at, None, "an upsert clears the mark");
    // Released: the mark goes too, and a released instance is never marked.
    let released = store
        .release(&scope, &expected[1..2], at(100), at(101))
        .await
        .unwrap();
    assert_eq!(released, 1);
    assert_eq!(
        store
            .mark_missed(&scope, &expected[1..2], at(600))
            .await
            .unwrap(),
        0,
        "a released instance is not marked"
    );
}

async fn database_queries_filter_sort_and_page(store: &dyn DatabaseStore) {
    let secret = unique("conf-db-q");
    let ali = SyncScope::databases(secret.clone(), Vendor::Aliyun, "cn-beijing");
    let ali2 = SyncScope::databases(secret.clone(), Vendor::Aliyun, "cn-shanghai");
    let tc = SyncScope::databases(secret.clone(), Vendor::Tencent, "ap-beijing");
    let mut a = databases_of(&ali, 5);
    a[0].name = "Zeta-Orders".into();
    a[0].endpoints = vec![DatabaseEndpoint::public("zeta.rds.example.com", Some(3306))];
    a[1].status = DatabaseStatus::Stopped;
    let mut b: Vec<Database> = (0..3)
        .map(|i| sample_database(&ali2, &format!("{secret}-s{i}")))
        .collect();
    b[0].name = "alpha".into();
    let c: Vec<Database> = (0..4)
        .map(|i| sample_database(&tc, &format!("{secret}-t{i}")))
        .collect();
    store.upsert(&ali, &a, at(0)).await.unwrap();
    store.upsert(&ali2, &b, at(0)).await.unwrap();
    store.upsert(&tc, &c, at(5)).await.unwrap();
    store.upsert(&ali, &a[..4], at(10)).await.unwrap();
    store
        .release(&ali, &[a[4].instance_id.clone()], at(10), at(11))
        .await
        .unwrap();

    let base = DatabaseQuery::default()
        .with_secret_id(secret.clone())
        .with_page_size(100);
    let total = |q: DatabaseQuery| async move { store.query(&q).await.expect("query").total };

    assert_eq!(
        total(base.clone()).await,
        12,
        "every instance of the secret"
    );
    assert_eq!(
        total(base.clone().with_vendor(Vendor::Tencent)).await,
        4,
        "vendor filter"
    );
    assert_eq!(
        total(base.clone().with_region("cn-shanghai")).await,
        3,
        "region filter"
    );
    assert_eq!(
        total(base.clone().with_status(DatabaseStatus::Stopped)).await,
        1,
        "status filter"
    );
    assert_eq!(
        total(base.clone().with_released(true)).await,
        1,
        "released filter"
    );
    assert_eq!(
        total(base.clone().with_released(false)).await,
        11,
        "active filter"
    );
    assert_eq!(
        total(base.clone().with_keywords("zeta-ORDERS")).await,
        1,
        "name keyword, ignoring case"
    );
    assert_eq!(
        total(base.clone().with_keywords("zeta.rds.example")).await,
        1,
        "endpoint keyword"
    );
    assert_eq!(
        total(base.clone().with_keywords(format!("{secret}-t"))).await,
        4,
        "id keyword"
    );
    assert_eq!(
        total(base.clone().with_keywords("")).await,
        12,
        "an empty keyword matches everything"
    );
    assert_eq!(
        total(
            base.clone()
                .with_vendor(Vendor::Aliyun)
                .with_region("cn-beijing")
                .with_released(false)
        )
        .await,
        4,
        "filters combine"
    );
    assert_eq!(
        total(DatabaseQuery::default().with_secret_id(unique("conf-db-q-none"))).await,
        0,
        "secret filter"
    );
    assert_eq!(
        total(base.clone().with_keywords("' OR '1'='1")).await,
        0,
        "keywords are data, not syntax"
    );
    assert_eq!(
        total(base.clone().with_keywords("%")).await,
        0,
        "% is a plain character"
    );

    // Paging: 12 instances in pages of 5 -> 5, 5, 2, then nothing; none twice.
    let mut seen = HashSet::new();
    for (page, expect) in [(1, 5), (2, 5), (3, 2), (4, 0)] {
        let list = store
            .query(&base.clone().with_page_size(5).with_page_number(page))
            .await
            .unwrap();
        assert_eq!(list.total, 12, "total does not depend on the page");
        assert_eq!(list.items.len(), expect, "page {page} size");
        for d in list.items {
            assert!(
                seen.insert((d.database.vendor, d.database.instance_id.clone())),
                "an instance appears on two pages"
            );
        }
    }

    let by_id = store.query(&base).await.unwrap();
    let keys: Vec<_> = by_id
        .items
        .iter()
        .map(|d| (d.database.vendor, d.database.instance_id.clone()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "default order is (vendor, instance_id)");
    let by_name = store
        .query(&base.clone().with_sort(DatabaseSort::Name))
        .await
        .unwrap();
    let names: Vec<_> = by_name
        .items
        .iter()
        .map(|d| d.database.name.clone())
        .collect();
    let mut sorted_names = names.clone();
    sorted_names.sort();
    assert_eq!(names, sorted_names, "name order");
    assert_eq!(
        names[0], "Zeta-Orders",
        "name order is by bytes: upper case first"
    );
    let recent = store
        .query(&base.clone().with_sort(DatabaseSort::LastSeenDesc))
        .await
        .unwrap();
    let seen_at: Vec<_> = recent.items.iter().map(|d| d.last_seen_at).collect();
    assert_eq!(seen_at[..4], [at(10); 4], "most recently seen first");
    assert_eq!(seen_at[4..8], [at(5); 4]);

    for bad in [
        base.clone().with_page_size(0),
        base.clone().with_page_size(crate::store::MAX_PAGE_SIZE + 1),
        base.clone().with_page_number(0),
    ] {
        let err = store.query(&bad).await.expect_err("invalid paging");
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    }
}

async fn concurrent_database_upserts_of_different_scopes(store: Arc<dyn DatabaseStore>) {
    let scopes: Vec<SyncScope> = (0..6)
        .map(|i| SyncScope::databases(unique("conf-db-conc"), Vendor::ALL[i % 3], format!("r{i}")))
        .collect();
    let tasks: Vec<_> = scopes
        .iter()
        .cloned()
        .map(|scope| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let dbs = databases_of(&scope, 30);
                for chunk in dbs.chunks(10) {
                    let out = store.upsert(&scope, chunk, at(0)).await.expect("upsert");
                    assert!(out.iter().all(|o| *o == UpsertOutcome::Created));
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("concurrent upsert task");
    }
    for scope in &scopes {
        let stats = store.scope_stats(scope, at(1)).await.unwrap();
        assert_eq!(stats.active, 30, "every instance of {scope} stored once");
    }
}

/// Runs every check of the [`RunStore`] contract against `store`.
pub async fn run_store_conformance(store: Arc<dyn RunStore>) {
    runs_round_trip(&*store).await;
    progress_only_while_running(&*store).await;
    finish_records_the_end(&*store).await;
    interrupted_only_while_running(&*store).await;
    runs_filter_order_and_page(&*store).await;
    prune_removes_only_old_finished_runs(&*store).await;
}

/// A run of `scope` accepted at `created`, with an id no other run has.
fn sample_run(scope: &SyncScope, created: DateTime<Utc>) -> SyncRun {
    SyncRun::new(unique("run"), scope, RunTrigger::Api, created)
}

fn counters(pages: u64) -> RunCounters {
    let mut c = RunCounters::new();
    c.pages = pages;
    c.seen = pages * 100 + 3;
    c.stored = pages * 100;
    c.failed = 3;
    c.created = pages * 50;
    c.updated = pages * 30;
    c.unchanged = pages * 20;
    c.released = 2;
    c.expected_total = Some(pages * 100 + 3);
    c
}

fn failed_detail(i: usize) -> SyncDetail {
    SyncDetail::new(
        &format!("i-failed-{i:03}"),
        &format!("host 'quoted' {i}"),
        &UpsertOutcome::Failed(format!("broken field {i}")),
    )
}

fn vendor_report() -> ErrorReport {
    let mut report = ErrorReport::new(ErrorKind::RateLimited, "rate_limited: throttled \"x\"");
    report.vendor = Some(Vendor::Tencent);
    report.code = Some("RequestLimitExceeded".into());
    report.http_status = Some(200);
    report.request_id = Some("req-1".into());
    report
}

async fn runs_round_trip(store: &dyn RunStore) {
    let scope = SyncScope::hosts(unique("conf-run"), Vendor::Huawei, "cn-north-4");
    let run = sample_run(&scope, at(0))
        .with_state(RunState::Running)
        .with_started_at(Some(at(1)))
        .with_counters(counters(2))
        .with_failed_details([failed_detail(0), failed_detail(1)])
        .with_error(Some(vendor_report()))
        .with_runner(Some("cmdb-1.example:4242".into()))
        .with_parent_id(Some(unique("conf-parent")));
    store.insert_run(&run).await.expect("insert_run");
    let got = store.get_run(&run.id).await.expect("get_run");
    assert_eq!(got.as_ref(), Some(&run), "a run reads back as inserted");
    assert_eq!(got.unwrap().scope(), scope, "the run's scope");

    let err = store
        .insert_run(&run)
        .await
        .expect_err("a second run with the same id");
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(
        store
            .get_run(&unique("no-such-run"))
            .await
            .unwrap()
            .is_none(),
        "an unknown run is None"
    );

    // A pending run with nothing set reads back with nothing set.
    let bare = sample_run(&scope, at(2)).with_state(RunState::Pending);
    store.insert_run(&bare).await.unwrap();
    assert_eq!(store.get_run(&bare.id).await.unwrap(), Some(bare));
}

async fn progress_only_while_running(store: &dyn RunStore) {
    let scope = SyncScope::hosts(unique("conf-run-progress"), Vendor::Aliyun, "cn-beijing");
    let running = sample_run(&scope, at(0)).with_state(RunState::Running);
    store.insert_run(&running).await.unwrap();
    let moved = store
        .update_run_progress(&running.id, &counters(3))
        .await
        .expect("update_run_progress");
    assert!(moved, "a running run takes progress");
    let again = store
        .update_run_progress(&running.id, &counters(3))
        .await
        .unwrap();
    assert!(again, "the same counters twice: still running");
    let got = store.get_run(&running.id).await.unwrap().unwrap();
    assert_eq!(got.counters, counters(3));
    assert_eq!(got.state, RunState::Running);

    let pending = sample_run(&scope, at(1));
    store.insert_run(&pending).await.unwrap();
    assert!(
        !store
            .update_run_progress(&pending.id, &counters(1))
            .await
            .unwrap(),
        "a pending run takes no progress"
    );
    assert!(
        !store
            .update_run_progress(&unique("no-such-run"), &counters(1))
            .await
            .unwrap(),
        "an unknown run takes no progress"
    );
}

async fn finish_records_the_end(store: &dyn RunStore) {
    let scope = SyncScope::hosts(unique("conf-run-finish"), Vendor::Vsphere, "vc.example");
    let run = sample_run(&scope, at(0))
        .with_state(RunState::Running)
        .with_started_at(Some(at(0)));
    store.insert_run(&run).await.unwrap();
    let mut details: Vec<SyncDetail> = (0..MAX_RUN_FAILED_DETAILS + 50)
        .map(failed_detail)
        .collect();
    details.insert(1, SyncDetail::new("i-ok", "fine", &UpsertOutcome::Created));
    let mut ended = run
        .clone()
        .with_state(RunState::Partial)
        .with_counters(counters(7))
        .with_error(Some(vendor_report()))
        .with_finished_at(Some(at(30)));
    // Given whole, as a caller may: the store keeps the failed ones, up to the cap.
    ended.failed_details = details;
    store.finish_run(&ended).await.expect("finish_run");
    let got = store.get_run(&run.id).await.unwrap().unwrap();
    assert_eq!(got.state, RunState::Partial);
    assert_eq!(got.counters, counters(7));
    assert_eq!(got.error, Some(vendor_report()));
    assert_eq!(got.finished_at, Some(at(30)));
    assert_eq!(got.started_at, Some(at(0)), "finish keeps the start");
    assert_eq!(
        got.failed_details,
        (0..MAX_RUN_FAILED_DETAILS)
            .map(failed_detail)
            .collect::<Vec<_>>(),
        "the first {MAX_RUN_FAILED_DETAILS} failed details are kept, no success"
    );
    assert!(
        !store
            .update_run_progress(&run.id, &counters(1))
            .await
            .unwrap(),
        "a finished run takes no progress"
    );

    // A live process's end wins over an interrupted mark.
    let marked = sample_run(&scope, at(40)).with_state(RunState::Running);
    store.insert_run(&marked).await.unwrap();
    let report = ErrorReport::new(ErrorKind::Unavailable, "interrupted");
    assert!(store
        .mark_run_interrupted(&marked.id, &report, at(41))
        .await
        .unwrap());
    let done = marked
        .clone()
        .with_state(RunState::Succeeded)
        .with_counters(counters(1))
        .with_finished_at(Some(at(42)));
    store.finish_run(&done).await.unwrap();
    let got = store.get_run(&marked.id).await.unwrap().unwrap();
    assert_eq!(
        (got.state, got.error, got.finished_at),
        (RunState::Succeeded, None, Some(at(42))),
        "the end overwrites the mark"
    );

    let unknown = sample_run(&scope, at(50)).with_state(RunState::Failed);
    let err = store
        .finish_run(&unknown)
        .await
        .expect_err("finishing an unknown run");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

async fn interrupted_only_while_running(store: &dyn RunStore) {
    let scope = SyncScope::hosts(unique("conf-run-int"), Vendor::Tencent, "ap-guangzhou");
    let report = ErrorReport::new(ErrorKind::Unavailable, "the process stopped");
    let running = sample_run(&scope, at(0))
        .with_state(RunState::Running)
        .with_counters(counters(4));
    store.insert_run(&running).await.unwrap();
    assert!(
        store
            .mark_run_interrupted(&running.id, &report, at(9))
            .await
            .expect("mark_run_interrupted"),
        "a running run is marked"
    );
    let got = store.get_run(&running.id).await.unwrap().unwrap();
    assert_eq!(got.state, RunState::Interrupted);
    assert_eq!(got.error, Some(report.clone()));
    assert_eq!(got.finished_at, Some(at(9)));
    assert_eq!(got.counters, counters(4), "the counters are kept");
    assert!(
        !store
            .mark_run_interrupted(&running.id, &report, at(10))
            .await
            .unwrap(),
        "marked once"
    );
    let finished = sample_run(&scope, at(1))
        .with_state(RunState::Succeeded)
        .with_finished_at(Some(at(2)));
    store.insert_run(&finished).await.unwrap();
    assert!(
        !store
            .mark_run_interrupted(&finished.id, &report, at(10))
            .await
            .unwrap(),
        "a finished run is not marked"
    );
    assert_eq!(
        store.get_run(&finished.id).await.unwrap().unwrap().state,
        RunState::Succeeded
    );
    assert!(!store
        .mark_run_interrupted(&unique("no-such-run"), &report, at(10))
        .await
        .unwrap());
}

async fn runs_filter_order_and_page(store: &dyn RunStore) {
    let secret = unique("conf-run-list");
    let east = SyncScope::hosts(secret.clone(), Vendor::Aliyun, "cn-hangzhou");
    let west = SyncScope::hosts(secret.clone(), Vendor::Aliyun, "cn-chengdu");
    let other = SyncScope::hosts(unique("conf-run-list-other"), Vendor::Aliyun, "cn-hangzhou");
    // Seven runs of the secret, two of them at the same time (ordered by id then).
    let mut runs = Vec::new();
    for (i, created) in [0, 10, 20, 20, 30, 40, 50].into_iter().enumerate() {
        let scope = if i % 3 == 0 { &west } else { &east };
        let state = if i == 6 {
            RunState::Running
        } else {
            RunState::Succeeded
        };
        // The first two belong to one whole-account run.
        let parent = (i < 2).then(|| format!("{secret}-parent"));
        let run = sample_run(scope, at(created))
            .with_state(state)
            .with_parent_id(parent);
        store.insert_run(&run).await.unwrap();
        runs.push(run);
    }
    store
        .insert_run(&sample_run(&other, at(60)).with_state(RunState::Running))
        .await
        .unwrap();

    let mut expected: Vec<&SyncRun> = runs.iter().collect();
    expected.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    let expected_ids: Vec<&str> = expected.iter().map(|r| r.id.as_str()).collect();
    let base = RunQuery::default().with_secret_id(secret.clone());
    let all = store.list_runs(&base).await.expect("list_runs");
    assert_eq!(all.total, 7, "every run of the secret, no other secret's");
    let ids: Vec<&str> = all.items.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids, expected_ids,
        "most recent first, then by id, descending"
    );
    assert_eq!(all.items[0], runs[6], "listed runs read back whole");

    let total = |q: RunQuery| async move { store.list_runs(&q).await.expect("list_runs").total };
    assert_eq!(
        total(base.clone().with_state(RunState::Running)).await,
        1,
        "state filter"
    );
    assert_eq!(
        total(base.clone().with_region("cn-chengdu")).await,
        3,
        "region filter"
    );
    assert_eq!(
        total(RunQuery::default().with_parent_id(format!("{secret}-parent"))).await,
        2,
        "parent filter"
    );
    assert_eq!(
        total(
            base.clone()
                .with_region("cn-hangzhou")
                .with_state(RunState::Succeeded)
        )
        .await,
        4,
        "filters combine"
    );
    assert_eq!(
        total(RunQuery::default().with_secret_id(unique("conf-run-none"))).await,
        0,
        "secret filter"
    );
    assert_eq!(
        total(base.clone().with_region("' OR '1'='1")).await,
        0,
        "filters are data, not syntax"
    );

    let mut paged = Vec::new();
    for (page, want) in [(1, 3), (2, 3), (3, 1), (4, 0)] {
        let list = store
            .list_runs(&base.clone().with_page_size(3).with_page_number(page))
            .await
            .unwrap();
        assert_eq!(list.total, 7, "total does not depend on the page");
        assert_eq!(list.items.len(), want, "page {page} size");
        paged.extend(list.items.into_iter().map(|r| r.id));
    }
    assert_eq!(paged, expected_ids, "pages follow the order, no run twice");

    for bad in [
        base.clone().with_page_size(0),
        base.clone().with_page_size(crate::store::MAX_PAGE_SIZE + 1),
        base.clone().with_page_number(0),
    ] {
        let err = store.list_runs(&bad).await.expect_err("invalid paging");
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    }
}

async fn prune_removes_only_old_finished_runs(store: &dyn RunStore) {
    let era = Utc.with_ymd_and_hms(1900, 1, 1, 0, 0, 0).unwrap();
    let secs = |s: i64| era + Duration::seconds(s);
    let scope = SyncScope::hosts(unique("conf-run-prune"), Vendor::Huawei, "cn-south-1");
    let mut old = Vec::new();
    for state in [
        RunState::Succeeded,
        RunState::Partial,
        RunState::Failed,
        RunState::Interrupted,
    ] {
        let run = sample_run(&scope, secs(0))
            .with_state(state)
            .with_finished_at(Some(secs(5)));
        store.insert_run(&run).await.unwrap();
        old.push(run);
    }
    let recent = sample_run(&scope, secs(0))
        .with_state(RunState::Succeeded)
        .with_finished_at(Some(secs(20)));
    let running = sample_run(&scope, secs(0)).with_state(RunState::Running);
    let pending = sample_run(&scope, secs(0));
    for run in [&recent, &running, &pending] {
        store.insert_run(run).await.unwrap();
    }
    let pruned = store.prune_runs(secs(10)).await.expect("prune_runs");
    assert_eq!(pruned, 4, "the runs that ended before the time");
    for run in &old {
        assert!(
            store.get_run(&run.id).await.unwrap().is_none(),
            "a {} run that ended before the time is pruned",
            run.state
        );
    }
    for run in [&recent, &running, &pending] {
        assert!(
            store.get_run(&run.id).await.unwrap().is_some(),
            "a {} run is kept",
            run.state
        );
    }
    assert_eq!(store.prune_runs(secs(10)).await.unwrap(), 0, "idempotent");
}

/// What a provider under test is expected to list.
#[derive(Debug, Clone, Default)]
pub struct ProviderExpectation {
    /// The number of hosts, when the test knows it.
    pub hosts: Option<u64>,
    /// A bound on the number of pages, so a provider that never ends fails the suite
    /// instead of hanging it.
    pub max_pages: u64,
    /// Well-formed ids the vendor does not have: a by-id [`HostProvider::lookup`] must
    /// not find them (ids of another format may be refused by the vendor).
    pub absent_ids: Vec<String>,
}

/// Runs the [`HostProvider`] contract against a provider that lists successfully: the
/// stream ends, no instance id appears twice, every host belongs to the provider's vendor
/// and region, totals reported by pages agree with each other and with the hosts listed,
/// and a second listing gives the same hosts. A provider with a by-id
/// [`lookup`](HostProvider::lookup) finds up to 250 of the listed hosts (spread over the
/// listing, so batches are crossed) and none of the expectation's `absent_ids`, and looks
/// up nothing for no ids. Returns the number of hosts listed.
pub async fn host_provider_conformance(
    provider: Arc<dyn HostProvider>,
    expect: ProviderExpectation,
) -> u64 {
    let max_pages = if expect.max_pages == 0 {
        100_000
    } else {
        expect.max_pages
    };
    let first = drain(&*provider, max_pages).await;
    let second = drain(&*provider, max_pages).await;
    assert_eq!(first, second, "listing twice gives the same hosts");
    let count = first.len() as u64;
    if let Some(n) = expect.hosts {
        assert_eq!(count, n, "number of hosts listed");
    }
    if provider.lookup(Vec::new()).is_some() {
        lookup_finds_listed_hosts(&*provider, &first, &expect.absent_ids).await;
    }
    count
}

async fn lookup_finds_listed_hosts(
    provider: &dyn HostProvider,
    listed: &[String],
    absent: &[String],
) {
    let none: Vec<_> = provider
        .lookup(Vec::new())
        .expect("a provider with lookup has it for no ids too")
        .collect()
        .await;
    assert!(
        none.iter()
            .all(|p| p.as_ref().is_ok_and(|p| p.hosts.is_empty())),
        "a lookup of no ids finds nothing"
    );
    let step = (listed.len() / 250).max(1);
    let mut wanted: Vec<String> = listed.iter().step_by(step).take(250).cloned().collect();
    let mut ask = wanted.clone();
    ask.extend(absent.iter().cloned());
    // At most one page per id asked (a batch is at least one id).
    let max_pages = ask.len() as u64;
    let mut stream = provider.lookup(ask).expect("lookup");
    let mut found = Vec::new();
    let mut pages = 0u64;
    while let Some(page) = stream.next().await {
        pages += 1;
        assert!(
            pages <= max_pages,
            "the lookup did not end within {max_pages} pages (one per id)"
        );
        let page = page.unwrap_or_else(|e| panic!("lookup page {pages} failed: {e}"));
        for h in page.hosts {
            assert_eq!(h.vendor, provider.vendor(), "looked-up host vendor");
            assert_eq!(h.region, provider.region(), "looked-up host region");
            found.push(h.instance_id);
        }
    }
    found.sort();
    wanted.sort();
    assert_eq!(
        found, wanted,
        "a lookup finds exactly the listed hosts asked for"
    );
}

async fn drain(provider: &dyn HostProvider, max_pages: u64) -> Vec<String> {
    let mut stream = provider.pages();
    let mut ids = Vec::new();
    let mut seen = HashSet::new();
    let mut reported = None;
    let mut pages = 0u64;
    while let Some(page) = stream.next().await {
        pages += 1;
        assert!(
            pages <= max_pages,
            "the stream did not end within {max_pages} pages"
        );
        let page = page.unwrap_or_else(|e| panic!("page {pages} failed: {e}"));
        if let Some(t) = page.total {
            if let Some(prev) = reported {
                assert_eq!(prev, t, "pages report different totals");
            }
            reported = Some(t);
        }
        for h in page.hosts {
            assert_eq!(h.vendor, provider.vendor(), "host vendor");
            assert_eq!(h.region, provider.region(), "host region");
            assert!(!h.instance_id.is_empty(), "empty instance id");
            assert!(
                seen.insert(h.instance_id.clone()),
                "instance id {} listed twice",
                h.instance_id
            );
            ids.push(h.instance_id);
        }
    }
    if let Some(t) = reported {
        assert_eq!(t, ids.len() as u64, "reported total equals hosts listed");
    }
    ids
}

/// Checks that a provider set up to fail yields at least one `Err` and then ends: no
/// page follows an error. Returns the pages that succeeded before it.
pub async fn host_provider_error_conformance(provider: Arc<dyn HostProvider>) -> u64 {
    let mut stream = provider.pages();
    let mut ok_pages = 0;
    loop {
        match stream.next().await {
            Some(Ok(_)) => ok_pages += 1,
            Some(Err(_)) => break,
            None => panic!("the provider was expected to fail, but its stream ended cleanly"),
        }
    }
    assert!(
        stream.next().await.is_none(),
        "the stream ends after an error"
    );
    ok_pages
}
