//! End-to-end sync benchmark: a simulated vendor from `cmdb-testkit` with `--hosts N`,
//! one full sync through [`Syncer`] into a store, one JSON line per vendor.
//!
//! ```text
//! cargo run --release --example bench --features sqlite -- --vendor all --hosts 100000 --page-size 100 \
//!     --latency-ms 20 --rate 40 --concurrency 4 --store sqlite
//! cargo run --release --example bench --features sqlite -- --vendor tencent --hosts 100000 --latency-ms 0 --rate 0
//! cargo run --release --example bench --features sqlite -- --vendor store --hosts 100000 --latency-ms 0 --rate 0
//! ```
//!
//! `--vendor store` lists no vendor: cmdb-testkit's `FakeProvider` makes the hosts in
//! process (a dozen fields each, no request, no decoding), so the run measures the sync
//! pipeline and the store alone, and prints no bound.
//!
//! `--vendor accounts --regions 4` syncs three whole accounts at once (Alibaba Cloud,
//! Tencent Cloud, Huawei Cloud), each with `--regions` regions, through one `Syncer` and
//! one store as a server would: one `Syncer::sync_all` per account, its secret allowing
//! those regions, every region its own run, the account's regions sharing its secret's
//! rate limiter (`--rate`, 1 to 1000). `--hosts` is each account's inventory, spread
//! evenly over its regions, each region served by a simulator of its own (Huawei Cloud:
//! one simulator with a project per region). It prints one JSON line: the wall time of
//! the three, `bound_seconds` the slowest account's bound (its `hosts / page_size` pages
//! at its secret's rate, or the slowest region's `pages x latency / c` when that is
//! longer), their ratio, and each account's own figures.
//!
//! `bound_seconds` is the least time the vendor allows: every page costs one request, the
//! rate allows `rate` requests a second, and at most `c` requests are in flight, each
//! answered `latency` after it is sent. So it is `max(pages / rate, pages x latency / c)`,
//! with `c` the concurrency for offset paging (Tencent, Huawei) and 1 for token paging
//! (Aliyun, vSphere), where a request needs the token of the answer before it, and a rate
//! of 0 meaning unlimited. `ratio_to_bound` is `seconds / bound_seconds` (null when the
//! bound is 0).
//!
//! `latency_bound_seconds` is `pages x latency / c` alone, the bound if the rate did not
//! limit, and `ratio_to_latency_bound` the ratio to it. For token paging no client can come
//! near it when the rate is the tighter limit (at 40 requests/s and 20 ms, 1,000 pages take
//! 25 s, not 20 s), but with the rate above `1 / latency` (or 0) it shows how close the
//! pipeline keeps to the latency.
//!
//! `hash_ns` is how long `content_hash` of cmdb-testkit's reference host took just before
//! and just after the sync (the mean of both), as the `host/content_hash` criterion
//! benchmark measures it: the speed of this machine at the time, to compare runs made at
//! different times or on different machines.
//!
//! The simulators answer each request `latency` after they begin to handle it: building
//! an answer is part of its latency, as on a vendor's side.
//!
//! The simulator runs in a child process (this program started again with the hidden
//! `--simulator` flag), so `peak_rss_mb` (VmHWM of this process) counts the syncing side
//! only: the provider, the pipeline, the store and its connection pool, and the tokio
//! runtime. The simulator's own peak is reported apart as `simulator_peak_rss_mb`. Both
//! processes share the machine's cores, as an in-process simulator would.
//!
//! `--store sqlite` (the default) is a fresh SQLite file in the temporary directory;
//! `sqlite://path` is used as given. `postgres://…` and `mysql://…` need the `postgres`
//! / `mysql` features of the facade and get a fresh schema each run. `memory` keeps every
//! host in memory, so its peak grows with the inventory.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use cmdb::core::{HostProvider, HostStore, MemoryHostStore, Vendor};
use cmdb::http::{HttpConfig, RateLimiter};
use cmdb::secret::{Cipher, MemorySecretStore, NewSecret, SecretStore};
use cmdb::store_sql::SqlStore;
use cmdb::sync::{
    DetailsMode, ProviderContext, ProviderRegistry, SyncOptions, SyncRequest, Syncer,
};
use serde_json::json;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Which {
    Aliyun,
    Tencent,
    Huawei,
    Vsphere,
    All,
    /// No vendor: hosts made in process, for the pipeline and the store alone.
    Store,
    /// Three whole accounts at once (Alibaba Cloud, Tencent Cloud, Huawei Cloud), each
    /// with `--regions` regions.
    Accounts,
}

