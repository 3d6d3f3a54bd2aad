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
//! ```
//! use cmdb_core::HostProvider;
//! use cmdb_provider_vsphere::VsphereBuilder;
//! use cmdb_secret::Credentials;
//! use futures::TryStreamExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cmdb_core::Result<()> {
//! # use cmdb_testkit::vsphere::SimulatedVsphere;
//! # let sim = SimulatedVsphere::start(&[("DC0", 250)]).await;
//! # let (user, password) = (SimulatedVsphere::USER, SimulatedVsphere::PASSWORD);
//! let provider = VsphereBuilder::new()
//!     // A simulator here; point it at your vCenter, e.g. `https://vcenter.example.com`.
//!     .with_endpoint(sim.uri())
//!     .with_credentials(Credentials::new(user, password))
//!     .build()?;
//! let (mut pages, mut count) = (provider.pages(), 0);
//! while let Some(page) = pages.try_next().await? {
//!     for host in &page.hosts {
//!         println!("{} {} {:?}", host.instance_id, host.name, host.status);
//!     }
//!     count += page.hosts.len();
//! }
//! assert_eq!(count, 250, "virtual machines in {}", provider.region());
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
