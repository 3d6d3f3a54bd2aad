#![cfg_attr(
    not(all(feature = "aliyun", feature = "tencent", feature = "huawei")),
    allow(missing_docs)
)]
#![cfg(all(feature = "aliyun", feature = "tencent", feature = "huawei"))]
//! Database instances (RDS) synced end to end like hosts: the built-in Alibaba Cloud
//! RDS, Tencent Cloud CDB and Huawei Cloud RDS providers, through the `Syncer` and a
//! stored secret, against the signature-checking simulators, into the memory store.

mod common;

use std::sync::Arc;

use cmdb_core::{
    DatabaseQuery, DatabaseStore, ErrorKind, HostQuery, HostStore, ResourceType, Vendor,
};
use cmdb_sync::SyncRequest;
use cmdb_testkit::aliyun_rds::SimulatedAliyunRds;
use cmdb_testkit::huawei_rds::{self, SimulatedHuaweiRds};
use cmdb_testkit::tencent_cdb::SimulatedTencentCdb;

/// Instances each simulated region starts with: more than one page everywhere but
/// Tencent (whose pages hold up to 2000).
const INSTANCES: u64 = 130;

fn rds(secret_id: &str, region: &str) -> SyncRequest {
    SyncRequest::new(secret_id, region).with_resource_type(ResourceType::Rds)
}

/// Active (`false`) or released (`true`) database instances in the store.
async fn count(synced: &common::Synced, released: bool) -> u64 {
    let q = DatabaseQuery::default().with_released(released);
    DatabaseStore::query(&*synced.hosts, &q)
        .await
        .unwrap()
        .total
}

/// Syncs `region` three times, the last after `removed` was deleted from the cloud:
/// created, then unchanged, then exactly `removed` released, confirmed by id; no host
/// is written.
async fn create_unchanged_release(
    synced: common::Synced,
    vendor: Vendor,
    region: &str,
    remove: impl FnOnce() -> String,
) {
    let synced = common::Synced {
        syncer: synced
            .syncer
            .clone()
            .with_database_store(Arc::clone(&synced.hosts) as Arc<dyn DatabaseStore>),
        ..synced
    };
    let first = synced
        .syncer
        .sync(rds(&synced.secret.id, region))
        .await
        .unwrap();
    assert!(
        first.complete && first.error.is_none(),
        "{vendor}: {first:?}"
    );
    assert_eq!(
        (first.created, first.total_failed),
        (INSTANCES, 0),
        "{vendor}"
    );
    assert_eq!(count(&synced, false).await, INSTANCES, "{vendor}");
    let hosts = HostStore::query(&*synced.hosts, &HostQuery::default())
        .await
        .unwrap();
    assert_eq!(hosts.total, 0, "{vendor}: instances are not hosts");

    let second = synced
        .syncer
        .sync(rds(&synced.secret.id, region))
        .await
        .unwrap();
    assert_eq!(
        (second.unchanged, second.released),
        (INSTANCES, 0),
        "{vendor}"
    );

    let gone = remove();
    let third = synced
        .syncer
        .sync(rds(&synced.secret.id, region))
        .await
        .unwrap();
    assert!(third.complete, "{vendor}: {third:?}");
    assert_eq!(
        (third.released, third.release_confirmed, third.unchanged),
        (1, 1, INSTANCES - 1),
        "{vendor}: the vendor confirmed it gone by id: {third:?}"
    );
    let stored = DatabaseStore::get(&*synced.hosts, vendor, &gone)
        .await
        .unwrap()
        .expect("kept");
    assert!(
        stored.released_at.is_some(),
        "{vendor}: released, not deleted"
    );
    assert_eq!(stored.database.secret_id, synced.secret.id, "{vendor}");
    assert_eq!(count(&synced, true).await, 1, "{vendor}");
}

#[tokio::test]
async fn alibaba_cloud_rds_instances_are_created_kept_and_released_when_gone() {
    let sim = SimulatedAliyunRds::start("cn-hangzhou", INSTANCES).await;
    let synced = common::builtin_syncer(
        Vendor::Aliyun,
        &sim.access_key_id(),
        &sim.access_key_secret(),
        "cn-hangzhou",
        &sim.uri(),
    )
    .await;
    create_unchanged_release(synced, Vendor::Aliyun, "cn-hangzhou", || {
        let id = sim.instance_id(7);
        assert!(sim.remove_instance(&id));
        id
    })
    .await;
}

#[tokio::test]
async fn tencent_cloud_cdb_instances_are_created_kept_and_released_when_gone() {
    let sim = SimulatedTencentCdb::start("ap-guangzhou", INSTANCES).await;
    let synced = common::builtin_syncer(
        Vendor::Tencent,
        &sim.secret_id(),
        &sim.secret_key(),
        "ap-guangzhou",
        &sim.uri(),
    )
    .await;
    create_unchanged_release(synced, Vendor::Tencent, "ap-guangzhou", || {
        let id = sim.instance_id(7);
        assert!(sim.remove_instance(&id));
        id
    })
    .await;
}

#[tokio::test]
async fn huawei_cloud_rds_instances_are_created_kept_and_released_when_gone() {
    let sim = SimulatedHuaweiRds::start("cn-north-4", INSTANCES).await;
    let synced = common::builtin_syncer(
        Vendor::Huawei,
        huawei_rds::ACCESS_KEY,
        huawei_rds::SECRET_KEY,
        "cn-north-4",
        &sim.uri(),
    )
    .await;
    create_unchanged_release(synced, Vendor::Huawei, "cn-north-4", || {
        let id = sim.instance_id(7);
        assert!(sim.remove_instance(&id));
        id
    })
    .await;
}

#[tokio::test]
async fn rds_needs_a_database_store_and_a_vendor_with_instances() {
    let sim = SimulatedAliyunRds::start("cn-hangzhou", 3).await;
    let synced = common::builtin_syncer(
        Vendor::Aliyun,
        &sim.access_key_id(),
        &sim.access_key_secret(),
        "cn-hangzhou",
        &sim.uri(),
    )
    .await;
    let e = synced
        .syncer
        .sync(rds(&synced.secret.id, "cn-hangzhou"))
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.field()),
        (ErrorKind::InvalidInput, Some("resource_type")),
        "{e}"
    );
    assert_eq!(sim.requests(), 0, "refused before any request");

    let vcenter = common::builtin_syncer(
        Vendor::Vsphere,
        "administrator@vsphere.local",
        "not-a-password",
        "",
        "http://127.0.0.1:9/sdk",
    )
    .await;
    let syncer = vcenter
        .syncer
        .clone()
        .with_database_store(Arc::clone(&vcenter.hosts) as Arc<dyn DatabaseStore>);
    let e = syncer.sync(rds(&vcenter.secret.id, "")).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.field()),
        (ErrorKind::InvalidInput, Some("resource_type")),
        "{e}"
    );
    assert!(
        e.message().contains("vsphere has no database instances"),
        "{e}"
    );
    // The whole account too: refused as a whole, not region by region.
    let e = syncer
        .sync_all(rds(&vcenter.secret.id, "*"))
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("resource_type"), "{e}");
}