/// One full sync from a simulated vendor into a store; prints one JSON line per vendor.
#[derive(Debug, Clone, Parser)]
#[command(args_override_self = true)]
struct Args {
    /// The vendor to simulate, all four one after the other, or `store`: no vendor, hosts
    /// made in process (cmdb-testkit's `FakeProvider`), to measure the pipeline and the
    /// store alone.
    #[arg(long, value_enum, default_value = "all")]
    vendor: Which,
    /// Hosts in the simulated inventory.
    #[arg(long, default_value_t = 100_000)]
    hosts: u64,
    /// Hosts asked for per page.
    #[arg(long, default_value_t = 100)]
    page_size: u32,
    /// Delay the simulator adds to every answer, in milliseconds.
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
    /// Requests per second allowed to the vendor; 0 is unlimited.
    #[arg(long, default_value_t = 40)]
    rate: u32,
    /// Pages in flight at most (offset-paged vendors: Tencent, Huawei).
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// `memory`, `sqlite` (a fresh temporary file), `sqlite://path`, `postgres://…`, `mysql://…`.
    #[arg(long, default_value = "sqlite")]
    store: String,
    /// Regions of each account (`--vendor accounts`; 1 to 8), `--hosts` spread over them.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=8))]
    regions: u8,
    /// Internal: serve the simulator of `--vendor` and print its address.
    #[arg(long, hide = true)]
    simulator: bool,
}

const VENDORS: [Which; 4] = [Which::Aliyun, Which::Tencent, Which::Huawei, Which::Vsphere];

fn vendor_of(which: Which) -> Vendor {
    match which {
        Which::Aliyun => Vendor::Aliyun,
        Which::Tencent => Vendor::Tencent,
        Which::Huawei => Vendor::Huawei,
        Which::Vsphere | Which::All => Vendor::Vsphere,
        Which::Store | Which::Accounts => Vendor::Aliyun,
    }
}

/// The regions of a simulated account of `vendor` (`--vendor accounts`).
fn account_regions(vendor: Vendor, n: u8) -> Vec<String> {
    let all: [&str; 8] = match vendor {
        Vendor::Aliyun => [
            "cn-hangzhou",
            "cn-beijing",
            "cn-shanghai",
            "cn-shenzhen",
            "cn-qingdao",
            "cn-zhangjiakou",
            "cn-hongkong",
            "ap-southeast-1",
        ],
        Vendor::Tencent => [
            "ap-guangzhou",
            "ap-shanghai",
            "ap-beijing",
            "ap-chengdu",
            "ap-nanjing",
            "ap-hongkong",
            "ap-singapore",
            "ap-tokyo",
        ],
        _ => [
            "cn-north-4",
            "cn-east-3",
            "cn-south-1",
            "cn-southwest-2",
            "ap-southeast-1",
            "ap-southeast-3",
            "af-south-1",
            "la-south-2",
        ],
    };
    all.iter()
        .take(usize::from(n))
        .map(|r| (*r).to_owned())
        .collect()
}

/// The hosts of region `i` of `regions` when an account of `hosts` spreads them evenly.
fn hosts_of_region(hosts: u64, regions: u8, i: usize) -> u64 {
    let n = u64::from(regions.max(1));
    hosts / n + u64::from((i as u64) < hosts % n)
}

