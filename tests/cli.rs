//! The `sync` example binary against the simulated clouds: exit codes and `--json`.

use std::path::PathBuf;
use std::process::Output;

use serde_json::Value;

use cmdb_testkit::aliyun::{self, SimulatedAliyun};
use cmdb_testkit::tencent::{self, SimulatedTencent};

/// The example binary `cargo test` built next to this test's own binary.
fn sync_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe.parent().unwrap().parent().unwrap();
    let bin = target
        .join("examples")
        .join(format!("sync{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.exists(), "{} is built by `cargo test`", bin.display());
    bin
}

fn temp_db(name: &str) -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("cmdb-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("cli.db").display());
    (dir, url)
}

async fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(sync_binary());
    cmd.args(args).env_clear().env("RUST_LOG", "off");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().await.unwrap()
}

fn json_of(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("--json output is JSON ({e}): {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliyun_sync_then_release_with_json_output() {
    let sim = SimulatedAliyun::start("cn-hangzhou", 150).await;
    let (dir, db) = temp_db("aliyun");
    let env = [
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", aliyun::DEFAULT_ACCESS_KEY_ID),
        (
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
            aliyun::DEFAULT_ACCESS_KEY_SECRET,
        ),
    ];
    let uri = sim.uri();
    let args = [
        "--vendor",
        "aliyun",
        "--region",
        "cn-hangzhou",
        "--endpoint",
        &uri,
        "--database-url",
        &db,
        "--json",
        "--rate",
        "500",
    ];
    let out = run(&args, &env).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json_of(&out);
    assert_eq!(
        (r["created"].as_u64(), r["complete"].as_bool()),
        (Some(150), Some(true))
    );

    sim.remove_host(&sim.instance_id(3));
    let out = run(&args, &env).await;
    assert_eq!(out.status.code(), Some(0));
    let r = json_of(&out);
    assert_eq!(
        (r["unchanged"].as_u64(), r["released"].as_u64()),
        (Some(149), Some(1))
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tencent_table_output_and_failures_exit_non_zero() {
    let sim = SimulatedTencent::start(120).await;
    let (dir, db) = temp_db("tencent");
    let uri = sim.uri();
    let args = [
        "--vendor",
        "tencent",
        "--region",
        tencent::REGION,
        "--endpoint",
        &uri,
        "--database-url",
        &db,
    ];
    let good = [
        ("TENCENTCLOUD_SECRET_ID", tencent::SECRET_ID),
        ("TENCENTCLOUD_SECRET_KEY", tencent::SECRET_KEY),
    ];
    let out = run(&args, &good).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("created") && l.trim_end().ends_with("120")),
        "{table}"
    );

    let wrong = [
        ("TENCENTCLOUD_SECRET_ID", tencent::SECRET_ID),
        ("TENCENTCLOUD_SECRET_KEY", "wrong-key"),
    ];
    let out = run(&args, &wrong).await;
    assert_eq!(out.status.code(), Some(1), "a rejected key is a failure");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("AuthFailure"), "{stderr}");
    assert!(!stderr.contains("wrong-key"), "the secret is never printed");

    let out = run(&args, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TENCENTCLOUD_SECRET_ID"));

    let out = run(&["--vendor", "azure"], &good).await;
    assert_eq!(out.status.code(), Some(2), "bad usage");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_credentials_come_from_the_vendors_token_variable() {
    let sim = SimulatedAliyun::start("cn-hangzhou", 40).await;
    sim.set_security_token(Some("CAIS-cli-sts-token"));
    let (dir, db) = temp_db("aliyun-sts");
    let uri = sim.uri();
    let args = [
        "--vendor",
        "aliyun",
        "--region",
        "cn-hangzhou",
        "--endpoint",
        &uri,
        "--database-url",
        &db,
        "--json",
    ];
    let keys = [
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", aliyun::DEFAULT_ACCESS_KEY_ID),
        (
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
            aliyun::DEFAULT_ACCESS_KEY_SECRET,
        ),
    ];
    let out = run(&args, &keys).await;
    assert_eq!(out.status.code(), Some(1), "no token: refused");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("InvalidSecurityToken"), "{stderr}");

    let mut with_token = keys.to_vec();
    with_token.push(("ALIBABA_CLOUD_SECURITY_TOKEN", "CAIS-cli-sts-token"));
    let out = run(&args, &with_token).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json_of(&out)["created"].as_u64(), Some(40));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_says_what_a_sync_would_release_and_writes_nothing() {
    let sim = SimulatedAliyun::start("cn-hangzhou", 30).await;
    let (dir, db) = temp_db("aliyun-dry");
    let uri = sim.uri();
    let env = [
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", aliyun::DEFAULT_ACCESS_KEY_ID),
        (
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
            aliyun::DEFAULT_ACCESS_KEY_SECRET,
        ),
    ];
    let args = |dry: bool| {
        let mut a = vec![
            "--vendor",
            "aliyun",
            "--region",
            "cn-hangzhou",
            "--endpoint",
            uri.as_str(),
            "--database-url",
            db.as_str(),
            "--json",
        ];
        if dry {
            a.push("--dry-run");
        }
        a
    };
    assert_eq!(run(&args(false), &env).await.status.code(), Some(0));
    let gone = [sim.instance_id(4), sim.instance_id(17)];
    for id in &gone {
        assert!(sim.remove_host(id));
    }
    sim.add_hosts(3);
    for _ in 0..2 {
        let out = run(&args(true), &env).await;
        assert_eq!(out.status.code(), Some(0));
        let r = json_of(&out);
        assert_eq!(
            (r["created"].as_u64(), r["released"].as_u64()),
            (Some(3), Some(2)),
            "the same answer twice: the first dry run wrote nothing"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("nothing was written"), "{stderr}");
        for id in &gone {
            assert!(stderr.contains(id.as_str()), "{id} listed: {stderr}");
        }
    }
    let r = json_of(&run(&args(false), &env).await);
    assert_eq!(
        (r["created"].as_u64(), r["released"].as_u64()),
        (Some(3), Some(2))
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_region_of_the_account_one_row_each() {
    // The simulator serves cn-hangzhou; DescribeRegions also names cn-beijing and
    // ap-southeast-1, which it answers InvalidRegionId.NotFound.
    let sim = SimulatedAliyun::start("cn-hangzhou", 90).await;
    let (dir, db) = temp_db("aliyun-all");
    let uri = sim.uri();
    let env = [
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", aliyun::DEFAULT_ACCESS_KEY_ID),
        (
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
            aliyun::DEFAULT_ACCESS_KEY_SECRET,
        ),
    ];
    let args = |region: &'static str, json: bool| {
        let mut a = vec![
            "--vendor",
            "aliyun",
            "--region",
            region,
            "--endpoint",
            uri.as_str(),
            "--database-url",
            db.as_str(),
            "--rate",
            "500",
        ];
        if json {
            a.push("--json");
        }
        a
    };

    let out = run(&args("*", false), &env).await;
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "some regions failed: {table}");
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let row = |region: &str| {
        rows.iter()
            .find(|r| r.first() == Some(&region))
            .unwrap_or_else(|| panic!("a row for {region}: {table}"))
    };
    // region, complete, pages, succeeded, failed, created, ...
    assert_eq!(row("cn-hangzhou")[1..4], ["true", "1", "90"], "{table}");
    assert_eq!(row("cn-hangzhou")[5], "90", "{table}");
    for failed in ["cn-beijing", "ap-southeast-1"] {
        assert_eq!(row(failed)[1..4], ["false", "0", "0"], "{table}");
        assert!(
            row(failed).join(" ").contains("InvalidRegionId.NotFound"),
            "{table}"
        );
    }
    assert_eq!(row("total")[2..5], ["false", "1", "90"], "{table}");

    let out = run(&args("*", true), &env).await;
    assert_eq!(out.status.code(), Some(3));
    let r = json_of(&out);
    assert_eq!(
        (r["unchanged"].as_u64(), r["complete"].as_bool()),
        (Some(90), Some(false))
    );
    let regions = r["regions"].as_array().expect("one summary per region");
    assert_eq!(regions.len(), 3);
    assert_eq!(regions[0]["region"], "cn-hangzhou");
    assert_eq!(regions[0]["complete"], true);
    assert_eq!(regions[1]["error"]["code"], "InvalidRegionId.NotFound");

    // A list of regions: only those; the simulated one alone completes.
    let out = run(&args("cn-hangzhou,", true), &env).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json_of(&out);
    assert_eq!(r["regions"].as_array().map(Vec::len), Some(1));
    assert_eq!(r["unchanged"].as_u64(), Some(90));

    let out = run(&args("cn-beijing,ap-southeast-1", false), &env).await;
    assert_eq!(out.status.code(), Some(1), "every region failed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("every region"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rds_instances_sync_and_release_from_the_command_line() {
    use cmdb::core::{DatabaseQuery, DatabaseStore};
    use cmdb_testkit::tencent_cdb::SimulatedTencentCdb;

    let sim = SimulatedTencentCdb::start("ap-guangzhou", 60).await;
    let (dir, db) = temp_db("rds");
    let (id, key) = (sim.secret_id(), sim.secret_key());
    let env = [
        ("TENCENTCLOUD_SECRET_ID", id.as_str()),
        ("TENCENTCLOUD_SECRET_KEY", key.as_str()),
    ];
    let uri = sim.uri();
    let args = [
        "--vendor",
        "tencent",
        "--region",
        "ap-guangzhou",
        "--resource-type",
        "rds",
        "--endpoint",
        &uri,
        "--database-url",
        &db,
        "--json",
        "--rate",
        "500",
    ];
    let out = run(&args, &env).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json_of(&out);
    assert_eq!(
        (r["created"].as_u64(), r["complete"].as_bool()),
        (Some(60), Some(true))
    );
    let gone = sim.instance_id(5);
    assert!(sim.remove_instance(&gone));
    let out = run(&args, &env).await;
    assert_eq!(out.status.code(), Some(0));
    let r = json_of(&out);
    assert_eq!(
        (r["unchanged"].as_u64(), r["released"].as_u64()),
        (Some(59), Some(1)),
        "{r}"
    );

    let store = cmdb::store_sql::SqlStore::connect(&db).await.unwrap();
    let stored = DatabaseStore::query(&store, &DatabaseQuery::default())
        .await
        .unwrap();
    assert_eq!(stored.total, 60, "every instance kept, one released");
    let released = DatabaseStore::get(&store, cmdb::core::Vendor::Tencent, &gone)
        .await
        .unwrap()
        .unwrap();
    assert!(released.released_at.is_some());
    store.close().await;

    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let out = run(&dry, &env).await;
    assert_ne!(out.status.code(), Some(0), "a dry run of rds is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--dry-run compares hosts only"));
    let _ = std::fs::remove_dir_all(dir);
}
