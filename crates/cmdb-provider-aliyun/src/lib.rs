//! cmdb host and database provider for Alibaba Cloud: ECS (API version 2014-05-26) and
//! RDS (API version 2014-08-15).
//!
//! - [`AliyunBuilder`] builds an [`AliyunClient`] (one method per API call:
//!   [`describe_instances`](AliyunClient::describe_instances),
//!   [`describe_regions`](AliyunClient::describe_regions)) or an
//!   [`AliyunHostProvider`], the [`HostProvider`](cmdb_core::HostProvider) that lists a
//!   region page by page (`MaxResults=100`, `NextToken`).
//! - Requests are signed with `ACS3-HMAC-SHA256` by this crate's own signer, tested
//!   against the vendor's published examples.
//! - ECS error answers become typed errors: throttling and service errors are retried,
//!   authentication errors never are.
//!
//! ```
//! use cmdb_core::HostProvider;
//! use cmdb_provider_aliyun::AliyunBuilder;
//! use cmdb_secret::Credentials;
//! use futures::TryStreamExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cmdb_core::Result<()> {
//! # use cmdb_testkit::aliyun::{SimulatedAliyun, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET};
//! # let sim = SimulatedAliyun::start("cn-beijing", 250).await;
//! # let (access_key_id, access_key_secret) = (DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET);
//! let provider = AliyunBuilder::new()
//!     .with_credentials(Credentials::new(access_key_id, access_key_secret))
//!     .with_region("cn-beijing")
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

//! ## Endpoints
//!
//! After ECS's "Endpoints" page
//! (<https://www.alibabacloud.com/help/en/ecs/developer-reference/api-ecs-2014-05-26-endpoint>)
//! and the official SDKs' endpoint map:
//!
//! | region | host |
//! |---|---|
//! | any, when the key may call `DescribeRegions` | the `RegionEndpoint` it reports for the region |
//! | `cn-hangzhou` | `ecs-cn-hangzhou.aliyuncs.com` |
//! | `cn-hangzhou-finance`, `cn-north-2-gov-1` | `ecs.aliyuncs.com` (central) |
//! | every other region | `ecs.<region>.aliyuncs.com` |
//!
//! `DescribeRegions` is optional: a key without `ecs:DescribeRegions` gets the documented
//! host ([`default_endpoint_host`]). [`with_endpoint`](AliyunBuilder::with_endpoint) (a
//! secret's `address`) sends every call to one URL instead.
//!
//! RDS calls go to `rds.aliyuncs.com` for the regions the official SDKs' RDS endpoint map
//! names (the big public regions: `cn-hangzhou`, `cn-shanghai`, `cn-beijing`,
//! `cn-shenzhen`, `cn-qingdao`, `cn-hongkong`, `ap-southeast-1`, `us-west-1`,
//! `us-east-1`, ...), to `rds.<region>.aliyuncs.com` elsewhere ([`rds_endpoint_host`]),
//! or to the override.
//!
//! ## Databases (RDS)
//!
//! [`AliyunBuilder::build_databases`] builds an [`AliyunDatabaseProvider`], the
//! [`DatabaseProvider`](cmdb_core::DatabaseProvider) over RDS `DescribeDBInstances`
//! (version 2014-08-15) on the same [`AliyunClient`]: same signer, rate limiter, retries
//! and STS token. It pages with `MaxResults` (100) and `NextToken`, looks instances up by
//! id with `DBInstanceId` (100 comma-separated ids a request), and maps each instance to a
//! [`Database`](cmdb_core::Database): `DBInstanceMemory` (MB) as MiB, the status
//! normalized as [`DatabaseStatus`](cmdb_core::DatabaseStatus) documents (the raw word
//! kept), `ConnectionString` as a public endpoint when `DBInstanceNetType` is `Internet`,
//! `PayType`, and `DBInstanceType` / `MasterInstanceId` / `ReadOnlyDBInstanceIds` in
//! `extra` (`role`, `primary_instance_id`, `read_only_instance_ids`). The list carries no
//! storage size and no tags.
//!
//! ```
//! use cmdb_core::DatabaseProvider;
//! use cmdb_provider_aliyun::AliyunBuilder;
//! use cmdb_secret::Credentials;
//! use futures::TryStreamExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cmdb_core::Result<()> {
//! # use cmdb_testkit::aliyun_rds::{SimulatedAliyunRds, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET};
//! # let sim = SimulatedAliyunRds::start("cn-beijing", 120).await;
//! # let (access_key_id, access_key_secret) = (DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET);
//! let provider = AliyunBuilder::new()
//!     .with_credentials(Credentials::new(access_key_id, access_key_secret))
//!     .with_region("cn-beijing")
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

pub use builder::AliyunBuilder;
pub use client::{
    default_endpoint_host, rds_endpoint_host, AliyunClient, AliyunRegion, DbInstancePage,
    InstancePage, API_VERSION, MAX_DATABASE_LOOKUP_IDS, MAX_DATABASE_PAGE_SIZE, MAX_LOOKUP_IDS,
    MAX_PAGE_SIZE, RDS_API_VERSION,
};
pub use database::AliyunDatabaseProvider;
pub use provider::AliyunHostProvider;
