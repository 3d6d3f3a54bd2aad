//! cmdb host and database provider for Tencent Cloud: CVM and CDB (TencentDB for MySQL).
//!
//! - [`TencentBuilder`] takes the SecretId/SecretKey ([`Credentials`](cmdb_secret::Credentials)),
//!   the region, an optional endpoint override, the secret's shared rate limiter and the
//!   paging settings, and builds a [`TencentClient`] or a [`TencentHostProvider`].
//! - [`TencentClient`] signs every call with `TC3-HMAC-SHA256` (the service signed is the
//!   API's, `cvm` or `region`, never the host's) and offers
//!   [`describe_instances`](TencentClient::describe_instances) and
//!   [`describe_regions`](TencentClient::describe_regions).
//! - [`TencentHostProvider`] lists a region with `Offset`/`Limit` paging (100 a page),
//!   fetching later pages concurrently but yielding them in order.
//!
//! Tencent Cloud answers errors with HTTP 200 and `Response.Error`: they become typed
//! [`cmdb_core::Error`]s with the code, message and request id. Throttling
//! (`RequestLimitExceeded*`), `InternalError` and `ServiceUnavailable` are retried;
//! `AuthFailure.*` and `UnauthorizedOperation` never are, and say what to check.
//!
//! ```
//! use cmdb_core::HostProvider;
//! use cmdb_provider_tencent::TencentBuilder;
//! use cmdb_secret::Credentials;
//! use futures::TryStreamExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cmdb_core::Result<()> {
//! # use cmdb_testkit::tencent::{SimulatedTencent, SECRET_ID, SECRET_KEY};
//! # let sim = SimulatedTencent::start(250).await;
//! # let (secret_id, secret_key) = (SECRET_ID, SECRET_KEY);
//! let provider = TencentBuilder::new()
//!     .with_credentials(Credentials::new(secret_id, secret_key))
//!     .with_region("ap-guangzhou")
//!     // A simulator here; for the real cloud leave `with_endpoint` out.
//!     .with_endpoint(sim.uri())
//!     .build()?;
//! let (mut pages, mut count) = (provider.pages(), 0);
//! while let Some(page) = pages.try_next().await? {
//!     for host in &page.hosts {
//!         println!("{} {} {:?}", host.instance_id, host.name, host.status);
//!     }
//!     count += page.hosts.len();
//! }
//! assert_eq!(count, 250);
//! # Ok(()) }
//! ```
//!
//! ## Endpoints
//!
//! After CVM's "Request Structure" page
//! (<https://www.tencentcloud.com/document/api/213/31573>):
//!
//! | calls | host | region |
//! |---|---|---|
//! | CVM (`DescribeInstances`) | `cvm.tencentcloudapi.com` | `X-TC-Region` |
//! | CVM in a finance region (`ap-shanghai-fsi`, `ap-shenzhen-fsi`) | `cvm.<region>.tencentcloudapi.com` | `X-TC-Region` |
//! | region service (`DescribeRegions`) | `region.tencentcloudapi.com` | not sent |
//! | CDB (`DescribeDBInstances`) | `cdb.tencentcloudapi.com` (finance regions: `cdb.<region>.tencentcloudapi.com`) | `X-TC-Region` |
//!
//! [`with_endpoint`](TencentBuilder::with_endpoint) (a secret's `address`) sends every call
//! to one URL instead, still signed for its API's service.
//!
//! ## Databases (CDB)
//!
//! [`TencentBuilder::build_databases`] builds a [`TencentDatabaseProvider`], the
//! [`DatabaseProvider`](cmdb_core::DatabaseProvider) over CDB `DescribeDBInstances`
//! (version 2017-03-20, TC3 service `cdb`) on the same [`TencentClient`]: same signer,
//! rate limiter, retries, error classification and STS token. It pages with `Offset`
//! (from 0) and `Limit` (2000 by default), one request per page, and marks a listing
//! whose `TotalCount` moved ([`DatabasePage::moved`](cmdb_core::DatabasePage::moved));
//! it looks instances up with `InstanceIds` (100 a request). Each instance becomes a
//! [`Database`](cmdb_core::Database) of engine MySQL: `Memory` (MB) as MiB, `Volume` in
//! GB, `CreateTime` / `DeadlineTime` (China Standard Time, no offset) in UTC, the integer
//! `Status` normalized as [`DatabaseStatus`](cmdb_core::DatabaseStatus) documents (kept
//! as text in `raw_status`), `Vip:Vport` private and `WanDomain:WanPort` public, `PayType`,
//! `TagList`, and the role and primary id in `extra`.
//!
//! ```
//! use cmdb_core::DatabaseProvider;
//! use cmdb_provider_tencent::TencentBuilder;
//! use cmdb_secret::Credentials;
//! use futures::TryStreamExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cmdb_core::Result<()> {
//! # use cmdb_testkit::tencent_cdb::{SimulatedTencentCdb, SECRET_ID, SECRET_KEY};
//! # let sim = SimulatedTencentCdb::start("ap-guangzhou", 120).await;
//! # let (secret_id, secret_key) = (SECRET_ID, SECRET_KEY);
//! let provider = TencentBuilder::new()
//!     .with_credentials(Credentials::new(secret_id, secret_key))
//!     .with_region("ap-guangzhou")
//!     // A simulator here; for the real cloud leave `with_endpoint` out.
//!     .with_endpoint(sim.uri())
//!     .build_databases()?;
//! let (mut pages, mut count) = (provider.pages(), 0);
//! while let Some(page) = pages.try_next().await? {
//!     for db in &page.databases {
//!         println!("{} {} {} {:?}", db.instance_id, db.name, db.engine, db.status);
//!     }
//!     count += page.databases.len();
//! }
//! assert_eq!(count, 120);
//! # Ok(()) }
//! ```

#[cfg(feature = "bench")]
pub mod bench;
mod builder;
mod client;
mod database;
mod error;
mod map;
mod model;
mod provider;
mod sign;

pub use builder::{TencentBuilder, DEFAULT_CONCURRENCY};
pub use client::{
    DbInstancePage, InstancePage, TencentClient, TencentRegion, MAX_DATABASE_LOOKUP_IDS,
    MAX_DATABASE_PAGE_SIZE, MAX_LOOKUP_IDS, MAX_PAGE_SIZE,
};
pub use database::TencentDatabaseProvider;
pub use provider::TencentHostProvider;
