//! [`HuaweiDatabaseProvider`]: the [`DatabaseProvider`] over RDS ListInstances, on the same
//! [`HuaweiClient`] as the hosts.

use cmdb_core::{DatabasePage, DatabaseProvider, Result, Vendor};
use cmdb_http::{id_batches, offset_pages, PageInfo};
use futures::stream::{self, BoxStream, StreamExt};

use crate::client::HuaweiClient;

/// Lists the RDS instances of one Huawei Cloud region. Built by
/// [`HuaweiBuilder::build_databases`](crate::HuaweiBuilder::build_databases).
///
/// Each listing resolves the project id first (configured, cached or looked up in IAM, as
/// for servers), then requests ListInstances one page at a time, `offset` being the
/// records to skip (from 0). The listing ends after a short page or when `total_count`
/// is reached. When a later page's `total_count` differs from the first's, or the
/// instances listed differ from it, the last page is marked
/// [`moved`](DatabasePage::moved): offsets shifted, instances may have been skipped.
#[derive(Debug, Clone)]
pub struct HuaweiDatabaseProvider {
    client: HuaweiClient,
    page_size: u32,
}

impl HuaweiDatabaseProvider {
    pub(crate) fn new(client: HuaweiClient, page_size: u32) -> Self {
        HuaweiDatabaseProvider { client, page_size }
    }

    /// The client underneath.
    pub fn client(&self) -> &HuaweiClient {
        &self.client
    }

    /// Instances asked for per page (`limit`).
    pub fn page_size(&self) -> u32 {
        self.page_size
    }
}

impl DatabaseProvider for HuaweiDatabaseProvider {
    fn vendor(&self) -> Vendor {
        Vendor::Huawei
    }

    fn region(&self) -> &str {
        self.client.region()
    }

    /// One ListInstances request per page, `offset` = page index × `limit`.
    fn pages(&self) -> BoxStream<'static, Result<DatabasePage>> {
        let client = self.client.clone();
        let limit = self.page_size;
        stream::once(async move {
            let project_id = match client.project_id().await {
                Ok(id) => id,
                Err(e) => return stream::iter([Err(e)]).boxed(),
            };
            offset_pages(0, move |index| {
                let (client, project_id) = (client.clone(), project_id.clone());
                async move {
                    let page = client
                        .list_instances(&project_id, index * u64::from(limit), limit)
                        .await?;
                    let items = page.databases.len() + page.failed.len();
                    let info = PageInfo::new(items, limit as usize, page.total_count);
                    Ok((
                        DatabasePage::new(page.databases, page.total_count)
                            .with_failed(page.failed),
                        info,
                    ))
                }
            })
        })
        .flatten()
        .boxed()
    }

    /// One ListInstances request per id (its `id` filter takes one): a page with the
    /// instance when it exists, an empty page when RDS no longer has it.
    fn lookup(
        &self,
        instance_ids: Vec<String>,
    ) -> Option<BoxStream<'static, Result<DatabasePage>>> {
        let client = self.client.clone();
        Some(id_batches(instance_ids, 1, move |ids: Vec<String>| {
            let client = client.clone();
            async move {
                let project_id = client.project_id().await?;
                let mut databases = Vec::with_capacity(1);
                let mut failed = Vec::new();
                for id in &ids {
                    let page = client.list_instances_by_id(&project_id, id).await?;
                    databases.extend(page.databases);
                    failed.extend(page.failed);
                }
                Ok(DatabasePage::new(databases, None).with_failed(failed))
            }
        }))
    }
}
