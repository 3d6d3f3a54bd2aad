//! cmdb host provider for VMware vSphere: the virtual machines of a vCenter (or ESXi
//! host) over the vim25 SOAP API, read with a container view and the property collector
//! (`RetrievePropertiesEx` with `maxObjects`, then `ContinueRetrievePropertiesEx`), one
//! round trip per page.
//!
//! Hosts are normalized as cmdb's design says: region = the vCenter host, zone = the
//! datacenter name, `instance_id` = `config.instanceUuid`, serial number =
//! `config.uuid` (the BIOS uuid), status from `runtime.powerState`, addresses from
//! `guest.net` (IPv4 and IPv6, link-local dropped) or else `guest.ipAddress`; templates
//! are skipped. A machine without a `config.instanceUuid` (its configuration cannot be
//! read: inaccessible, orphaned) is reported as a failed record naming its managed
//! object id ([`cmdb_core::HostPage::failed`]), never stored under another id.
//!
//! The by-id lookup that confirms a machine is gone before a sync releases it is
//! `SearchIndex.FindByUuid` (`instanceUuid` and `vmSearch` true, every datacenter), then
//! one `RetrievePropertiesEx` per machine found, which also reads its datacenter: one page
//! per id, in one session handled as the listing's (logged in again once if it expires).
//!
//! ```no_run
//! use futures::TryStreamExt;
//! use cmdb_core::HostProvider;
//! use cmdb_provider_vsphere::VsphereBuilder;
//! use cmdb_secret::Credentials;
//!
//! # async fn demo() -> cmdb_core::Result<()> {
//! let provider = VsphereBuilder::new()
//!     .with_endpoint("https://vcenter.example.com")
//!     .with_credentials(Credentials::new("administrator@vsphere.local", "secret"))
//!     .with_ca_bundle_pem(std::fs::read("/etc/ssl/vmca.pem").unwrap())
//!     .build()?;
//! let pages: Vec<_> = provider.pages().try_collect().await?;
//! let hosts: usize = pages.iter().map(|p| p.hosts.len()).sum();
//! println!("{hosts} virtual machines in {}", provider.region());
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
mod soap;

pub use builder::{VsphereBuilder, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
pub use provider::VsphereHostProvider;
