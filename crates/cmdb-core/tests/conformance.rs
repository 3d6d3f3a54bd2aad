//! The store conformance suite against the in-memory store, and the store's types built
//! from outside the crate.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use cmdb_core::{
    testing, Host, HostList, HostQuery, HostSort, HostStore, MemoryHostStore, MissingHost,
    ResourceType, ScopeStats, StoredHost, SyncScope, UpsertOutcome, Vendor,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_passes_the_store_conformance_suite() {
    testing::host_store_conformance(Arc::new(MemoryHostStore::new())).await;
}

#[tokio::test]
async fn memory_store_passes_the_run_store_conformance_suite_twice() {
    let store = Arc::new(MemoryHostStore::new());
    testing::run_store_conformance(store.clone()).await;
    testing::run_store_conformance(store).await;
}

#[tokio::test]
async fn memory_store_is_shareable_across_suite_runs() {
    let store = Arc::new(MemoryHostStore::new());
    testing::host_store_conformance(store.clone()).await;
    testing::host_store_conformance(store.clone()).await;
    assert!(!store.is_empty());
}

/// A store crate outside cmdb-core builds what its trait methods return with the
/// constructors, and gets what the in-memory store returns.
#[tokio::test]
async fn a_store_outside_the_crate_can_build_what_it_returns() {
    let store = MemoryHostStore::new();
    let scope = SyncScope::new("s1", Vendor::Huawei, "cn-north-4", ResourceType::Host);
    assert_eq!(scope, SyncScope::hosts("s1", Vendor::Huawei, "cn-north-4"));
    let mut host = Host::new(Vendor::Huawei, "ecs-1", "cn-north-4");
    host.name = "web-1".into();
    let seen: DateTime<Utc> = "2030-01-02T03:04:05Z".parse().unwrap();
    let out = store.upsert(&scope, &[host.clone()], seen).await.unwrap();
    assert_eq!(out, vec![UpsertOutcome::Created]);

    host.secret_id = "s1".into();
    let hash = host.content_hash();
    let built = StoredHost::new(host, hash, seen, seen).with_released_at(None);
    let got = store.get(Vendor::Huawei, "ecs-1").await.unwrap();
    assert_eq!(got.as_ref(), Some(&built));
    let query = HostQuery::default()
        .with_vendor(Vendor::Huawei)
        .with_region("cn-north-4")
        .with_secret_id("s1")
        .with_keywords("web")
        .with_released(false)
        .with_sort(HostSort::Name)
        .with_page_size(10)
        .with_page_number(1);
    assert_eq!(
        store.query(&query).await.unwrap(),
        HostList::new(1, vec![built])
    );
    let later = seen + chrono::Duration::seconds(1);
    assert_eq!(
        store.scope_stats(&scope, later).await.unwrap(),
        ScopeStats::new(1, 1)
    );
    assert_eq!(
        store.missing(&scope, later, None, 10).await.unwrap(),
        vec![MissingHost::new("ecs-1", None)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_passes_the_database_store_conformance_suite_twice() {
    let store = Arc::new(MemoryHostStore::new());
    testing::database_store_conformance(store.clone()).await;
    testing::database_store_conformance(store.clone()).await;
    assert!(store.database_count() > 0);
    assert!(store.is_empty(), "database instances are not hosts");
}
