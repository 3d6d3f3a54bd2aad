//! The store conformance suite against the in-memory store.

use std::sync::Arc;

use cmdb_core::{testing, MemoryHostStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_passes_the_store_conformance_suite() {
    testing::host_store_conformance(Arc::new(MemoryHostStore::new())).await;
}

#[tokio::test]
async fn memory_store_is_shareable_across_suite_runs() {
    let store = Arc::new(MemoryHostStore::new());
    testing::host_store_conformance(store.clone()).await;
    testing::host_store_conformance(store.clone()).await;
    assert!(!store.is_empty());
}
