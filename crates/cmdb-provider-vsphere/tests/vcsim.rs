//! The provider against govmomi's vcsim, when `CMDB_TEST_VCSIM_URL` is set (see
//! `.ci/vcsim.sh`): vcsim accepts our SOAP, and the listing passes the conformance suite.

use std::sync::Arc;

use cmdb_core::testing::{host_provider_conformance, ProviderExpectation};
use cmdb_core::HostProvider;
use cmdb_provider_vsphere::VsphereBuilder;
use cmdb_secret::Credentials;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vcsim_listing_passes_the_conformance_suite() {
    let Ok(sdk) = std::env::var("CMDB_TEST_VCSIM_URL") else {
        eprintln!(
            "skipping vcsim_listing_passes_the_conformance_suite: CMDB_TEST_VCSIM_URL is not set \
             (run `eval \"$(.ci/vcsim.sh)\"` to start vcsim)"
        );
        return;
    };
    let provider = VsphereBuilder::new()
        .with_endpoint(&sdk)
        .with_credentials(Credentials::new("cmdb", "vcsim"))
        .with_page_size(50)
        .build()
        .unwrap();
    let p: Arc<dyn HostProvider> = Arc::new(provider);
    let listed = host_provider_conformance(
        p,
        ProviderExpectation {
            hosts: None,
            max_pages: 1000,
            ..ProviderExpectation::default()
        },
    )
    .await;
    assert!(listed >= 20, "vcsim lists a large inventory, got {listed}");
}
