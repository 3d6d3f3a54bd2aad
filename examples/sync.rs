//! Sync one region of a cloud account, several, or all of them, into the CMDB store,
//! from the command line.
//!
//! ```sh
//! export ALIBABA_CLOUD_ACCESS_KEY_ID=... ALIBABA_CLOUD_ACCESS_KEY_SECRET=...
//! cargo run --release --example sync --features full -- --vendor aliyun --region cn-hangzhou
//! # every region the vendor lists for the key, several at once within one request rate
//! cargo run --release --example sync --features full -- --vendor aliyun --region '*'
//! # the regions named
//! cargo run --release --example sync --features full -- --vendor aliyun --region cn-hangzhou,cn-beijing
//! # database instances (Alibaba Cloud RDS, Tencent Cloud CDB, Huawei Cloud RDS)
//! cargo run --release --example sync --features full -- --vendor aliyun --region cn-hangzhou --resource-type rds
//! ```
//!
//! With several regions each is its own run (one failing leaves the others going): the
//! table has one row per region and a total, `--json` prints the whole answer, with a
//! summary per region in `regions`.
//!
//! Credentials come from each vendor's own variables and are never stored: they go to
//! the sync as an [`Account`] in hand, with no secret store, and hosts are stored under an
//! id derived from the vendor and key so that releases stay within the same scope from
//! one run to the next.
//!
//! | vendor | variables |
//! |---|---|
//! | aliyun | `ALIBABA_CLOUD_ACCESS_KEY_ID`, `ALIBABA_CLOUD_ACCESS_KEY_SECRET` (and `ALIBABA_CLOUD_SECURITY_TOKEN` for STS credentials) |
//! | tencent | `TENCENTCLOUD_SECRET_ID`, `TENCENTCLOUD_SECRET_KEY` (and `TENCENTCLOUD_SESSION_TOKEN`) |
//! | huawei | `HUAWEICLOUD_SDK_AK`, `HUAWEICLOUD_SDK_SK` (and `HUAWEICLOUD_SDK_SECURITY_TOKEN`) |
//! | vsphere | `GOVC_URL`, `GOVC_USERNAME`, `GOVC_PASSWORD` |
//!
//! Exit codes: 0 complete, 1 failed (every region, with several), 2 bad usage, 3 partial
//! (an incomplete listing, hosts that failed to store, or some regions failed).

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use cmdb::core::{
    HostQuery, HostStore, MemoryHostStore, ResourceType, SyncScope, Vendor, MAX_PAGE_SIZE,
};
use cmdb::secret::Credentials;
use cmdb::store_sql::SqlStore;
use cmdb::sync::{
    Account, DetailsMode, SyncOptions, SyncProgress, SyncRequest, SyncResponse, SyncState, Syncer,
    ALL_REGIONS,
};

/// Sync one region of a cloud account, several, or all of them, into the CMDB store.
#[derive(Debug, Parser)]
#[command(name = "sync")]
struct Args {
    /// aliyun, tencent, huawei or vsphere.
    #[arg(long)]
    vendor: Vendor,
    /// The region to list (not needed for vsphere); `*` for every region the vendor
    /// lists for the key, or several regions separated by commas.
    #[arg(long, default_value = "")]
    region: String,
    /// What to sync: `host` (virtual machines) or `rds` (database instances; not
    /// vSphere).
    #[arg(long, default_value = "host")]
    resource_type: ResourceType,
    /// Endpoint override: a full http or https URL (private clouds, simulators).
    #[arg(long)]
    endpoint: Option<String>,
    /// Where hosts are stored.
    #[arg(long, env = "CMDB_DATABASE_URL", default_value = "sqlite://cmdb.db")]
    database_url: String,
    /// Print the sync response as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Release missing hosts even when the guard refuses (empty or mostly empty listing).
    #[arg(long)]
    force_release: bool,
    /// Lists and compares with the store without writing to it: prints what the vendor
    /// has and which stored hosts a sync would release (confirmed gone by id, as a real
    /// run does). Only read-only vendor calls are made.
    #[arg(long)]
    dry_run: bool,
    /// Requests per second sent to the vendor.
    #[arg(long, default_value_t = 10)]
    rate: u32,
    /// Allows a vSphere address over plain http (the password then crosses the network
    /// in clear).
    #[arg(long)]
    allow_insecure_http: bool,
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| format!("{name} is not set"))
}

