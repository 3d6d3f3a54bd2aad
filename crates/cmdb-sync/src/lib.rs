//! The cmdb sync engine.
//!
//! A [`Syncer`] takes a [`SyncRequest`] (secret id, region), looks up and decrypts the
//! secret, builds the vendor's [`HostProvider`](cmdb_core::HostProvider) through the
//! [`ProviderRegistry`], drains its pages into the [`HostStore`](cmdb_core::HostStore)
//! (storing page k while page k+1 is fetched), and, after a complete listing only,
//! releases the hosts the vendor no longer lists, behind a guard against mass release.
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
mod response;
mod syncer;

pub use account::Account;
pub use progress::{SyncProgress, SyncState};
pub use registry::{ProviderContext, ProviderFactory, ProviderRegistry};
pub use request::{DetailsMode, SyncRequest, MAX_SECRET_ID_LEN};
pub use response::{ErrorReport, SyncDetail, SyncResponse};
pub use syncer::{PreparedSync, SyncOptions, Syncer, DEFAULT_MAX_DETAILS};
