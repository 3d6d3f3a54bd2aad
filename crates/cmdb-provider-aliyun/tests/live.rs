//! Against the real Alibaba Cloud, only when `ALIBABA_CLOUD_ACCESS_KEY_ID`,
//! `ALIBABA_CLOUD_ACCESS_KEY_SECRET` and `CMDB_LIVE_REGION` are set; skipped otherwise.

use std::sync::Arc;

use cmdb_core::testing::{host_provider_conformance, ProviderExpectation};
use cmdb_provider_aliyun::AliyunBuilder;

#[tokio::test]
async fn live_listing_passes_the_provider_conformance_suite() {
    let vars = [
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        "CMDB_LIVE_REGION",
    ];
    let missing: Vec<_> = vars
        .iter()
        .filter(|v| std::env::var(v).map_or(true, |s| s.is_empty()))
        .collect();
    if !missing.is_empty() {
        println!("skipped: live Alibaba Cloud test needs {missing:?} set");
        return;
    }
    let region = std::env::var("CMDB_LIVE_REGION").unwrap();
    let client = AliyunBuilder::from_env()
        .with_region(&region)
        .with_request_rate(5)
        .build_client()
        .expect("client from the environment");
    let regions = client.describe_regions().await.expect("DescribeRegions");
    assert!(
        regions.iter().any(|r| r.region_id == region),
        "{region} is not among the account's regions"
    );
    let endpoint = client.endpoint().await.expect("endpoint");
    println!("listing {region} at {endpoint}");
    let provider = cmdb_provider_aliyun::AliyunHostProvider::new(client);
    let n = host_provider_conformance(
        Arc::new(provider),
        ProviderExpectation {
            hosts: None,
            max_pages: 10_000,
            ..ProviderExpectation::default()
        },
    )
    .await;
    println!("listed {n} hosts in {region}");
}
