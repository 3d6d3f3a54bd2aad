//! Core model of cmdb: the normalized [`Host`], the [`HostProvider`] and [`HostStore`]
//! traits every vendor and every store implements, the same pair for managed database
//! instances ([`Database`], [`DatabaseProvider`], [`DatabaseStore`]), the [`RunStore`]
//! trait that keeps sync runs ([`SyncRun`]), one [`Error`] type, and a complete in-memory
//! store, [`MemoryHostStore`] (hosts, database instances and runs).
//!
//! ```
//! use cmdb_core::{Host, HostStatus, Vendor};
//!
//! let mut host = Host::new(Vendor::Aliyun, "i-bp1abc", "cn-hangzhou");
//! host.name = "web-1".into();
//! host.status = HostStatus::Running;
//! host.private_ips = vec!["10.0.0.2".into()];
//! // The content hash ignores list order and sync bookkeeping.
//! let mut same = host.clone();
//! same.secret_id = "another-secret".into();
//! assert_eq!(host.content_hash(), same.content_hash());
//! ```

mod error;
mod hash;
mod local_locks;
mod memory;
// `named_enum!` is defined there and used by `run`.
#[macro_use]
mod model;
mod database;
mod database_store;
mod provider;
mod run;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use database::{
    Database, DatabaseEndpoint, DatabaseEngine, DatabasePage, DatabaseStatus, EndpointKind,
    StoredDatabase,
};
pub use database_store::{DatabaseList, DatabaseQuery, DatabaseSort, DatabaseStore};
pub use error::{
    Error, ErrorKind, ErrorReport, Result, VendorError, MAX_VENDOR_FIELD, MAX_VENDOR_MESSAGE,
};
pub use local_locks::LocalLocks;
pub use memory::MemoryHostStore;
pub use model::{
    FailedRecord, Host, HostPage, HostStatus, OsType, ParseEnumError, PayMode, ResourceType,
    StoredHost, SyncScope, UpsertOutcome, Vendor,
};
pub use provider::{DatabaseProvider, HostProvider};
pub use run::{
    RunCounters, RunList, RunQuery, RunState, RunStore, RunTrigger, SyncDetail, SyncRun,
    MAX_RUN_FAILED_DETAILS,
};
pub use store::{
    HostList, HostQuery, HostSort, HostStore, LeaseGuard, MissingHost, ScopeLease, ScopeStats,
    MAX_PAGE_SIZE,
};
