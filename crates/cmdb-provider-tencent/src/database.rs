//! [`TencentDatabaseProvider`]: CDB (TencentDB for MySQL) instances of one region as a
//! lazy page stream, on the same [`TencentClient`] as the hosts.

use cmdb_core::{DatabasePage, DatabaseProvider, Result, Vendor};
use cmdb_http::{id_batches, offset_pages, PageInfo};
use futures::stream::BoxStream;

use crate::client::{TencentClient, MAX_DATABASE_LOOKUP_IDS};

/// Lists the CDB instances of one region with `DescribeDBInstances`, `Offset`/`Limit`
/// paging, one request per page, made only when the page is polled. Built by
/// [`TencentBuilder::build_databases`](crate::TencentBuilder::build_databases).
///
/// The listing ends after a short page or once the instances listed reach `TotalCount`.
/// Offsets shift when instances are created or released while pages are read: when the
/// `TotalCount` of a later page differs from the first's, or the instances listed differ
/// from it, the last page is marked [`moved`](DatabasePage::moved), and a sync releases
/// only what [`lookup`](DatabaseProvider::lookup) confirms is gone.
#[derive(Debug, Clone)]
pub struct TencentDatabaseProvider {
    client: TencentClient,
    page_size: u64,
}

impl TencentDatabaseProvider {
    pub(crate) fn new(client: TencentClient, page_size: u64) -> Self {
        TencentDatabaseProvider { client, page_size }
    }

    /// The client underneath.
    pub fn client(&self) -> &TencentClient {
        &self.client
    }

    /// Instances asked for per page (`Limit`).
    pub fn page_size(&self) -> u64 {
        self.page_size
    }
}

impl DatabaseProvider for TencentDatabaseProvider {
    fn vendor(&self) -> Vendor {
        Vendor::Tencent
    }

    fn region(&self) -> &str {
        self.client.region()
    }

    /// One `DescribeDBInstances` request per page, `Offset` = page index × `Limit`.
    fn pages(&self) -> BoxStream<'static, Result<DatabasePage>> {
        let client = self.client.clone();
        let page_size = self.page_size;
        offset_pages(0, move |index| {
            let client = client.clone();
            async move {
                let page = client
                    .describe_db_instances(index * page_size, page_size)
                    .await?;
                let total = page.total_count;
                let items = page.databases.len() + page.failed.len();
                let info = PageInfo::new(items, page_size as usize, Some(total));
                Ok((
                    DatabasePage::new(page.databases, Some(total)).with_failed(page.failed),
                    info,
                ))
            }
        })
    }

    /// `DescribeDBInstances` with `InstanceIds`, 100 ids a request, one page per request.
    fn lookup(
        &self,
        instance_ids: Vec<String>,
    ) -> Option<BoxStream<'static, Result<DatabasePage>>> {
        let client = self.client.clone();
        Some(id_batches(
            instance_ids,
            MAX_DATABASE_LOOKUP_IDS,
            move |batch: Vec<String>| {
                let client = client.clone();
                async move {
                    let page = client.describe_db_instances_by_ids(&batch).await?;
                    Ok(DatabasePage::new(page.databases, None).with_failed(page.failed))
                }
            },
        ))
    }
}