/// The session token of temporary credentials from the vendor's own variable, if set.
fn session_token(vendor: Vendor) -> Option<String> {
    let name = match vendor {
        Vendor::Aliyun => "ALIBABA_CLOUD_SECURITY_TOKEN",
        Vendor::Tencent => "TENCENTCLOUD_SESSION_TOKEN",
        Vendor::Huawei => "HUAWEICLOUD_SDK_SECURITY_TOKEN",
        _ => return None,
    };
    env(name).ok()
}

/// The vendor's credentials from its own variables, and the endpoint they imply.
fn credentials(args: &Args) -> Result<(String, String, Option<String>), String> {
    let (key, secret, endpoint) = match args.vendor {
        Vendor::Aliyun => (
            env("ALIBABA_CLOUD_ACCESS_KEY_ID")?,
            env("ALIBABA_CLOUD_ACCESS_KEY_SECRET")?,
            None,
        ),
        Vendor::Tencent => (
            env("TENCENTCLOUD_SECRET_ID")?,
            env("TENCENTCLOUD_SECRET_KEY")?,
            None,
        ),
        Vendor::Huawei => (env("HUAWEICLOUD_SDK_AK")?, env("HUAWEICLOUD_SDK_SK")?, None),
        Vendor::Vsphere => {
            let url = env("GOVC_URL")?;
            let url = if url.contains("://") {
                url
            } else {
                format!("https://{url}")
            };
            (env("GOVC_USERNAME")?, env("GOVC_PASSWORD")?, Some(url))
        }
        other => {
            return Err(format!(
                "this example does not know where {other} credentials are kept"
            ))
        }
    };
    Ok((key, secret, args.endpoint.clone().or(endpoint)))
}

/// The TLS settings of a vSphere secret from govc's variables: `GOVC_TLS_CA_CERTS` (a
/// PEM file of extra roots) and `GOVC_INSECURE` (`1`/`true`: any certificate).
fn govc_tls(args: &Args) -> Result<(Option<String>, bool), String> {
    if args.vendor != Vendor::Vsphere {
        return Ok((None, false));
    }
    let ca = match env("GOVC_TLS_CA_CERTS") {
        Ok(path) => {
            Some(std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?)
        }
        Err(_) => None,
    };
    let insecure = env("GOVC_INSECURE")
        .map(|v| matches!(v.trim(), "1" | "true" | "TRUE" | "True"))
        .unwrap_or(false);
    Ok((ca, insecure))
}

/// Shows progress: an `indicatif` bar on a terminal, plain lines (at most one a second,
/// and the last) otherwise.
async fn show_progress(mut rx: watch::Receiver<SyncProgress>, quiet: bool) {
    let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(style("{spinner} hosts {pos} | {msg} | {rate}"));
        bar
    });
    let started = Instant::now();
    let mut last_line = Instant::now();
    while rx.changed().await.is_ok() {
        let p = rx.borrow_and_update().clone();
        if quiet || p.state == SyncState::Pending {
            continue;
        }
        if let Some(bar) = &bar {
            // A bar once the vendor's total is known, a spinner before.
            if let Some(total) = p
                .expected_total
                .filter(|t| *t > 0 && bar.length() != Some(*t))
            {
                bar.set_length(total);
                bar.set_style(style(
                    "[{bar:20}] hosts {pos}/{len} | {msg} | {rate}, ETA {eta}",
                ));
            }
            bar.set_position(p.hosts_seen);
            bar.set_message(format!(
                "pages {} | stored {} | failed {}",
                p.pages, p.stored, p.failed
            ));
        } else if last_line.elapsed() >= Duration::from_secs(1) || p.state != SyncState::Running {
            eprintln!("{}", progress_line(&p, started.elapsed()));
            last_line = Instant::now();
        }
        if p.state != SyncState::Running {
            break;
        }
    }
    if let Some(bar) = bar {
        bar.finish();
    }
}

/// A bar style whose `{rate}` reads like the plain lines' (`123 hosts/s`).
fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("a valid progress template")
        .progress_chars("#>.")
        .with_key(
            "rate",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0} hosts/s", state.per_sec());
            },
        )
}

/// One plain progress line, for logs and pipes.
fn progress_line(p: &SyncProgress, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(0.001);
    let rate = p.hosts_seen as f64 / secs;
    let eta = match p.expected_total {
        Some(total) if rate > 0.0 && total > p.hosts_seen => {
            format!(", ETA {:.0} s", (total - p.hosts_seen) as f64 / rate)
        }
        _ => String::new(),
    };
    let of = p
        .expected_total
        .map(|t| format!("/{t}"))
        .unwrap_or_default();
    format!(
        "pages {} | hosts {}{of} | stored {} | failed {} | {rate:.0} hosts/s{eta}",
        p.pages, p.hosts_seen, p.stored, p.failed
    )
}

