//! Criterion benchmark of `Host::content_hash` on a host with the fields a cloud fills in.
//! `cargo bench -p cmdb-core`.

#![allow(missing_docs)]

use chrono::{TimeZone, Utc};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

use cmdb_core::{Host, HostStatus, OsType, PayMode, Vendor};

fn host() -> Host {
    let mut h = Host::new(Vendor::Aliyun, "i-bp1abcdefghijklmnop", "cn-hangzhou");
    h.name = "web-production-0042".into();
    h.hostname = Some("web-0042".into());
    h.description = Some("front end".into());
    h.zone = Some("cn-hangzhou-h".into());
    h.status = HostStatus::Running;
    h.raw_status = "Running".into();
    h.instance_type = Some("ecs.g6.large".into());
    h.cpu = Some(2);
    h.memory_mib = Some(8192);
    h.os_type = OsType::Linux;
    h.os_name = Some("Alibaba Cloud Linux 3.2104 LTS 64位".into());
    h.image_id = Some("aliyun_3_x64_20G_alibase_20240528.vhd".into());
    h.public_ips = vec!["47.96.1.42".into()];
    h.private_ips = vec!["172.16.3.42".into(), "172.16.3.43".into()];
    h.pay_mode = PayMode::Postpaid;
    h.created_at = Some(Utc.with_ymd_and_hms(2024, 3, 1, 8, 15, 0).unwrap());
    h.vpc_id = Some("vpc-bp1qpo0kug3a20qqe7xyz".into());
    h.security_groups = vec!["sg-bp1fg655nh68xyz".into(), "sg-bp1abc".into()];
    h.key_pairs = vec!["deploy-key".into()];
    h.serial_number = Some("4a7b2c3d-1e2f-4a5b-8c9d-0e1f2a3b4c5d".into());
    for (k, v) in [("env", "prod"), ("team", "web"), ("cost-center", "cc-1042")] {
        h.tags.insert(k.into(), v.into());
    }
    h.extra
        .insert("InstanceChargeType".into(), serde_json::json!("PostPaid"));
    h.extra
        .insert("DeletionProtection".into(), serde_json::json!(false));
    h
}

fn benches(c: &mut Criterion) {
    let h = host();
    c.bench_function("host/content_hash", |b| {
        b.iter(|| black_box(&h).content_hash())
    });
}

criterion_group! {
    name = group;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = benches
}
criterion_main!(group);
