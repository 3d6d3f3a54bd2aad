//! cmdb host and database provider for Huawei Cloud: ECS and RDS.
//!
//! - [`HuaweiBuilder`] builds a [`HuaweiClient`] or a [`HuaweiHostProvider`] from an
//!   access key pair, a region and an optional endpoint override (used for IAM and ECS
//!   alike).
//! - Requests are signed with `SDK-HMAC-SHA256` (the API gateway's AK/SK signature), the
//!   `Host` signed being exactly the one sent.
//! - The project id is configured, or looked up in IAM (`GET /v3/projects?name=<region>`)
//!   once per endpoint, key and region.
//! - Servers are listed with ECS ListServersDetails, whose `offset` is a page number from
//!   1, and mapped to [`cmdb_core::Host`]s.
//! - The by-id lookup that confirms a server is gone before a sync releases it is
//!   ShowServer (`GET /v1/{project_id}/cloudservers/{server_id}`): only a 404 with
//!   `Ecs.0114` is taken as "gone"; any other answer fails the lookup.
//! - Throttling (`APIGW.0308`, 429) and 5xx are retried; authentication errors
//!   (`APIGW.0301`) never are, since five failures lock the key for five minutes.
//!
//! ```
//! use cmdb_core::HostProvider;
//! use cmdb_provider_huawei::HuaweiBuilder;
//! use cmdb_secret::Credentials;
//! use futures::TryStreamExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cmdb_core::Result<()> {
//! # use cmdb_testkit::huawei::{SimulatedHuawei, ACCESS_KEY, SECRET_KEY};
//! # let sim = SimulatedHuawei::start("cn-north-4", 250).await;
//! # let (access_key, secret_key) = (ACCESS_KEY, SECRET_KEY);
//! let provider = HuaweiBuilder::new()
//!     .with_credentials(Credentials::new(access_key, secret_key))
//!     .with_region("cn-north-4")
//!     // A simulator here (IAM and ECS); for the real cloud leave `with_endpoint` out.
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
//! After the official Go SDK's region tables (`services/ecs/v2/region/region.go`,
//! `services/iam/v3/region/region.go`, `core/auth/internal/iam_endpoint.go`) and IAM's
//! "Endpoints" page (<https://support.huaweicloud.com/intl/en-us/api-iam/iam_01_0004.html>):
//!
//! | API | host |
//! |---|---|
//! | ECS | `ecs.<region>.myhuaweicloud.com` |
//! | RDS | `rds.<region>.myhuaweicloud.com` |
//! | IAM (the project-id lookup) | `iam.<region>.myhuaweicloud.com` |
//! | IAM in eu-west-101 (Huawei Cloud Europe) | `iam.eu-west-101.myhuaweicloud.eu` |
//! | IAM in af-north-1, ap-southeast-5, cn-north-11, cn-south-4, cn-southwest-3 | `iam.myhuaweicloud.com` (global: the SDK knows no regional host for them) |
//!
//! [`with_endpoint`](HuaweiBuilder::with_endpoint) (a secret's `address`) replaces every
//! host; [`with_project_id`](HuaweiBuilder::with_project_id) spares the IAM call.
//!
//! ## Databases (RDS)
//!
//! [`HuaweiBuilder::build_databases`] builds a [`HuaweiDatabaseProvider`], the
//! [`DatabaseProvider`](cmdb_core::DatabaseProvider) over RDS ListInstances
//! (`GET /v3/{project_id}/instances`) on the same [`HuaweiClient`]: same signer, rate
//! limiter, retries, error classification (authentication errors never retried), STS
//! token, and the project id resolved as for servers. It pages with `offset` (records to
//! skip, from 0) and `limit` (100), one request per page, and marks a listing whose
//! `total_count` moved ([`DatabasePage::moved`](cmdb_core::DatabasePage::moved)); it
//! looks instances up one request per id (the `id` query parameter). Each instance
//! becomes a [`Database`](cmdb_core::Database): `cpu` and `mem` read from strings, `mem`
//! (GB) as MiB, `volume.size` in GB, `created` / `expiration_time` (`+0800` offsets) in
//! UTC, the status normalized as [`DatabaseStatus`](cmdb_core::DatabaseStatus) documents
//! (the raw word kept), `private_ips` / `public_ips` with `port`,
//! `charge_info.charge_mode`, `tags`, and the role and primary id in `extra`.
//!
//! ```
//! use cmdb_core::DatabaseProvider;
//! use cmdb_provider_huawei::HuaweiBuilder;
//! use cmdb_secret::Credentials;
//! use futures::TryStreamExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cmdb_core::Result<()> {
//! # use cmdb_testkit::huawei_rds::{SimulatedHuaweiRds, ACCESS_KEY, SECRET_KEY};
//! # let sim = SimulatedHuaweiRds::start("cn-north-4", 120).await;
//! # let (access_key, secret_key, project_id) = (ACCESS_KEY, SECRET_KEY, sim.project_id());
//! let provider = HuaweiBuilder::new()
//!     .with_credentials(Credentials::new(access_key, secret_key))
//!     .with_region("cn-north-4")
//!     .with_project_id(project_id)
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

pub use builder::{HuaweiBuilder, DEFAULT_CONCURRENCY, DEFAULT_PAGE_SIZE};
pub use client::{DbInstancePage, HuaweiClient, MAX_DATABASE_PAGE_SIZE};
pub use database::HuaweiDatabaseProvider;
pub use provider::HuaweiHostProvider;
