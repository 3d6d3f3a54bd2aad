//! [`AliyunHostProvider`]: the [`HostProvider`] of one region, on an [`AliyunClient`].

use cmdb_core::{HostPage, HostProvider, Result, Vendor};
use cmdb_http::token_pages;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::FutureExt;

use crate::client::{AliyunClient, MAX_LOOKUP_IDS};

/// The ECS hosts of one region, as a [`HostProvider`]: one `DescribeInstances` request
/// per page, made only when the page is polled.
///
/// An empty first page is not an error (a RAM user without permission gets an empty list
/// too, not an error): it is logged as a warning, and the sync's release guard refuses to
/// release a whole scope on such a listing.
#[derive(Debug, Clone)]
pub struct AliyunHostProvider {
    client: AliyunClient,
}

impl AliyunHostProvider {
    /// A provider listing through `client`.
    pub fn new(client: AliyunClient) -> AliyunHostProvider {
        AliyunHostProvider { client }
    }

    /// The client underneath.
    pub fn client(&self) -> &AliyunClient {
        &self.client
    }
}

impl HostProvider for AliyunHostProvider {
    fn vendor(&self) -> Vendor {
        Vendor::Aliyun
    }

    fn region(&self) -> &str {
        self.client.region()
    }

    /// One `DescribeInstances` request per page, following `NextToken`.
    fn pages(&self) -> BoxStream<'static, Result<HostPage>> {
        let client = self.client.clone();
        let mut first = true;
        token_pages(move |token: Option<String>| {
            let client = client.clone();
            let first = std::mem::take(&mut first);
            async move {
                let page = client.describe_instances(token.as_deref()).await?;
                if first && page.hosts.is_empty() && page.next_token.is_none() {
                    tracing::warn!(
                        region = %client.region(),
                        request_id = %page.request_id,
                        "aliyun listed no instances in this region; if it has some, check that \
                         the AccessKey's RAM policy allows ecs:DescribeInstances"
                    );
                }
                let next = page.next_token.clone();
                Ok((
                    HostPage::new(page.hosts, page.total).with_failed(page.failed),
                    next,
                ))
            }
        })
    }

    /// `DescribeInstances` with `InstanceIds`, 100 ids a request, one page per request.
    fn lookup(&self, instance_ids: Vec<String>) -> Option<BoxStream<'static, Result<HostPage>>> {
        let client = self.client.clone();
        Some(cmdb_http::id_batches(
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

    /// `DescribeRegions`: every region the key can use (sold-out ones included: they
    /// may still hold instances), in the order ECS answers them.
    fn regions(&self) -> Option<BoxFuture<'static, Result<Vec<String>>>> {
        let client = self.client.clone();
        Some(
            async move {
                let mut names: Vec<String> = Vec::new();
                for region in client.describe_regions().await? {
                    if !names.contains(&region.region_id) {
                        names.push(region.region_id);
                    }
                }
                Ok(names)
            }
            .boxed(),
        )
    }
}