/// This process's peak resident set (`VmHWM`), in MiB.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// The child: starts the simulator, prints `<uri> <region>` (with `--regions`, one pair
/// per region on the line), serves until stdin closes, then prints its own peak RSS.
async fn serve(args: &Args) -> Result<(), BoxError> {
    if args.regions > 1 {
        return serve_regions(args).await;
    }
    let latency = (args.latency_ms > 0).then(|| Duration::from_millis(args.latency_ms));
    // Keep the simulator alive in `_sim` until stdin closes.
    let (uri, region, _sim): (String, String, Box<dyn std::any::Any + Send>) = match args.vendor {
        Which::Aliyun => {
            let sim = cmdb_testkit::aliyun::SimulatedAliyun::start("cn-hangzhou", args.hosts).await;
            sim.set_latency(latency);
            (sim.uri(), sim.region(), Box::new(sim))
        }
        Which::Tencent => {
            let sim = cmdb_testkit::tencent::SimulatedTencent::start(args.hosts).await;
            sim.set_latency(latency);
            (sim.uri(), sim.region(), Box::new(sim))
        }
        Which::Huawei => {
            let sim = cmdb_testkit::huawei::SimulatedHuawei::start("cn-north-4", args.hosts).await;
            sim.set_latency(latency);
            (sim.uri(), "cn-north-4".to_owned(), Box::new(sim))
        }
        Which::Vsphere | Which::All | Which::Store | Which::Accounts => {
            let hosts = usize::try_from(args.hosts)?;
            let sim = cmdb_testkit::vsphere::SimulatedVsphere::start(&[("dc-bench", hosts)]).await;
            sim.set_latency(latency);
            (sim.uri(), String::new(), Box::new(sim))
        }
    };
    println!("{uri} {region}");
    serve_until_stdin_closes().await
}

/// Flushes what was printed, serves until stdin closes, then prints the peak RSS.
async fn serve_until_stdin_closes() -> Result<(), BoxError> {
    std::io::stdout().flush()?;
    tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
    })
    .await?;
    println!("{}", peak_rss_mb().unwrap_or(f64::NAN));
    Ok(())
}

/// The child of one account of `--vendor accounts`: `--hosts` spread over `--regions`
/// regions, each served by a simulator of its own (Huawei Cloud: one simulator, a
/// project per region); prints `<uri> <region>` for each on one line.
async fn serve_regions(args: &Args) -> Result<(), BoxError> {
    let latency = (args.latency_ms > 0).then(|| Duration::from_millis(args.latency_ms));
    let vendor = vendor_of(args.vendor);
    let regions = account_regions(vendor, args.regions);
    let mut pairs: Vec<String> = Vec::new();
    let mut sims: Vec<Box<dyn std::any::Any + Send>> = Vec::new();
    match args.vendor {
        Which::Huawei => {
            let sim = cmdb_testkit::huawei::SimulatedHuawei::start(
                &regions[0],
                hosts_of_region(args.hosts, args.regions, 0),
            )
            .await;
            for (i, region) in regions.iter().enumerate().skip(1) {
                sim.add_region(region, hosts_of_region(args.hosts, args.regions, i));
            }
            sim.set_latency(latency);
            pairs.extend(regions.iter().map(|r| format!("{} {r}", sim.uri())));
            sims.push(Box::new(sim));
        }
        Which::Aliyun | Which::Tencent => {
            for (i, region) in regions.iter().enumerate() {
                let hosts = hosts_of_region(args.hosts, args.regions, i);
                let (uri, sim): (String, Box<dyn std::any::Any + Send>) =
                    if args.vendor == Which::Aliyun {
                        let sim = cmdb_testkit::aliyun::SimulatedAliyun::start(region, hosts).await;
                        sim.set_latency(latency);
                        (sim.uri(), Box::new(sim))
                    } else {
                        let sim = cmdb_testkit::tencent::SimulatedTencent::start_with(
                            cmdb_testkit::tencent::SECRET_ID,
                            cmdb_testkit::tencent::SECRET_KEY,
                            region,
                            hosts,
                        )
                        .await;
                        sim.set_latency(latency);
                        (sim.uri(), Box::new(sim))
                    };
                pairs.push(format!("{uri} {region}"));
                sims.push(sim);
            }
        }
        other => return Err(format!("no account of several regions for {other:?}").into()),
    }
    println!("{}", pairs.join(" "));
    serve_until_stdin_closes().await
}

/// The endpoint and the rate limiter a provider of the benchmark gets for a run.
type Pick = Arc<dyn Fn(&ProviderContext) -> (String, Arc<RateLimiter>) + Send + Sync>;

