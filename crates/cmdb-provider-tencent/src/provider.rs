//! [`TencentHostProvider`]: CVM instances of one region as a lazy page stream.

use std::sync::{Arc, OnceLock};

use cmdb_core::{Error, ErrorKind, HostPage, HostProvider, Result, Vendor};
use cmdb_http::{offset_pages_concurrent, PageInfo};
use futures::stream::BoxStream;

use crate::client::TencentClient;

/// Lists the CVM instances of one region with `DescribeInstances`, `Offset`/`Limit`
/// paging. Built by [`TencentBuilder::build`](crate::TencentBuilder::build).
///
/// The first page is fetched alone; its `TotalCount` fixes the offsets of the others,
/// which are then fetched up to `concurrency` at a time (within the secret's rate
/// limiter) and yielded in offset order. The listing stops after a short page or once
/// `Offset >= TotalCount`.
///
/// **`TotalCount` changing mid-listing**: offsets shift when instances are created or
/// released while pages are read, so some instances could be skipped or listed twice. A
/// page whose `TotalCount` differs from the first page's ends the stream with a
/// [`Conflict`](ErrorKind::Conflict) error: the pages before it are kept, but the run is
/// incomplete, so the syncer releases nothing on the strength of a shifted listing. The
/// next run lists a settled inventory.
#[derive(Debug, Clone)]
pub struct TencentHostProvider {
    client: TencentClient,
    page_size: u64,
    concurrency: usize,
}

impl TencentHostProvider {
    pub(crate) fn new(client: TencentClient, page_size: u64, concurrency: usize) -> Self {
        TencentHostProvider {
            client,
            page_size,
            concurrency,
        }
    }

    /// The client, for direct calls (`describe_regions`) and stats.
    pub fn client(&self) -> &TencentClient {
        &self.client
    }

    /// Instances asked for per page (`Limit`).
    pub fn page_size(&self) -> u64 {
        self.page_size
    }

    /// Pages in flight at most, after the first.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }
}

impl HostProvider for TencentHostProvider {
    fn vendor(&self) -> Vendor {
        Vendor::Tencent
    }

    fn region(&self) -> &str {
        self.client.region()
    }

    fn pages(&self) -> BoxStream<'static, Result<HostPage>> {
        let client = self.client.clone();
        let page_size = self.page_size;
        // The TotalCount of the first page of this listing.
        let first_total = Arc::new(OnceLock::<u64>::new());
        offset_pages_concurrent(0, self.concurrency, move |index| {
            let client = client.clone();
            let first_total = Arc::clone(&first_total);
            async move {
                let offset = index * page_size;
                let page = client.describe_instances(offset, page_size).await?;
                let total = page.total_count;
                let first = *first_total.get_or_init(|| total);
                if total != first {
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        format!(
                            "Tencent Cloud reported TotalCount {total} at offset {offset} but {first} \
                             on the first page: instances were created or released during the \
                             listing, so offsets shifted; the listing is incomplete (nothing is \
                             released) and the next sync will list the settled inventory"
                        ),
                    ));
                }
                let info = PageInfo::new(page.hosts.len(), page_size as usize, Some(total));
                Ok((HostPage::new(page.hosts, Some(total)), info))
            }
        })
    }
}
