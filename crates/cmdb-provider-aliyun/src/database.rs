//! [`AliyunDatabaseProvider`]: the [`DatabaseProvider`] of one region, on the same
//! [`AliyunClient`] as the hosts.

use cmdb_core::{DatabasePage, DatabaseProvider, Result, Vendor};
use cmdb_http::{id_batches, token_pages};
use futures::stream::BoxStream;

use crate::client::{AliyunClient, MAX_DATABASE_LOOKUP_IDS};

/// The RDS instances of one region, as a [`DatabaseProvider`]: one RDS
/// `DescribeDBInstances` request per page (`MaxResults`, `NextToken`), made only when the
/// page is polled. Built by [`AliyunBuilder::build_databases`](crate::AliyunBuilder::build_databases).
///
/// As with ECS, a RAM user without `rds:DescribeDBInstances` may get an empty list rather
/// than an error; an empty first page is logged as a warning.
#[derive(Debug, Clone)]
pub struct AliyunDatabaseProvider {
    client: AliyunClient,
    page_size: u32,
}

impl AliyunDatabaseProvider {
    pub(crate) fn new(client: AliyunClient, page_size: u32) -> AliyunDatabaseProvider {
        AliyunDatabaseProvider { client, page_size }
    }

    /// The client underneath.
    pub fn client(&self) -> &AliyunClient {
        &self.client
    }

    /// Instances asked for per page (`MaxResults`).
    pub fn page_size(&self) -> u32 {
        self.page_size
    }
}

impl DatabaseProvider for AliyunDatabaseProvider {
    fn vendor(&self) -> Vendor {
        Vendor::Aliyun
    }

    fn region(&self) -> &str {
        self.client.region()
    }

    /// One `DescribeDBInstances` request per page, following `NextToken`.
    fn pages(&self) -> BoxStream<'static, Result<DatabasePage>> {
        let client = self.client.clone();
        let page_size = self.page_size;
        let mut first = true;
        token_pages(move |token: Option<String>| {
            let client = client.clone();
            let first = std::mem::take(&mut first);
            async move {
                let page = client
                    .describe_db_instances(token.as_deref(), page_size)
                    .await?;
                if first && page.databases.is_empty() && page.next_token.is_none() {
                    tracing::warn!(
                        region = %client.region(),
                        request_id = %page.request_id,
                        "aliyun listed no RDS instances in this region; if it has some, check \
                         that the AccessKey's RAM policy allows rds:DescribeDBInstances"
                    );
                }
                let next = page.next_token.clone();
                Ok((
                    DatabasePage::new(page.databases, page.total).with_failed(page.failed),
                    next,
                ))
            }
        })
    }

    /// `DescribeDBInstances` with `DBInstanceId`, 100 ids a request, one page per
    /// request.
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
