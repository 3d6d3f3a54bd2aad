//! The cmdb sync engine.
//!
//! A [`Syncer`] takes a [`SyncRequest`] (an id, a region) and credentials from one of three
//! places:
//! - a stored secret, looked up by the request's id and decrypted
//!   ([`Syncer::new`], [`Syncer::sync`]), as the HTTP API does;
//! - an [`Account`] in hand ([`Syncer::for_host_store`], [`Syncer::sync_account`]);
//! - a provider built by hand ([`Syncer::sync_provider`]).
//!
//! A request for region `"*"` syncs the whole account: [`Syncer::sync_all`] (a stored
//! secret: its allowed regions, or every region the vendor lists when it allows `"*"`)
//! and [`Syncer::sync_account_all`] (credentials in hand). Each region is its own run,
//! several at once within the secret's one request rate, and the answer adds them up
//! with one [`RegionSummary`] per region.
//!
//! It builds the vendor's [`HostProvider`](cmdb_core::HostProvider) through the
//! [`ProviderRegistry`], drains its pages into the [`HostStore`](cmdb_core::HostStore)
//! (storing page k while page k+1 is fetched), and, after a complete listing only,
//! releases the hosts the vendor confirms gone, behind a guard against mass release.
//! [`Syncer::prepare`] (and `prepare_account`, `prepare_provider`) checks everything and
//! takes the scope's locks first; the [`PreparedSync`] it answers can be spawned.
//!
//! Each run is a `sync` tracing span and records the metrics listed in [`telemetry`]
//! (runs, durations, hosts, the last complete run of each scope) through the `metrics`
//! facade, as its vendor calls record [`cmdb_http::telemetry`]'s.
//!
//! ## Features
#![doc = document_features::document_features!()]
//!
//! ## Example
//!
//! A stored secret, synced by id:
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use cmdb_core::{HostProvider, MemoryHostStore, Vendor};
//! use cmdb_secret::{Cipher, MemorySecretStore, NewSecret, SecretStore};
//! use cmdb_sync::{ProviderRegistry, SyncRequest, Syncer};
//! use cmdb_testkit::FakeProvider;
//!
//! let cipher = Arc::new(Cipher::new(Cipher::generate_key()));
//! let secrets = Arc::new(MemorySecretStore::new());
//! let secret = NewSecret::new(Vendor::Aliyun, "LTAI5tExampleKey", "example-secret")
//!     .with_description("production account")
//!     .with_allowed_regions(["cn-hangzhou"])
//!     .seal(&cipher)
//!     .unwrap();
//! secrets.create(&secret).await.unwrap();
//!
//! let mut registry = ProviderRegistry::new();
//! registry.register(Vendor::Aliyun, |ctx: cmdb_sync::ProviderContext| {
//!     let p: Arc<dyn HostProvider> = Arc::new(FakeProvider::new(Vendor::Aliyun, ctx.region, 250, 100));
//!     Ok(p)
//! });
//! let syncer = Syncer::new(secrets, Arc::new(MemoryHostStore::new()), cipher, registry);
//! let response = syncer.sync(SyncRequest::new(&secret.id, "cn-hangzhou")).await.unwrap();
//! assert_eq!((response.total_succeed, response.created, response.pages), (250, 250, 3));
//! assert!(response.complete);
//! # });
//! ```

mod account;
mod builtin;
mod progress;
mod registry;
mod request;
mod resource;
mod response;
mod syncer;
pub mod telemetry;

pub use account::Account;
pub use progress::{SyncProgress, SyncState};
pub use registry::{DatabaseFactory, ProviderContext, ProviderFactory, ProviderRegistry};
pub use request::{DetailsMode, SyncRequest, ALL_REGIONS, MAX_SECRET_ID_LEN};
pub use response::{ErrorReport, RegionSummary, SyncDetail, SyncResponse};
pub use syncer::{
    HeldScope, PreparedSync, RegionObserver, SyncOptions, SyncTrigger, Syncer, DEFAULT_MAX_DETAILS,
    DEFAULT_REGIONS_IN_FLIGHT,
};