/// The factories of the four providers with the benchmark's page size and concurrency,
/// and the endpoint and rate limiter `pick` chooses for each run.
fn registry(args: &Args, pick: Pick) -> ProviderRegistry {
    let page_size = args.page_size;
    let concurrency = args.concurrency.max(1);
    let http = move |ctx: &ProviderContext| {
        ctx.http
            .clone()
            .with_max_in_flight(concurrency.max(HttpConfig::default().max_in_flight))
    };
    let (p1, p2, p3, p4) = (pick.clone(), pick.clone(), pick.clone(), pick);
    ProviderRegistry::new()
        .with(Vendor::Aliyun, move |ctx: ProviderContext| {
            let (endpoint, limiter) = p1(&ctx);
            let p = cmdb::aliyun::AliyunBuilder::new()
                .with_http_config(http(&ctx))
                .with_endpoint(endpoint)
                .with_region(ctx.region.clone())
                .with_limiter(limiter)
                .with_page_size(page_size)
                .with_credentials(ctx.credentials)
                .build()?;
            Ok(Arc::new(p) as Arc<dyn HostProvider>)
        })
        .with(Vendor::Tencent, move |ctx: ProviderContext| {
            let (endpoint, limiter) = p2(&ctx);
            let p = cmdb::tencent::TencentBuilder::new()
                .with_http_config(http(&ctx))
                .with_endpoint(endpoint)
                .with_region(ctx.region.clone())
                .with_limiter(limiter)
                .with_page_size(u64::from(page_size))
                .with_concurrency(concurrency)
                .with_credentials(ctx.credentials)
                .build()?;
            Ok(Arc::new(p) as Arc<dyn HostProvider>)
        })
        .with(Vendor::Huawei, move |ctx: ProviderContext| {
            let (endpoint, limiter) = p3(&ctx);
            let p = cmdb::huawei::HuaweiBuilder::new()
                .with_http_config(http(&ctx))
                .with_endpoint(endpoint)
                .with_region(ctx.region.clone())
                .with_limiter(limiter)
                .with_page_size(page_size)
                .with_concurrency(concurrency)
                .with_credentials(ctx.credentials)
                .build()?;
            Ok(Arc::new(p) as Arc<dyn HostProvider>)
        })
        .with(Vendor::Vsphere, move |ctx: ProviderContext| {
            let (endpoint, limiter) = p4(&ctx);
            let p = cmdb::vsphere::VsphereBuilder::new()
                .with_http_config(http(&ctx))
                .with_endpoint(endpoint)
                .with_limiter(limiter)
                .with_page_size(page_size)
                .with_credentials(ctx.credentials)
                .build()?;
            Ok(Arc::new(p) as Arc<dyn HostProvider>)
        })
}

/// The stores of one run: hosts and secrets.
async fn stores(
    spec: &str,
    name: &str,
) -> Result<(Arc<dyn HostStore>, Arc<dyn SecretStore>, Option<String>), BoxError> {
    if spec == "memory" {
        return Ok((
            Arc::new(MemoryHostStore::new()),
            Arc::new(MemorySecretStore::new()),
            None,
        ));
    }
    let (url, temp) = if spec == "sqlite" {
        let path =
            std::env::temp_dir().join(format!("cmdb-bench-{}-{name}.db", std::process::id()));
        let path = path.display().to_string();
        (format!("sqlite://{path}"), Some(path))
    } else {
        (spec.to_owned(), None)
    };
    let mut builder = SqlStore::builder(url.clone());
    if url.starts_with("postgres") || url.starts_with("mysql") {
        builder = builder.schema(format!("bench_{}", std::process::id()));
    }
    let store = Arc::new(builder.connect().await?);
    Ok((store.clone(), store, temp))
}

/// The simulator of one vendor in a child process: its stdin (closing it stops it), its
/// stdout (where it prints its peak RSS once stopped), the child.
struct Simulator {
    from_sim: BufReader<std::process::ChildStdout>,
    child: std::process::Child,
}

impl Simulator {
    /// Starts the simulator of `vendor`; answers it with its address and region.
    fn start(args: &Args, vendor: Vendor) -> Result<(Simulator, String, String), BoxError> {
        let (simulator, mut served) = Simulator::start_regions(args, vendor, 1)?;
        let (uri, region) = served.pop().ok_or("the simulator printed no address")?;
        Ok((simulator, uri, region))
    }

