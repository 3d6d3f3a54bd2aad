//! cmdb host provider for Huawei Cloud ECS.
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
//! ```no_run
//! use futures::TryStreamExt;
//! use cmdb_core::HostProvider;
//! use cmdb_provider_huawei::HuaweiBuilder;
//! use cmdb_secret::Credentials;
//!
//! # async fn demo() -> cmdb_core::Result<()> {
//! let provider = HuaweiBuilder::new()
//!     .with_credentials(Credentials::new("MY-AK", "MY-SK"))
//!     .with_region("cn-north-4")
//!     .build()?;
//! let pages: Vec<_> = provider.pages().try_collect().await?;
//! let hosts: usize = pages.iter().map(|p| p.hosts.len()).sum();
//! println!("{hosts} servers");
//! # Ok(()) }
//! ```

#[cfg(feature = "bench")]
pub mod bench;
mod builder;
mod client;
mod error;
mod map;
mod model;
mod provider;
mod sign;

pub use builder::{HuaweiBuilder, DEFAULT_CONCURRENCY, DEFAULT_PAGE_SIZE};
pub use client::HuaweiClient;
pub use provider::HuaweiHostProvider;
