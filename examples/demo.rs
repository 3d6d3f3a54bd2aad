//! The demo: four simulated clouds synced into a SQLite database, with no network and no
//! setup. Run with `cargo run --example demo --features sqlite`.
//!
//! It starts the simulated Alibaba Cloud, Tencent Cloud, Huawei Cloud and vSphere APIs of
//! `cmdb-testkit` on 127.0.0.1 (each checks our request signatures as the real service
//! would), stores four encrypted secrets in `sqlite://cmdb-demo.db`, syncs each vendor,
//! changes the simulated clouds (hosts removed, changed, added), syncs again, and prints
//! what each run created, updated, left unchanged and released, and a few stored hosts;
//! then does the same for the database instances (RDS) of three simulated clouds.

use std::path::Path;
use std::sync::Arc;

use cmdb::core::{DatabaseQuery, HostQuery, HostSort, HostStore, ResourceType, Vendor};
use cmdb::secret::{Cipher, NewSecret, SecretStore};
use cmdb::store_sql::SqlStore;
use cmdb::sync::{DetailsMode, ProviderRegistry, SyncOptions, SyncRequest, SyncResponse, Syncer};
use cmdb_testkit::aliyun::{self, SimulatedAliyun};
use cmdb_testkit::aliyun_rds::SimulatedAliyunRds;
use cmdb_testkit::huawei::{self, SimulatedHuawei};
use cmdb_testkit::huawei_rds::{self, SimulatedHuaweiRds};
use cmdb_testkit::tencent::{self, SimulatedTencent};
use cmdb_testkit::tencent_cdb::SimulatedTencentCdb;
use cmdb_testkit::vsphere::SimulatedVsphere;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const DATABASE: &str = "cmdb-demo.db";

/// One simulated cloud and the secret that reaches it.
struct Cloud {
    vendor: Vendor,
    region: String,
    secret_id: String,
}

fn print_run(label: &str, vendor: Vendor, r: &SyncResponse) {
    println!(
        "{label:<7} {vendor:<8} pages={:<3} stored={:<4} failed={} created={:<4} updated={:<3} unchanged={:<4} released={:<3} complete={}{}",
        r.pages,
        r.total_succeed,
        r.total_failed,
        r.created,
        r.updated,
        r.unchanged,
        r.released,
        r.complete,
        r.release_skipped
            .as_deref()
            .map(|s| format!("  (release skipped: {s})"))
            .unwrap_or_default(),
    );
}

