//! The secret store conformance suite against the in-memory store.

use std::sync::Arc;

use cmdb_secret::{testing, Cipher, MemorySecretStore, SecretStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_passes_the_conformance_suite() {
    let store: Arc<dyn SecretStore> = Arc::new(MemorySecretStore::new());
    let cipher = Cipher::new(Cipher::generate_key());
    testing::secret_store_conformance(Arc::clone(&store), &cipher).await;
    // Twice on the same store: runs do not collide.
    testing::secret_store_conformance(Arc::clone(&store), &cipher).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_suites_share_one_store() {
    let store: Arc<dyn SecretStore> = Arc::new(MemorySecretStore::new());
    let cipher = Arc::new(Cipher::new(Cipher::generate_key()));
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let (store, cipher) = (Arc::clone(&store), Arc::clone(&cipher));
            tokio::spawn(async move { testing::secret_store_conformance(store, &cipher).await })
        })
        .collect();
    for t in tasks {
        t.await.expect("suite");
    }
}
