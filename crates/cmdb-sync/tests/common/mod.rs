//! Set-up shared by the end-to-end tests of the built-in providers: one stored secret
//! pointing at a simulator, a memory host store, and a `Syncer` with the built-in
//! providers.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::sync::Arc;

use cmdb_core::{HostQuery, HostStore, MemoryHostStore, Vendor};
use cmdb_secret::{Cipher, MemorySecretStore, NewSecret, Secret, SecretStore};
use cmdb_sync::{ProviderRegistry, SyncOptions, SyncRequest, SyncResponse, Syncer};

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
    let allowed = if region.is_empty() { "*" } else { region };
    builtin_syncer_for(
        NewSecret::new(vendor, api_key, api_secret)
            .with_description(format!("simulated {vendor} account"))
            .with_allowed_regions([allowed])
            .with_request_rate(1000)
            .with_address(address)
            // The simulated vCenter listens on plain http on 127.0.0.1.
            .with_allow_insecure_http(vendor == Vendor::Vsphere),
    )
    .await
}

/// Stores `new` and builds a syncer with the built-in providers.
pub(crate) async fn builtin_syncer_for(new: NewSecret) -> Synced {
    let cipher = Arc::new(Cipher::new(Cipher::generate_key()));
    let secrets = Arc::new(MemorySecretStore::new());
    let secret = new.seal(&cipher).unwrap();
    secrets.create(&secret).await.unwrap();
    let hosts = Arc::new(MemoryHostStore::new());
    let syncer = Syncer::new(
        secrets,
        Arc::clone(&hosts) as Arc<dyn HostStore>,
        cipher,
        ProviderRegistry::with_builtin_providers(),
    )
    // The simulators listen on 127.0.0.1.
    .with_options(SyncOptions::default().with_private_addresses(true));
    Synced {
        hosts,
        secret,
        syncer,
    }
}

impl Synced {
    /// Hosts in the store that are released (`true`) or active (`false`).
    pub(crate) async fn count(&self, released: bool) -> u64 {
        let q = HostQuery::default().with_released(released);
        self.hosts.query(&q).await.unwrap().total
    }
}

/// The active and the released instance ids of the store.
pub(crate) async fn stored_ids(hosts: &MemoryHostStore) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut active = BTreeSet::new();
    let mut released = BTreeSet::new();
    for page_number in 1.. {
        let list = hosts
            .query(
                &HostQuery::default()
                    .with_page_size(1000)
                    .with_page_number(page_number),
            )
            .await
            .unwrap();
        if list.items.is_empty() {
            break;
        }
        for h in list.items {
            let set = if h.released_at.is_some() {
                &mut released
            } else {
                &mut active
            };
            set.insert(h.host.instance_id);
        }
    }
    (active, released)
}

/// After a run whose listing shifted: no host of `cloud` (the vendor's ids now) is
/// released, and the lookup found live hosts the shifted listing skipped.
pub(crate) async fn assert_no_live_host_released(
    hosts: &MemoryHostStore,
    cloud: &BTreeSet<String>,
    run: &SyncResponse,
) {
    let (_, released) = stored_ids(hosts).await;
    let wrongly_released: Vec<_> = released.intersection(cloud).collect();
    assert!(
        wrongly_released.is_empty(),
        "live hosts released: {wrongly_released:?} ({run:?})"
    );
    assert!(
        run.release_found_alive > 0,
        "the shifted listing skipped live hosts that the lookup found: {run:?}"
    );
}

/// Two quiet syncs of `request`, then the store equals `cloud` and exactly `deleted` is
/// released.
pub(crate) async fn assert_settles(
    syncer: &Syncer,
    request: impl Fn() -> SyncRequest,
    hosts: &MemoryHostStore,
    cloud: &BTreeSet<String>,
    deleted: &[String],
) {
    for _ in 0..2 {
        let r = syncer.sync(request()).await.unwrap();
        assert!(r.complete && r.error.is_none(), "{r:?}");
    }
    let (active, released) = stored_ids(hosts).await;
    assert_eq!(
        &active, cloud,
        "two quiet syncs later the store equals the cloud"
    );
    assert_eq!(
        released,
        deleted.iter().cloned().collect::<BTreeSet<_>>(),
        "every deleted host is released, and no other"
    );
}