fn remove_file(path: &str) {
    if Path::new(path).exists() {
        let _ = std::fs::remove_file(path);
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // A fresh demo database each time: the simulated clouds listen on new ports.
    for suffix in ["", "-wal", "-shm", ".key"] {
        remove_file(&format!("{DATABASE}{suffix}"));
    }
    let (cipher, _) = Cipher::load_or_create_key_file(Path::new(&format!("{DATABASE}.key")))?;
    let cipher = Arc::new(cipher);
    let store = Arc::new(SqlStore::connect(&format!("sqlite://{DATABASE}")).await?);

    println!("starting four simulated clouds on 127.0.0.1 ...");
    let ali = SimulatedAliyun::start("cn-hangzhou", 430).await;
    let tc = SimulatedTencent::start(380).await;
    let hw = SimulatedHuawei::start("cn-north-4", 450).await;
    let vc = SimulatedVsphere::start(&[("dc-east", 120), ("dc-west", 90)]).await;

    let secrets = [
        (
            Vendor::Aliyun,
            aliyun::DEFAULT_ACCESS_KEY_ID,
            aliyun::DEFAULT_ACCESS_KEY_SECRET,
            ali.uri(),
            ali.region(),
        ),
        (
            Vendor::Tencent,
            tencent::SECRET_ID,
            tencent::SECRET_KEY,
            tc.uri(),
            tc.region(),
        ),
        (
            Vendor::Huawei,
            huawei::ACCESS_KEY,
            huawei::SECRET_KEY,
            hw.uri(),
            "cn-north-4".to_owned(),
        ),
        (
            Vendor::Vsphere,
            SimulatedVsphere::USER,
            SimulatedVsphere::PASSWORD,
            vc.uri(),
            String::new(),
        ),
    ];
    let mut clouds = Vec::new();
    for (vendor, key, secret, address, region) in secrets {
        let sealed = NewSecret::new(vendor, key, secret)
            .with_description(format!("demo {vendor} account"))
            .with_allowed_regions(["*"])
            .with_request_rate(200)
            .with_address(address)
            // The simulated vCenter listens on plain http on 127.0.0.1.
            .with_allow_insecure_http(vendor == Vendor::Vsphere)
            .seal(&cipher)?;
        store.create(&sealed).await?;
        clouds.push(Cloud {
            vendor,
            region,
            secret_id: sealed.id,
        });
    }
    let listed = store.list(&Default::default()).await?;
    println!(
        "stored {} secrets, encrypted; as the API lists them:",
        listed.total
    );
    for s in &listed.items {
        println!(
            "  {:<8} api_key={:<14} api_secret={}  {}",
            s.vendor, s.api_key, s.api_secret, s.description
        );
    }

    let syncer = Syncer::new(
        store.clone(),
        store.clone(),
        cipher,
        ProviderRegistry::with_builtin_providers(),
    )
    .with_options(SyncOptions::default().with_private_addresses(true));
    let sync = |cloud: &Cloud| {
        SyncRequest::new(&cloud.secret_id, &cloud.region).with_details(DetailsMode::Failed)
    };

    println!("\nfirst sync:");
    for cloud in &clouds {
        print_run("first", cloud.vendor, &syncer.sync(sync(cloud)).await?);
    }

    // The clouds change: some hosts go away, some change, some are added.
    for id in (0..5).map(|i| ali.instance_id(i * 7)) {
        ali.remove_host(&id);
    }
    ali.update_host(&ali.instance_id(1), |h| h["Status"] = "Stopped".into());
    ali.add_hosts(12);
    let tc_ids = tc.instance_ids();
    for id in tc_ids.iter().take(3) {
        tc.remove_instance(id);
    }
    tc.update_instance(&tc_ids[10], |i| {
        i["InstanceName"] = "renamed-by-demo".into()
    });
    tc.add_instances(4);
    let hw_ids = hw.server_ids("cn-north-4");
    hw.remove_servers("cn-north-4", &hw_ids[..8]);
    hw.change_server("cn-north-4", &hw_ids[20], |s| {
        s["status"] = "SHUTOFF".into()
    });
    hw.add_servers("cn-north-4", 6);
    let vc_ids = vc.instance_uuids();
    vc.remove_vm(&vc_ids[0]);
    vc.set_power_state(&vc_ids[3], "poweredOff");

    println!("\nafter the clouds changed:");
    for cloud in &clouds {
        print_run("second", cloud.vendor, &syncer.sync(sync(cloud)).await?);
    }

    let active = store
        .query(&HostQuery::default().with_released(false).with_page_size(1))
        .await?;
    let released = store
        .query(&HostQuery::default().with_released(true).with_page_size(1))
        .await?;
    println!(
        "\n{DATABASE}: {} active hosts, {} released",
        active.total, released.total
    );
    for vendor in Vendor::ALL {
        let q = HostQuery::default()
            .with_vendor(*vendor)
            .with_sort(HostSort::Name)
            .with_page_size(1);
        if let Some(h) = store.query(&q).await?.items.first() {
            let host = &h.host;
            println!(
                "  {:<8} {:<38} {:<24} {:<9} {:>2} vCPU {:>6} MiB  {:<15} zone={}",
                host.vendor,
                host.instance_id,
                host.name.chars().take(24).collect::<String>(),
                host.status,
                host.cpu.unwrap_or_default(),
                host.memory_mib.unwrap_or_default(),
                host.private_ips.first().map(String::as_str).unwrap_or("-"),
                host.zone.as_deref().unwrap_or("-"),
            );
        }
    }
    databases(&store, &syncer).await?;
    println!("\nquery it yourself: sqlite3 {DATABASE} 'select vendor, instance_id, name, status from cmdb_hosts limit 5'");
    Ok(())
}

/// The second resource type: the database instances (RDS) of three simulated clouds,
/// synced into the same database, then synced again after one of each is deleted.
async fn databases(store: &Arc<SqlStore>, syncer: &Syncer) -> Result<(), BoxError> {
    println!("\ndatabase instances (rds):");
    let ali = SimulatedAliyunRds::start("cn-hangzhou", 40).await;
    let tc = SimulatedTencentCdb::start("ap-guangzhou", 25).await;
    let hw = SimulatedHuaweiRds::start("cn-north-4", 30).await;
    let accounts = [
        (
            Vendor::Aliyun,
            ali.access_key_id(),
            ali.access_key_secret(),
            ali.uri(),
            "cn-hangzhou",
        ),
        (
            Vendor::Tencent,
            tc.secret_id(),
            tc.secret_key(),
            tc.uri(),
            "ap-guangzhou",
        ),
        (
            Vendor::Huawei,
            huawei_rds::ACCESS_KEY.to_owned(),
            huawei_rds::SECRET_KEY.to_owned(),
            hw.uri(),
            "cn-north-4",
        ),
    ];
    let cipher = syncer.cipher().ok_or("the demo's syncer has a cipher")?;
    let syncer = syncer.clone().with_database_store(store.clone());
    let mut requests = Vec::new();
    for (vendor, key, secret, address, region) in accounts {
        let sealed = NewSecret::new(vendor, key, secret)
            .with_description(format!("demo {vendor} databases"))
            .with_allowed_regions([region])
            .with_request_rate(200)
            .with_address(address)
            .seal(cipher)?;
        store.create(&sealed).await?;
        let request = SyncRequest::new(&sealed.id, region)
            .with_resource_type(ResourceType::Rds)
            .with_details(DetailsMode::Failed);
        print_run("first", vendor, &syncer.sync(request.clone()).await?);
        requests.push((vendor, request));
    }
    ali.remove_instance(&ali.instance_id(2));
    tc.remove_instance(&tc.instance_id(2));
    hw.remove_instance(&hw.instance_id(2));
    for (vendor, request) in requests {
        print_run("second", vendor, &syncer.sync(request).await?);
    }
    let q = DatabaseQuery::default()
        .with_released(false)
        .with_page_size(1000);
    let active = cmdb::core::DatabaseStore::query(&**store, &q).await?;
    println!("{DATABASE}: {} active database instances", active.total);
    for d in active.items.iter().take(3) {
        let db = &d.database;
        println!(
            "  {:<8} {:<28} {:<10} {:<6} {:<9} {:>2} vCPU {:>6} MiB",
            db.vendor,
            db.instance_id,
            db.engine.as_str(),
            db.engine_version.as_deref().unwrap_or("-"),
            db.status,
            db.cpu.unwrap_or_default(),
            db.memory_mib.unwrap_or_default(),
        );
    }
    Ok(())
}
