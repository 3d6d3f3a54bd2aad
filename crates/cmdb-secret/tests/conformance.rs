//! The secret store conformance suite against the in-memory store, and the store's types
//! built from outside the crate.

use std::sync::Arc;

use cmdb_core::Vendor;
use cmdb_secret::{
    testing, Cipher, MemorySecretStore, NewSecret, Secret, SecretList, SecretQuery, SecretStore,
};

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

/// A secret built with the constructors seals as one read from JSON does, and a store
/// crate outside cmdb-secret rebuilds the stored secret from its columns so that it still
/// decrypts.
#[tokio::test]
async fn a_store_outside_the_crate_can_build_what_it_returns() {
    let cipher = Cipher::new(Cipher::generate_key());
    let new = NewSecret::new(Vendor::Vsphere, "cmdb@vsphere.local", "not-a-real-password")
        .with_description("lab vCenter")
        .with_allowed_regions(["*"])
        .with_request_rate(42)
        .with_address("http://vcenter.example.com/sdk")
        .with_allow_insecure_http(true)
        .with_tls_ca_pem("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
        .with_tls_skip_verify(true);
    let json: NewSecret = serde_json::from_value(serde_json::json!({
        "vendor": "vsphere",
        "description": "lab vCenter",
        "api_key": "cmdb@vsphere.local",
        "api_secret": "not-a-real-password",
        "allowed_regions": ["*"],
        "request_rate": 42,
        "address": "http://vcenter.example.com/sdk",
        "allow_insecure_http": true,
        "tls_ca_pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        "tls_skip_verify": true,
    }))
    .unwrap();
    let sealed = new.seal_with_id("s-1", &cipher).unwrap();
    let mut from_json = json.seal_with_id("s-1", &cipher).unwrap();
    from_json.api_secret.clone_from(&sealed.api_secret);
    from_json.created_at = sealed.created_at;
    assert_eq!(from_json, sealed);

    let mut rebuilt = Secret::from_stored(
        sealed.id.clone(),
        sealed.vendor,
        sealed.api_key.clone(),
        sealed.api_secret.clone(),
        sealed.created_at,
    );
    rebuilt.description.clone_from(&sealed.description);
    rebuilt.allowed_regions.clone_from(&sealed.allowed_regions);
    rebuilt.request_rate = sealed.request_rate;
    rebuilt.address.clone_from(&sealed.address);
    rebuilt.allow_insecure_http = sealed.allow_insecure_http;
    rebuilt.tls_ca_pem.clone_from(&sealed.tls_ca_pem);
    rebuilt.tls_skip_verify = sealed.tls_skip_verify;
    assert_eq!(rebuilt, sealed);
    let credentials = cipher.decrypt_credentials(&rebuilt).unwrap();
    assert_eq!(credentials.api_secret(), "not-a-real-password");

    let store = MemorySecretStore::new();
    store.create(&sealed).await.unwrap();
    let query = SecretQuery::default()
        .with_keywords("lab")
        .with_page_size(10)
        .with_page_number(1);
    assert_eq!(
        store.list(&query).await.unwrap(),
        SecretList::new(1, vec![sealed.masked()])
    );
}
