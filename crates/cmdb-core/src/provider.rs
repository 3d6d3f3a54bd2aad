//! The trait every vendor implements.

use std::fmt::Debug;

use futures::stream::BoxStream;

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
}
