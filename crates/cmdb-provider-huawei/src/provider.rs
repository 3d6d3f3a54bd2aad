//! [`HuaweiHostProvider`]: the [`HostProvider`] over ListServersDetails, with ShowServer
//! as its by-id lookup.

use cmdb_core::{HostPage, HostProvider, Vendor};
use cmdb_http::{id_batches, offset_pages_concurrent};
use futures::future::{BoxFuture, FutureExt};
use futures::stream::{self, BoxStream, StreamExt};

use crate::client::HuaweiClient;

/// Lists the ECS servers of one Huawei Cloud region.
///
/// Each listing resolves the project id first (configured, cached or looked up in IAM),
/// then requests page 1 of ListServersDetails; when it reports a `count`, the remaining
/// pages are requested a bounded number at a time, within the shared rate limiter, and
/// yielded in order. The listing ends after a short page or when `count` is reached.
#[derive(Debug, Clone)]
pub struct HuaweiHostProvider {
    client: HuaweiClient,
    page_size: u32,
    concurrency: usize,
}

impl HuaweiHostProvider {
    pub(crate) fn new(client: HuaweiClient, page_size: u32, concurrency: usize) -> Self {
        HuaweiHostProvider {
            client,
            page_size,
            concurrency,
        }
    }

    /// The client underneath.
    pub fn client(&self) -> &HuaweiClient {
        &self.client
    }

    /// Servers asked for per page.
    pub fn page_size(&self) -> u32 {
        self.page_size
    }
}

impl HostProvider for HuaweiHostProvider {
    fn vendor(&self) -> Vendor {
        Vendor::Huawei
    }

    fn region(&self) -> &str {
        self.client.region()
    }

    fn pages(&self) -> BoxStream<'static, cmdb_core::Result<HostPage>> {
        let client = self.client.clone();
        let (limit, concurrency) = (self.page_size, self.concurrency);
        stream::once(async move {
            let project_id = match client.project_id().await {
                Ok(id) => id,
                Err(e) => return stream::iter([Err(e)]).boxed(),
            };
            offset_pages_concurrent(1, concurrency, move |page| {
                let (client, project_id) = (client.clone(), project_id.clone());
                async move {
                    let (hosts, failed, info) =
                        client.servers_page(&project_id, page, limit).await?;
                    Ok((HostPage::new(hosts, info.total).with_failed(failed), info))
                }
            })
        })
        .flatten()
        .boxed()
    }

    /// One ShowServer request per id (Huawei Cloud has no by-id batch call that says
    /// which ids are gone): a page with the server when it exists, an empty page when
    /// ECS answers 404 `Ecs.0114`.
    fn lookup(
        &self,
        instance_ids: Vec<String>,
    ) -> Option<BoxStream<'static, cmdb_core::Result<HostPage>>> {
        let client = self.client.clone();
        Some(id_batches(instance_ids, 1, move |ids: Vec<String>| {
            let client = client.clone();
            async move {
                let project_id = client.project_id().await?;
                let mut hosts = Vec::with_capacity(1);
                for id in &ids {
                    hosts.extend(client.show_server(&project_id, id).await?);
                }
                Ok(HostPage::new(hosts, None))
            }
        }))
    }

    /// The account's region projects in IAM (`GET /v3/projects`), without `MOS` and
    /// sub-projects: see [`HuaweiClient::region_names`].
    fn regions(&self) -> Option<BoxFuture<'static, cmdb_core::Result<Vec<String>>>> {
        let client = self.client.clone();
        Some(async move { client.region_names().await }.boxed())
    }
}
