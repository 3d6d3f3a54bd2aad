//! The trait every vendor implements.

use std::fmt::Debug;

use futures::future::BoxFuture;
use futures::stream::BoxStream;

use crate::database::DatabasePage;
use crate::error::Result;
use crate::model::{HostPage, Vendor};

/// Lists the hosts of one region of one vendor, page by page.
///
/// Implementations are cheap handles (an `Arc`'d client inside) used as
/// `Arc<dyn HostProvider>`.
pub trait HostProvider: Debug + Send + Sync + 'static {
    /// The vendor listed.
    fn vendor(&self) -> Vendor;

    /// The region listed (vSphere: the vCenter host).
    fn region(&self) -> &str;

    /// A lazy stream of pages: one vendor request per page (or a bounded number in
    /// flight), never the whole inventory in memory. The stream ends after the last page.
    /// An `Err` item means the listing is incomplete; the stream ends after it.
    fn pages(&self) -> BoxStream<'static, Result<HostPage>>;

    /// Asks the vendor, by id, which of `instance_ids` still exist: a lazy stream of
    /// pages, one per vendor request (each batching as many ids as the vendor's by-id call
    /// takes), holding the hosts found, fully described as [`pages`](Self::pages) would
    /// list them. Ids the vendor no longer has are simply absent. An `Err` item means the
    /// lookup failed (nothing can be concluded from it); the stream ends after it.
    ///
    /// A sync calls this only for hosts a complete listing did not list, before it
    /// releases any: offset paging skips live hosts when the inventory moves during a
    /// listing, so "not listed" is never proof that a host is gone.
    ///
    /// `None` (the default) means the provider has no by-id call; a sync then releases
    /// only hosts that two consecutive complete runs missed.
    fn lookup(&self, instance_ids: Vec<String>) -> Option<BoxStream<'static, Result<HostPage>>> {
        let _ = instance_ids;
        None
    }

    /// Asks the vendor which regions the account can list: the regions a whole-account
    /// sync runs, one scope each, when the account allows every region (`"*"`). The
    /// future makes the vendor's region call when polled (one request, within the same
    /// rate limiter as the listing); it answers region names as [`region`](Self::region)
    /// takes them, without duplicates, in the vendor's order.
    ///
    /// Any provider of the vendor can answer, whatever region it was built for: a sync
    /// builds one for a default region of the vendor just to ask. An error (a wrong key,
    /// a permission the key lacks) means no region is known, not that there is none.
    ///
    /// `None` (the default) means the provider cannot list regions: a vendor with a
    /// single scope (vSphere: the vCenter), or a provider built by hand for one region.
    fn regions(&self) -> Option<BoxFuture<'static, Result<Vec<String>>>> {
        None
    }
}

/// Lists the managed database instances (RDS) of one region of one vendor, page by page:
/// [`HostProvider`]'s contract, for [`Database`](crate::Database) records.
///
/// Implementations are cheap handles used as `Arc<dyn DatabaseProvider>`.
pub trait DatabaseProvider: Debug + Send + Sync + 'static {
    /// The vendor listed.
    fn vendor(&self) -> Vendor;

    /// The region listed.
    fn region(&self) -> &str;

    /// A lazy stream of pages, one vendor request per page; an `Err` item means the
    /// listing is incomplete and ends the stream. As [`HostProvider::pages`].
    fn pages(&self) -> BoxStream<'static, Result<DatabasePage>>;

    /// Asks the vendor, by id, which of `instance_ids` still exist, as
    /// [`HostProvider::lookup`]: the instances found, fully described; ids the vendor no
    /// longer has are absent. `None`: no by-id call.
    fn lookup(
        &self,
        instance_ids: Vec<String>,
    ) -> Option<BoxStream<'static, Result<DatabasePage>>> {
        let _ = instance_ids;
        None
    }
}
