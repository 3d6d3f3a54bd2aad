//! The cmdb-core (hosts, database instances, runs) and cmdb-secret conformance suites on
//! every backend.

mod common;

use std::sync::Arc;

use cmdb_secret::Cipher;
use cmdb_store_sql::SqlStore;

async fn run(store: SqlStore) {
    cmdb_core::testing::host_store_conformance(Arc::new(store.clone())).await;
    cmdb_core::testing::database_store_conformance(Arc::new(store.clone())).await;
    cmdb_core::testing::run_store_conformance(Arc::new(store.clone())).await;
    let cipher = Cipher::new(Cipher::generate_key());
    cmdb_secret::testing::secret_store_conformance(Arc::new(store), &cipher).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_sqlite_memory() {
    run(SqlStore::connect("sqlite::memory:").await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_sqlite_file() {
    run(SqlStore::connect(&common::sqlite_url("conf"))
        .await
        .unwrap())
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_postgres() {
    let Some(b) = common::postgres("conf") else {
        return;
    };
    run(b.connect().await.expect("connect to postgres")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_mysql() {
    let Some(b) = common::mysql("conf") else {
        return;
    };
    run(b.connect().await.expect("connect to mysql")).await;
}
