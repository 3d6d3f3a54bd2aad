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
        Which::Store => Vendor::Aliyun,
    }
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

/// The child: starts the simulator, prints `<uri> <region>`, serves until stdin closes,
/// then prints its own peak RSS.
async fn serve(args: &Args) -> Result<(), BoxError> {
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
        Which::Vsphere | Which::All | Which::Store => {
            let hosts = usize::try_from(args.hosts)?;
            let sim = cmdb_testkit::vsphere::SimulatedVsphere::start(&[("dc-bench", hosts)]).await;
            sim.set_latency(latency);
            (sim.uri(), String::new(), Box::new(sim))
        }
    };
    println!("{uri} {region}");
    std::io::stdout().flush()?;
    tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
    })
    .await?;
    println!("{}", peak_rss_mb().unwrap_or(f64::NAN));
    Ok(())
}

/// The factories of the four providers with the benchmark's page size, concurrency and
/// rate limiter (a rate of 0 is unlimited, which secrets themselves cannot say).
fn registry(args: &Args, limiter: Arc<RateLimiter>) -> ProviderRegistry {
    let page_size = args.page_size;
    let concurrency = args.concurrency.max(1);
    let http = move |ctx: &ProviderContext| {
        ctx.http
            .clone()
            .with_max_in_flight(concurrency.max(HttpConfig::default().max_in_flight))
    };
    let (l1, l2, l3, l4) = (
        limiter.clone(),
        limiter.clone(),
        limiter.clone(),
        limiter.clone(),
    );
    let endpoint = |ctx: &ProviderContext| ctx.endpoint.clone().unwrap_or_default();
    ProviderRegistry::new()
        .with(Vendor::Aliyun, move |ctx: ProviderContext| {
            let p = cmdb::aliyun::AliyunBuilder::new()
                .with_http_config(http(&ctx))
                .with_endpoint(endpoint(&ctx))
                .with_region(ctx.region.clone())
                .with_limiter(l1.clone())
                .with_page_size(page_size)
                .with_credentials(ctx.credentials)
                .build()?;
            Ok(Arc::new(p) as Arc<dyn HostProvider>)
        })
        .with(Vendor::Tencent, move |ctx: ProviderContext| {
            let p = cmdb::tencent::TencentBuilder::new()
                .with_http_config(http(&ctx))
                .with_endpoint(endpoint(&ctx))
                .with_region(ctx.region.clone())
                .with_limiter(l2.clone())
                .with_page_size(u64::from(page_size))
                .with_concurrency(concurrency)
                .with_credentials(ctx.credentials)
                .build()?;
            Ok(Arc::new(p) as Arc<dyn HostProvider>)
        })
        .with(Vendor::Huawei, move |ctx: ProviderContext| {
            let p = cmdb::huawei::HuaweiBuilder::new()
                .with_http_config(http(&ctx))
                .with_endpoint(endpoint(&ctx))
                .with_region(ctx.region.clone())
                .with_limiter(l3.clone())
                .with_page_size(page_size)
                .with_concurrency(concurrency)
                .with_credentials(ctx.credentials)
                .build()?;
            Ok(Arc::new(p) as Arc<dyn HostProvider>)
        })
        .with(Vendor::Vsphere, move |ctx: ProviderContext| {
            let p = cmdb::vsphere::VsphereBuilder::new()
                .with_http_config(http(&ctx))
                .with_endpoint(endpoint(&ctx))
                .with_limiter(l4.clone())
                .with_page_size(page_size)
                .with_credentials(ctx.credentials)
                .build()?;
            Ok(Arc::new(p) as Arc<dyn HostProvider>)
        })
}

/// The stores of one run: hosts and secrets.
async fn stores(
    spec: &str,
    vendor: Vendor,
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
            std::env::temp_dir().join(format!("cmdb-bench-{}-{vendor}.db", std::process::id()));
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
        let mut child = Command::new(std::env::current_exe()?)
            .args([
                "--simulator",
                "--vendor",
                vendor.as_str(),
                "--hosts",
                &args.hosts.to_string(),
                "--latency-ms",
                &args.latency_ms.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut from_sim = BufReader::new(child.stdout.take().ok_or("no simulator stdout")?);
        let mut line = String::new();
        from_sim.read_line(&mut line)?;
        let mut parts = line.split_whitespace();
        let uri = parts
            .next()
            .ok_or("the simulator printed no address")?
            .to_owned();
        let region = parts.next().unwrap_or_default().to_owned();
        Ok((Simulator { from_sim, child }, uri, region))
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

    let (hosts, secrets, temp) = stores(&args.store, vendor).await?;
    let cipher = Arc::new(Cipher::new(Cipher::generate_key()));
    let (key, secret) = match vendor {
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
    };
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
        registry(args, limiter)
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
