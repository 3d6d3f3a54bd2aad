//! Against the real Tencent Cloud, only when `TENCENTCLOUD_SECRET_ID`,
//! `TENCENTCLOUD_SECRET_KEY` and `CMDB_LIVE_REGION` are set; skipped with a message
//! otherwise. Read-only: DescribeRegions and DescribeInstances.

use std::sync::Arc;

use cmdb_core::testing::{host_provider_conformance, ProviderExpectation};
use cmdb_core::{HostProvider, Vendor};
use cmdb_provider_tencent::TencentBuilder;
use cmdb_secret::Credentials;

fn live() -> Option<(Credentials, String)> {
    let vars = [
        "TENCENTCLOUD_SECRET_ID",
        "TENCENTCLOUD_SECRET_KEY",
        "CMDB_LIVE_REGION",
    ];
    let values: Vec<_> = vars.iter().map(|v| std::env::var(v).ok()).collect();
    match values.as_slice() {
        [Some(id), Some(key), Some(region)] => {
            Some((Credentials::new(id.clone(), key.clone()), region.clone()))
        }
        _ => {
            eprintln!(
                "skipping the live Tencent Cloud test: set {} to run it",
                vars.join(", ")
            );
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn live_region_lists_and_passes_conformance() {
    let Some((credentials, region)) = live() else {
        return;
    };
    let provider = TencentBuilder::new()
        .with_credentials(credentials)
        .with_region(region.clone())
        .with_request_rate(10)
        .build()
        .unwrap();
    let regions = provider.client().describe_regions().await.unwrap();
    assert!(
        regions.iter().any(|r| r.region == region),
        "{region} is not among the CVM regions {regions:?}"
    );
    assert_eq!(provider.vendor(), Vendor::Tencent);
    let n = host_provider_conformance(
        Arc::new(provider),
        ProviderExpectation {
            hosts: None,
            max_pages: 1000,
            ..ProviderExpectation::default()
        },
    )
    .await;
    eprintln!("{region}: {n} instances listed");
}
