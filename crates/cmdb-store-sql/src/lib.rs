//! SQL stores for cmdb: SQLite (embedded, the default), PostgreSQL and MySQL/MariaDB.
//!
//! [`SqlStore`] implements [`cmdb_core::HostStore`], [`cmdb_core::DatabaseStore`],
//! [`cmdb_core::RunStore`] and [`cmdb_secret::SecretStore`] on [sqlx](https://docs.rs/sqlx) (tokio, rustls). The schema
//! is created and upgraded on connect by migrations embedded with `sqlx::migrate!`
//! ([`SCHEMA_VERSION`]); a database of the earlier migration runner at its version 4 is
//! adopted and converted in place.
//!
//! The tables are meant to be read by people and tools too: times are `TIMESTAMPTZ` on
//! PostgreSQL, `DATETIME(6)` in UTC on MySQL and ISO 8601 text in UTC on SQLite
//! (`2026-12-04T05:06:07.123456Z`), kept to the microsecond; tags, addresses and other
//! lists are `JSONB`, `JSON` and text holding JSON. See the README's "Querying the
//! tables".
//!
//! - Hosts are keyed by `(vendor, instance_id)`; an upserted page is one transaction of
//!   set-based statements and reports per host whether it was created, updated, unchanged
//!   or failed. A host that cannot be stored fails alone.
//! - Host queries filter by vendor, region, secret, status, release state and keyword
//!   (name ignoring case, instance id, any IP address), sort and page, with the total.
//! - Managed database instances live in `cmdb_databases`, keyed and written, released,
//!   filtered and paged as hosts are (the keyword looks in the endpoints' hosts instead
//!   of IP addresses), by the same statements.
//! - Secrets keep only the ciphertext of the API secret; an API key is unique per vendor.
//! - Sync runs are rows of `cmdb_runs`, listed most recent first; the failed details and
//!   the error they keep are JSON.
//! - [`HostStore::try_lock_scope`](cmdb_core::HostStore::try_lock_scope) locks a scope for
//!   every process sharing the database (advisory lock, `GET_LOCK`, or a lock row renewed
//!   while the lease lives); the lease tells whether it still holds the lock.
//! - Writers of the same hosts meeting in the database (deadlock, lock wait timeout, a key
//!   created meanwhile) run their transaction again instead of failing hosts.
//!
//! Features: `sqlite` (default), `postgres`, `mysql`.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use cmdb_core::{Host, HostQuery, HostStore, SyncScope, UpsertOutcome, Vendor};
//! use cmdb_store_sql::SqlStore;
//!
//! let store = SqlStore::connect("sqlite::memory:").await?;
//! let scope = SyncScope::hosts("secret-1", Vendor::Aliyun, "cn-hangzhou");
//! let mut host = Host::new(Vendor::Aliyun, "i-bp1abc", "cn-hangzhou");
//! host.private_ips = vec!["10.0.0.7".into()];
//! let out = store.upsert(&scope, &[host], chrono::Utc::now()).await?;
//! assert_eq!(out, vec![UpsertOutcome::Created]);
//!
//! let found = store
//!     .query(&HostQuery::default().with_keywords("10.0.0"))
//!     .await?;
//! assert_eq!(found.total, 1);
//! # Ok::<_, cmdb_core::Error>(())
//! # }).unwrap();
//! ```

mod databases;
mod hosts;
mod lock;
mod migrate;
mod records;
mod runs;
mod secrets;
mod sql;
mod store;

pub use migrate::{SchemaError, SCHEMA_VERSION};
pub use sql::Backend;
pub use store::{redact_url, SqlStore, SqlStoreBuilder};
