//! cmdb host provider for Alibaba Cloud ECS (API version 2014-05-26).
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
//! ```no_run
//! use cmdb_core::HostProvider;
//! use cmdb_provider_aliyun::AliyunBuilder;
//! use cmdb_secret::Credentials;
//! use futures::TryStreamExt;
//!
//! # async fn demo() -> cmdb_core::Result<()> {
//! let provider = AliyunBuilder::new()
//!     .with_credentials(Credentials::new("LTAI5t...", "..."))
//!     .with_region("cn-beijing")
//!     .with_request_rate(20)
//!     .build()?;
//! let pages: Vec<_> = provider.pages().try_collect().await?;
//! println!("{} hosts", pages.iter().map(|p| p.hosts.len()).sum::<usize>());
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

pub use builder::AliyunBuilder;
pub use client::{
    default_endpoint_host, AliyunClient, AliyunRegion, InstancePage, API_VERSION, MAX_LOOKUP_IDS,
    MAX_PAGE_SIZE,
};
pub use provider::AliyunHostProvider;
