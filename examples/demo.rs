//! A demo sync: a simulated cloud of 1,234 hosts in two regions, synced three times into
//! an in-memory store, showing created, unchanged, updated and released hosts and the
//! release guard. Run with `cargo run --example demo`.

use std::sync::Arc;

use cmdb::core::{HostProvider, HostQuery, HostStatus, HostStore, MemoryHostStore, Vendor};
use cmdb::secret::{Cipher, MemorySecretStore, NewSecret, SecretStore};
use cmdb::sync::{
    DetailsMode, ProviderContext, ProviderRegistry, SyncRequest, SyncResponse, Syncer,
};
use cmdb_testkit::FakeProvider;

/// The simulated cloud: how many hosts each run lists, and which are changed.
fn registry(hosts: u64, stop_every: u64) -> ProviderRegistry {
    ProviderRegistry::new().with(Vendor::Aliyun, move |ctx: ProviderContext| {
        let provider =
            FakeProvider::new(Vendor::Aliyun, ctx.region, hosts, 100).with_host_fn(move |h| {
                let n: u64 = h
                    .instance_id
                    .rsplit('-')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                if stop_every > 0 && n % stop_every == 0 {
                    h.status = HostStatus::Stopped;
                    h.raw_status = "Stopped".into();
                }
            });
        let p: Arc<dyn HostProvider> = Arc::new(provider);
        Ok(p)
    })
}

fn summary(label: &str, r: &SyncResponse) {
    println!(
        "{label:<34} pages={:<3} succeed={:<5} failed={} created={:<5} updated={:<4} unchanged={:<5} released={:<4} complete={} {}",
        r.pages,
        r.total_succeed,
        r.total_failed,
        r.created,
        r.updated,
        r.unchanged,
        r.released,
        r.complete,
        r.release_skipped.as_deref().map(|s| format!("\n{:<35}release skipped: {s}", "")).unwrap_or_default()
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cipher = Arc::new(Cipher::new(Cipher::generate_key()));
    let secrets = Arc::new(MemorySecretStore::new());
    let hosts = Arc::new(MemoryHostStore::new());

    let secret = NewSecret {
        vendor: Vendor::Aliyun,
        description: "demo account".into(),
        api_key: "LTAI5tDemoAccessKey".into(),
        api_secret: String::from("demo-secret-never-printed").into(),
        allowed_regions: vec!["cn-hangzhou".into(), "cn-beijing".into()],
        request_rate: Some(50),
        address: None,
    }
    .seal(&cipher)?;
    secrets.create(&secret).await?;
    println!(
        "stored secret (masked): {}",
        serde_json::to_string(&secret.masked())?
    );

    let sync = |hosts_listed: u64, stop_every: u64| {
        Syncer::new(
            secrets.clone(),
            hosts.clone(),
            cipher.clone(),
            registry(hosts_listed, stop_every),
        )
    };
    let request = SyncRequest::new(&secret.id, "cn-hangzhou").with_details(DetailsMode::None);

    summary(
        "first sync (1,234 hosts)",
        &sync(1234, 0).sync(request.clone()).await?,
    );
    summary(
        "same listing again",
        &sync(1234, 0).sync(request.clone()).await?,
    );
    summary(
        "every 100th host stopped",
        &sync(1234, 100).sync(request.clone()).await?,
    );
    summary(
        "34 hosts gone",
        &sync(1200, 100).sync(request.clone()).await?,
    );
    summary(
        "empty listing (guard)",
        &sync(0, 100).sync(request.clone()).await?,
    );
    summary(
        "other region",
        &sync(300, 0)
            .sync(SyncRequest::new(&secret.id, "cn-beijing"))
            .await?,
    );

    let denied = sync(1, 0)
        .sync(SyncRequest::new(&secret.id, "us-west-1"))
        .await
        .unwrap_err();
    println!("region not allowed -> {denied}");

    let active = hosts
        .query(&HostQuery {
            released: Some(false),
            page_size: 3,
            ..HostQuery::default()
        })
        .await?;
    let released = hosts
        .query(&HostQuery {
            released: Some(true),
            ..HostQuery::default()
        })
        .await?;
    println!(
        "active hosts: {}, released hosts: {}",
        active.total, released.total
    );
    println!(
        "first active host: {}",
        serde_json::to_string_pretty(&active.items[0])?
    );
    let last = sync(1200, 100)
        .sync(SyncRequest::new(&secret.id, "cn-hangzhou").with_details(DetailsMode::Failed))
        .await?;
    println!("last response: {}", serde_json::to_string(&last)?);
    Ok(())
}
