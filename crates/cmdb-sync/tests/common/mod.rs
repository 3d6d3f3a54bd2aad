//! Set-up shared by the end-to-end tests of the built-in providers: one stored secret
//! pointing at a simulator, a memory host store, and a `Syncer` with the built-in
//! providers.

#![allow(dead_code)]

use std::sync::Arc;

use cmdb_core::{HostQuery, HostStore, MemoryHostStore, Vendor};
use cmdb_secret::{Cipher, MemorySecretStore, NewSecret, Secret, SecretStore};
use cmdb_sync::{ProviderRegistry, Syncer};

/// A syncer over a memory store, and the one secret it knows.
pub(crate) struct Synced {
    pub(crate) hosts: Arc<MemoryHostStore>,
    pub(crate) secret: Secret,
    pub(crate) syncer: Syncer,
}

/// Stores a secret of `vendor` for `address` (the simulator's URL) allowing `region`
/// (every region when empty), and builds a syncer with the built-in providers.
pub(crate) async fn builtin_syncer(
    vendor: Vendor,
    api_key: &str,
    api_secret: &str,
    region: &str,
    address: &str,
) -> Synced {
    let cipher = Arc::new(Cipher::new(Cipher::generate_key()));
    let secrets = Arc::new(MemorySecretStore::new());
    let allowed = if region.is_empty() { "*" } else { region };
    let secret = NewSecret {
        vendor,
        description: format!("simulated {vendor} account"),
        api_key: api_key.to_owned(),
        api_secret: api_secret.to_owned().into(),
        allowed_regions: vec![allowed.to_owned()],
        request_rate: Some(1000),
        address: Some(address.to_owned()),
    }
    .seal(&cipher)
    .unwrap();
    secrets.create(&secret).await.unwrap();
    let hosts = Arc::new(MemoryHostStore::new());
    let syncer = Syncer::new(
        secrets,
        Arc::clone(&hosts) as Arc<dyn HostStore>,
        cipher,
        ProviderRegistry::with_builtin_providers(),
    );
    Synced {
        hosts,
        secret,
        syncer,
    }
}

impl Synced {
    /// Hosts in the store that are released (`true`) or active (`false`).
    pub(crate) async fn count(&self, released: bool) -> u64 {
        let q = HostQuery {
            released: Some(released),
            ..HostQuery::default()
        };
        self.hosts.query(&q).await.unwrap().total
    }
}