    /// Starts the simulators of an account of `vendor` with `regions` regions; answers
    /// them with the address and region of each.
    fn start_regions(
        args: &Args,
        vendor: Vendor,
        regions: u8,
    ) -> Result<(Simulator, Vec<(String, String)>), BoxError> {
        let mut child = Command::new(std::env::current_exe()?)
            .args([
                "--simulator",
                "--vendor",
                vendor.as_str(),
                "--hosts",
                &args.hosts.to_string(),
                "--latency-ms",
                &args.latency_ms.to_string(),
                "--regions",
                &regions.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut from_sim = BufReader::new(child.stdout.take().ok_or("no simulator stdout")?);
        let mut line = String::new();
        from_sim.read_line(&mut line)?;
        // `<uri> <region>` pairs; vSphere's region is empty, so its line is the uri alone.
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() {
            return Err("the simulator printed no address".into());
        }
        let served = words
            .chunks(2)
            .map(|pair| {
                let region = pair.get(1).copied().unwrap_or_default();
                (pair[0].to_owned(), region.to_owned())
            })
            .collect();
        Ok((Simulator { from_sim, child }, served))
    }

    /// Stops the simulator; answers its peak RSS.
    fn stop(mut self) -> Result<Option<f64>, BoxError> {
        drop(self.child.stdin.take());
        let mut line = String::new();
        self.from_sim.read_line(&mut line)?;
        self.child.wait()?;
        Ok(line.trim().parse().ok())
    }
}

/// One vendor: its simulator in a child process (none for `store`), one sync, one JSON
/// line.
async fn run(args: &Args, which: Which) -> Result<(), BoxError> {
    let vendor = vendor_of(which);
    let (simulator, uri, region) = if which == Which::Store {
        (
            None,
            "http://127.0.0.1:9".to_owned(),
            "bench-region".to_owned(),
        )
    } else {
        let (simulator, uri, region) = Simulator::start(args, vendor)?;
        (Some(simulator), uri, region)
    };

    let (hosts, secrets, temp) = stores(&args.store, vendor.as_str()).await?;
    let cipher = Arc::new(Cipher::new(Cipher::generate_key()));
    let (key, secret) = simulated_keys(vendor);
    let sealed = NewSecret::new(vendor, key, secret)
        .with_description("bench")
        .with_allowed_regions(["*"])
        .with_request_rate(args.rate.clamp(1, 1000))
        .with_address(uri)
        // The simulated vCenter listens on plain http on 127.0.0.1.
        .with_allow_insecure_http(vendor == Vendor::Vsphere)
        .seal(&cipher)?;
    secrets.create(&sealed).await?;
    let limiter = Arc::new(RateLimiter::per_second(args.rate));
    let registry = if which == Which::Store {
        let (hosts, page_size) = (args.hosts, u64::from(args.page_size));
        ProviderRegistry::new().with(Vendor::Aliyun, move |ctx: ProviderContext| {
            let p = cmdb_testkit::FakeProvider::new(Vendor::Aliyun, ctx.region, hosts, page_size);
            Ok(Arc::new(p) as Arc<dyn HostProvider>)
        })
    } else {
        // One limiter for the run (a rate of 0 is unlimited, which secrets themselves
        // cannot say).
        registry(
            args,
            Arc::new(move |ctx: &ProviderContext| {
                (ctx.endpoint.clone().unwrap_or_default(), limiter.clone())
            }),
        )
    };
    // The simulators listen on 127.0.0.1.
    let syncer = Syncer::new(secrets, hosts, cipher, registry)
        .with_options(SyncOptions::default().with_private_addresses(true));

    let hash_before = hash_ns();
    let started = Instant::now();
    let response = syncer
        .sync(SyncRequest::new(&sealed.id, &region).with_details(DetailsMode::None))
        .await?;
    let seconds = started.elapsed().as_secs_f64();
    let peak = peak_rss_mb();
    let hash = (hash_before + hash_ns()) / 2.0;

    let sim_peak = match simulator {
        Some(simulator) => simulator.stop()?,
        None => None,
    };
    drop(syncer);
    if let Some(path) = temp {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
    }

    let pages = args.hosts.div_ceil(u64::from(args.page_size.max(1))).max(1) as f64;
    // Hosts made in process take no request: no vendor bound.
    let store_only = which == Which::Store;
    let latency = if store_only {
        0.0
    } else {
        args.latency_ms as f64 / 1000.0
    };
    let offset_paged = matches!(vendor, Vendor::Tencent | Vendor::Huawei);
    let by_rate = if args.rate == 0 || store_only {
        0.0
    } else {
        pages / f64::from(args.rate)
    };
    // Token paging waits for each answer's token: one request in flight.
    let in_flight = if offset_paged {
        args.concurrency.max(1) as f64
    } else {
        1.0
    };
    let by_latency = pages * latency / in_flight;
    let bound = by_rate.max(by_latency);
    let line = json!({
        "vendor": if store_only { "store" } else { vendor.as_str() },
        "hosts": args.hosts,
        "stored": response.total_succeed,
        "complete": response.complete,
        "pages": response.pages,
        "page_size": args.page_size,
        "latency_ms": args.latency_ms,
        "rate": args.rate,
        "concurrency": if offset_paged { args.concurrency } else { 1 },
        "store": args.store.split("://").next().unwrap_or_default(),
        "seconds": round(seconds, 3),
        "hosts_per_sec": round(response.total_succeed as f64 / seconds, 0),
        "bound_seconds": round(bound, 3),
        "ratio_to_bound": (bound > 0.0).then(|| round(seconds / bound, 3)),
        "latency_bound_seconds": round(by_latency, 3),
        "ratio_to_latency_bound": (by_latency > 0.0).then(|| round(seconds / by_latency, 3)),
        "peak_rss_mb": peak.map(|p| round(p, 1)),
        "simulator_peak_rss_mb": sim_peak.map(|p| round(p, 1)),
        "hash_ns": round(hash, 0),
    });
    println!("{line}");
    Ok(())
}

/// The vendors of `--vendor accounts`.
const ACCOUNT_VENDORS: [Vendor; 3] = [Vendor::Aliyun, Vendor::Tencent, Vendor::Huawei];

/// The key pair the simulators of `vendor` accept.
fn simulated_keys(vendor: Vendor) -> (&'static str, &'static str) {
    match vendor {
        Vendor::Aliyun => (
            cmdb_testkit::aliyun::DEFAULT_ACCESS_KEY_ID,
            cmdb_testkit::aliyun::DEFAULT_ACCESS_KEY_SECRET,
        ),
        Vendor::Tencent => (
            cmdb_testkit::tencent::SECRET_ID,
            cmdb_testkit::tencent::SECRET_KEY,
        ),
        Vendor::Huawei => (
            cmdb_testkit::huawei::ACCESS_KEY,
            cmdb_testkit::huawei::SECRET_KEY,
        ),
        _ => (
            cmdb_testkit::vsphere::SimulatedVsphere::USER,
            cmdb_testkit::vsphere::SimulatedVsphere::PASSWORD,
        ),
    }
}

/// `--vendor accounts`: three whole accounts synced at once, one line of JSON.
async fn run_accounts(args: &Args) -> Result<(), BoxError> {
    let rate = args.rate.clamp(1, 1000);
    let mut simulators = Vec::new();
    // (vendor, region) -> the simulator serving it.
    let mut endpoints: HashMap<(Vendor, String), String> = HashMap::new();
    for vendor in ACCOUNT_VENDORS {
        let (simulator, served) = Simulator::start_regions(args, vendor, args.regions)?;
        for (uri, region) in served {
            endpoints.insert((vendor, region), uri);
        }
        simulators.push((vendor, simulator));
    }
    let (hosts, secrets, temp) = stores(&args.store, "accounts").await?;
    let cipher = Arc::new(Cipher::new(Cipher::generate_key()));
    let mut accounts = Vec::new();
    for vendor in ACCOUNT_VENDORS {
        let regions = account_regions(vendor, args.regions);
        let (key, secret) = simulated_keys(vendor);
        let sealed = NewSecret::new(vendor, key, secret)
            .with_description("bench account")
            .with_allowed_regions(regions.clone())
            .with_request_rate(rate)
            // Each region's provider is sent to its region's simulator (see below).
            .with_address(endpoints[&(vendor, regions[0].clone())].clone())
            .seal(&cipher)?;
        secrets.create(&sealed).await?;
        accounts.push((vendor, sealed.id, regions));
    }
    // Each region to its simulator; every run of an account draws from the limiter the
    // syncer keeps for its secret, as in a server.
    let endpoints = Arc::new(endpoints);
    let registry = registry(
        args,
        Arc::new(move |ctx: &ProviderContext| {
            let endpoint = endpoints
                .get(&(ctx.vendor, ctx.region.clone()))
                .cloned()
                .unwrap_or_default();
            (endpoint, ctx.limiter.clone())
        }),
    );
    let syncer = Syncer::new(secrets, hosts, cipher, registry)
        .with_options(SyncOptions::default().with_private_addresses(true));

    let hash_before = hash_ns();
    let started = Instant::now();
    let runs = futures::future::join_all(accounts.iter().map(|(vendor, id, _)| {
        let syncer = &syncer;
        async move {
            let request = SyncRequest::new(id, "*").with_details(DetailsMode::None);
            let response = syncer.sync_all(request).await;
            (*vendor, response, started.elapsed().as_secs_f64())
        }
    }))
    .await;
    let seconds = started.elapsed().as_secs_f64();
    let peak = peak_rss_mb();
    let hash = (hash_before + hash_ns()) / 2.0;
    let mut simulator_peaks = serde_json::Map::new();
    for (vendor, simulator) in simulators {
        let peak = simulator.stop()?.map(|p| round(p, 1));
        simulator_peaks.insert(vendor.as_str().to_owned(), json!(peak));
    }
    drop(syncer);
    if let Some(path) = temp {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
    }

    // An account cannot be faster than its pages at its secret's rate (the regions
    // share it), nor than its slowest region's pages one latency each, `c` in flight.
    let latency = args.latency_ms as f64 / 1000.0;
    let page_size = u64::from(args.page_size.max(1));
    let mut bound: f64 = 0.0;
    let mut lines = Vec::new();
    for (vendor, response, account_seconds) in runs {
        let response = response?;
        let region_pages: Vec<u64> = (0..usize::from(args.regions))
            .map(|i| {
                hosts_of_region(args.hosts, args.regions, i)
                    .div_ceil(page_size)
                    .max(1)
            })
            .collect();
        let pages: u64 = region_pages.iter().sum();
        let in_flight = if matches!(vendor, Vendor::Tencent | Vendor::Huawei) {
            args.concurrency.max(1) as f64
        } else {
            1.0
        };
        let slowest_region = region_pages.iter().copied().max().unwrap_or(1) as f64;
        let account_bound =
            (pages as f64 / f64::from(rate)).max(slowest_region * latency / in_flight);
        bound = bound.max(account_bound);
        lines.push(json!({
            "vendor": vendor.as_str(),
            "regions": response.regions.len(),
            "complete_regions": response.regions.iter().filter(|r| r.complete).count(),
            "stored": response.total_succeed,
            "complete": response.complete,
            "pages": response.pages,
            "seconds": round(account_seconds, 3),
            "bound_seconds": round(account_bound, 3),
            "ratio_to_bound": round(account_seconds / account_bound, 3),
        }));
    }
    let line = json!({
        "vendor": "accounts",
        "accounts": lines.len(),
        "regions_per_account": args.regions,
        "hosts_per_account": args.hosts,
        "page_size": args.page_size,
        "latency_ms": args.latency_ms,
        "rate": rate,
        "concurrency": args.concurrency,
        "store": args.store.split("://").next().unwrap_or_default(),
        "seconds": round(seconds, 3),
        "bound_seconds": round(bound, 3),
        "ratio_to_bound": round(seconds / bound, 3),
        "per_account": lines,
        "peak_rss_mb": peak.map(|p| round(p, 1)),
        "simulator_peak_rss_mb": simulator_peaks,
        "hash_ns": round(hash, 0),
    });
    println!("{line}");
    Ok(())
}

/// Nanoseconds `content_hash` of cmdb-testkit's reference host takes on this machine now
/// (the mean of 0.1 s of hashing): the host and the code of the `host/content_hash`
/// criterion benchmark, so that a run's figures can be put in units of the machine's
/// speed at the time.
fn hash_ns() -> f64 {
    let host = cmdb_testkit::reference_host();
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_millis(100) {
        for _ in 0..64 {
            std::hint::black_box(std::hint::black_box(&host).content_hash());
        }
        n += 64;
    }
    started.elapsed().as_nanos() as f64 / n as f64
}

fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if args.simulator {
        return runtime.block_on(serve(&args));
    }
    if args.vendor == Which::Accounts {
        return runtime.block_on(run_accounts(&args));
    }
    let vendors: Vec<Which> = match args.vendor {
        Which::All => VENDORS.to_vec(),
        one => vec![one],
    };
    if vendors.len() > 1 {
        // One process per vendor, so that each peak RSS is that vendor's own.
        for which in vendors {
            let status = Command::new(std::env::current_exe()?)
                .args(std::env::args_os().skip(1))
                .args(["--vendor", vendor_of(which).as_str()])
                .status()?;
            if !status.success() {
                return Err(format!("the {} run failed: {status}", vendor_of(which)).into());
            }
        }
        return Ok(());
    }
    runtime.block_on(run(&args, vendors[0]))
}
