//! [`TencentHostProvider`]: CVM instances of one region as a lazy page stream.

use cmdb_core::{HostPage, HostProvider, Result, Vendor};
use cmdb_http::{id_batches, offset_pages_concurrent, PageInfo};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::FutureExt;

use crate::client::{TencentClient, MAX_LOOKUP_IDS};

/// Lists the CVM instances of one region with `DescribeInstances`, `Offset`/`Limit`
/// paging. Built by [`TencentBuilder::build`](crate::TencentBuilder::build).
///
/// The first page is fetched alone; its `TotalCount` fixes the offsets of the others,
/// which are then fetched up to `concurrency` at a time (within the secret's rate
/// limiter) and yielded in offset order. The listing stops after a short page or once
/// `Offset >= TotalCount`.
///
/// **`TotalCount` changing mid-listing**: offsets shift when instances are created or
/// released while pages are read, so some instances could be skipped. The shared shift
/// guard of [`offset_pages_concurrent`] marks such a listing as moved (see
/// [`HostPage::moved`]); the syncer then releases only what [`lookup`](HostProvider::lookup)
/// confirms is gone.
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
        offset_pages_concurrent(0, self.concurrency, move |index| {
            let client = client.clone();
            async move {
                let page = client
                    .describe_instances(index * page_size, page_size)
                    .await?;
                let total = page.total_count;
                let items = page.hosts.len() + page.failed.len();
                let info = PageInfo::new(items, page_size as usize, Some(total));
                Ok((
                    HostPage::new(page.hosts, Some(total)).with_failed(page.failed),
                    info,
                ))
            }
        })
    }

    /// `DescribeInstances` with `InstanceIds`, 100 ids a request, one page per request.
    fn lookup(&self, instance_ids: Vec<String>) -> Option<BoxStream<'static, Result<HostPage>>> {
        let client = self.client.clone();
        Some(id_batches(
            instance_ids,
            MAX_LOOKUP_IDS,
            move |batch: Vec<String>| {
                let client = client.clone();
                async move {
                    let page = client.describe_instances_by_ids(&batch).await?;
                    Ok(HostPage::new(page.hosts, None).with_failed(page.failed))
                }
            },
        ))
    }

    /// The `region` service's `DescribeRegions` for CVM: every region but those it
    /// reports `UNAVAILABLE`, in the order it answers them.
    fn regions(&self) -> Option<BoxFuture<'static, Result<Vec<String>>>> {
        let client = self.client.clone();
        Some(
            async move {
                let mut names: Vec<String> = Vec::new();
                for region in client.describe_regions().await? {
                    let unavailable = region
                        .state
                        .as_deref()
                        .is_some_and(|s| s.eq_ignore_ascii_case("UNAVAILABLE"));
                    if !unavailable && !names.contains(&region.region) {
                        names.push(region.region);
                    }
                }
                Ok(names)
            }
            .boxed(),
        )
    }
}