/// The regions `--region` names when it names several (`a,b`), or `None`: one region,
/// or `*` (every region the vendor lists).
fn region_list(region: &str) -> Option<Vec<String>> {
    region.contains(',').then(|| {
        region
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

/// Whether `--region` asks for more than one region.
fn several_regions(region: &str) -> bool {
    region == ALL_REGIONS || region_list(region).is_some()
}

/// One row per region of a whole-account answer, then the total.
fn print_region_table(vendor: Vendor, r: &SyncResponse) {
    println!(
        "{:<18} {:<8} {:>6} {:>9} {:>6} {:>7} {:>7} {:>9} {:>8} {:>9}  error",
        "region",
        "complete",
        "pages",
        "succeeded",
        "failed",
        "created",
        "updated",
        "unchanged",
        "released",
        "elapsed"
    );
    for s in &r.regions {
        let counts = [
            s.pages,
            s.total_succeed,
            s.total_failed,
            s.created,
            s.updated,
            s.unchanged,
            s.released,
        ];
        let error = s.error.as_ref().map_or("", |e| e.message.as_str());
        print_region_row(&s.region, s.complete, counts, s.elapsed_ms, error);
    }
    let counts = [
        r.pages,
        r.total_succeed,
        r.total_failed,
        r.created,
        r.updated,
        r.unchanged,
        r.released,
    ];
    print_region_row(
        &format!("total ({vendor})"),
        r.complete,
        counts,
        r.elapsed_ms,
        "",
    );
    for d in r.details.iter().filter(|d| !d.is_success).take(20) {
        println!("failed     {} {}: {}", d.instance_id, d.name, d.message);
    }
}

/// A row of [`print_region_table`]: pages, succeeded, failed, created, updated, unchanged
/// and released in `counts`.
fn print_region_row(name: &str, complete: bool, counts: [u64; 7], ms: u64, error: &str) {
    let [pages, ok, failed, created, updated, unchanged, released] = counts;
    let elapsed = format!("{ms} ms");
    println!(
        "{name:<18} {complete:<8} {pages:>6} {ok:>9} {failed:>6} {created:>7} {updated:>7} \
         {unchanged:>9} {released:>8} {elapsed:>9}  {error}"
    );
}

fn print_table(vendor: Vendor, region: &str, r: &SyncResponse) {
    let rows = [
        ("vendor", vendor.to_string()),
        ("region", region.to_owned()),
        ("complete", r.complete.to_string()),
        ("pages", r.pages.to_string()),
        ("succeeded", r.total_succeed.to_string()),
        ("failed", r.total_failed.to_string()),
        ("created", r.created.to_string()),
        ("updated", r.updated.to_string()),
        ("unchanged", r.unchanged.to_string()),
        ("released", r.released.to_string()),
        ("alive", r.release_found_alive.to_string()),
        ("elapsed", format!("{} ms", r.elapsed_ms)),
    ];
    for (k, v) in rows {
        println!("{k:<10} {v}");
    }
    if let Some(reason) = &r.release_skipped {
        println!("{:<10} {reason}", "release");
    }
    if let Some(e) = &r.error {
        println!("{:<10} {}", "error", e.message);
    }
    for d in r.details.iter().filter(|d| !d.is_success).take(20) {
        println!("failed     {} {}: {}", d.instance_id, d.name, d.message);
    }
}

async fn run(args: Args) -> Result<SyncResponse, String> {
    let (api_key, api_secret, endpoint) = credentials(&args)?;
    let (tls_ca_pem, tls_skip_verify) = govc_tls(&args)?;
    // Credentials in hand: no secret store, no cipher. The hosts are stored under an id
    // derived from the vendor and key, so that releases stay within the same account
    // from one run to the next.
    let digest = Sha256::digest(api_key.as_bytes());
    let id = format!("cli-{}-{}", args.vendor, &hex(&digest)[..16]);
    let mut credentials = Credentials::new(api_key, api_secret);
    if let Some(token) = session_token(args.vendor) {
        credentials = credentials.with_session_token(token);
    }
    let mut account = Account::new(args.vendor, credentials)
        .with_request_rate(args.rate)
        .with_allow_insecure_http(args.allow_insecure_http)
        .with_tls_skip_verify(tls_skip_verify);
    account.endpoint = endpoint;
    account.tls_ca_pem = tls_ca_pem;
    let rds = args.resource_type == ResourceType::Rds;
    if rds && args.dry_run {
        return Err("--dry-run compares hosts only; leave it out with --resource-type rds".into());
    }
    let store = Arc::new(
        SqlStore::connect(&args.database_url)
            .await
            .map_err(|e| e.to_string())?,
    );
    let several = several_regions(&args.region);
    let hosts: Arc<dyn HostStore> = if args.dry_run {
        // A copy of the account's active hosts in memory: the run compares with it and
        // writes there, the database is only read.
        let region = if several {
            None
        } else {
            Some(args.region.as_str())
        };
        Arc::new(copy_of_active_hosts(&store, &id, args.vendor, region).await?)
    } else {
        store.clone()
    };
    // The endpoint is the operator's own choice on the command line, so it may be a
    // private or loopback address (a private cloud, a simulator).
    let syncer = Syncer::for_host_store(Arc::clone(&hosts))
        .with_options(SyncOptions::default().with_private_addresses(true))
        .with_database_store(store);

    // A list of regions is sent as "*": sync_account_regions syncs the ones it is given.
    let region = if several { ALL_REGIONS } else { &args.region };
    let request = SyncRequest::new(id, region)
        .with_resource_type(args.resource_type)
        .with_details(DetailsMode::Failed)
        .with_force_release(args.force_release);
    let response = if several {
        // Every region its own run, several at once; no progress bar for them.
        let result = match region_list(&args.region) {
            Some(regions) => syncer.sync_account_regions(request, account, regions).await,
            None => syncer.sync_account_all(request, account).await,
        };
        result.map_err(|e| e.to_string())?
    } else {
        let prepared = syncer
            .prepare_account(request, account)
            .await
            .map_err(|e| e.to_string())?;
        let (tx, rx) = watch::channel(SyncProgress::default());
        let progress = tokio::spawn(show_progress(rx, args.json));
        let result = prepared.with_progress(tx).run().await;
        let _ = progress.await;
        result.map_err(|e| e.to_string())?
    };
    if args.dry_run {
        let released = hosts
            .query(
                &HostQuery::default()
                    .with_released(true)
                    .with_page_size(MAX_PAGE_SIZE),
            )
            .await
            .map_err(|e| e.to_string())?;
        eprintln!(
            "dry run: nothing was written to {}; a sync would release {} hosts{}",
            cmdb::secret::redact_address(&args.database_url),
            response.released,
            if released.items.is_empty() { "" } else { ":" }
        );
        for h in &released.items {
            eprintln!("  {} {}", h.host.instance_id, h.host.name);
        }
    }
    Ok(response)
}

/// The active hosts `store` holds for the account `id` (in `region` when one is given,
/// but for vSphere, whose region is the vCenter), copied into a memory store as last
/// seen.
async fn copy_of_active_hosts(
    store: &SqlStore,
    id: &str,
    vendor: Vendor,
    region: Option<&str>,
) -> Result<MemoryHostStore, String> {
    let copy = MemoryHostStore::new();
    let mut query = HostQuery::default()
        .with_secret_id(id)
        .with_vendor(vendor)
        .with_released(false)
        .with_page_size(MAX_PAGE_SIZE);
    if let Some(region) = region.filter(|_| vendor.requires_region()) {
        query = query.with_region(region);
    }
    for page_number in 1.. {
        let page = store
            .query(&query.clone().with_page_number(page_number))
            .await
            .map_err(|e| e.to_string())?;
        for stored in &page.items {
            let h = &stored.host;
            let scope = SyncScope::new(id, vendor, h.region.clone(), ResourceType::Host);
            copy.upsert(&scope, std::slice::from_ref(h), stored.last_seen_at)
                .await
                .map_err(|e| e.to_string())?;
        }
        if page.items.len() < MAX_PAGE_SIZE as usize {
            break;
        }
    }
    Ok(copy)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let (vendor, region, json) = (args.vendor, args.region.clone(), args.json);
    match run(args).await {
        Ok(response) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&response).unwrap_or_default()
                );
            } else if response.regions.is_empty() {
                print_table(vendor, &region, &response);
            } else {
                print_region_table(vendor, &response);
            }
            // Several regions, none of which stored anything: that is a failure.
            let all_failed = !response.regions.is_empty()
                && response
                    .regions
                    .iter()
                    .all(|r| r.error.is_some() && r.total_succeed == 0);
            if response.complete && response.total_failed == 0 {
                ExitCode::SUCCESS
            } else if all_failed {
                if !json {
                    eprintln!("sync failed in every region");
                }
                ExitCode::FAILURE
            } else {
                ExitCode::from(3)
            }
        }
        Err(message) => {
            if json {
                println!("{}", serde_json::json!({"error": message}));
            }
            eprintln!("sync failed: {message}");
            ExitCode::FAILURE
        }
    }
}
