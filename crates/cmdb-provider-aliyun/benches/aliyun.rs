//! Criterion benchmarks: ACS3 signing, and decoding + mapping one `DescribeInstances` page
//! of 100 instances as the simulator generates them.
//! `cargo bench -p cmdb-provider-aliyun --features bench`.

#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use serde_json::json;

use cmdb_provider_aliyun::bench::{authorization, decode_page};
use cmdb_testkit::aliyun::{instance_json, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET};

fn benches(c: &mut Criterion) {
    let query: Vec<(String, String)> = [
        ("RegionId", "cn-hangzhou"),
        ("MaxResults", "100"),
        ("NextToken", "e71d8a535bd9cc11"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .to_vec();
    let body_sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let headers: Vec<(String, String)> = [
        ("host", "ecs.cn-hangzhou.aliyuncs.com"),
        ("x-acs-action", "DescribeInstances"),
        ("x-acs-version", "2014-05-26"),
        ("x-acs-date", "2024-01-01T00:00:00Z"),
        ("x-acs-signature-nonce", "3156853299f313e23d1673dc12e1703d"),
        ("x-acs-content-sha256", body_sha256),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .to_vec();
    c.bench_function("aliyun/sign", |b| {
        b.iter(|| {
            authorization(
                black_box(&query),
                black_box(&headers),
                DEFAULT_ACCESS_KEY_ID,
                DEFAULT_ACCESS_KEY_SECRET,
            )
        })
    });

    let page: Vec<_> = (0..100).map(|i| instance_json("cn-hangzhou", i)).collect();
    let answer = serde_json::to_vec(&json!({
        "RequestId": "bench", "TotalCount": 100, "PageSize": 100, "NextToken": "",
        "Instances": {"Instance": page},
    }))
    .unwrap();
    let mut group = c.benchmark_group("aliyun");
    group.throughput(Throughput::Elements(100));
    group.bench_function("decode_page_100", |b| {
        b.iter_batched(
            || answer.clone(),
            |body| {
                let hosts = decode_page(body, "cn-hangzhou").unwrap();
                assert_eq!(hosts.len(), 100);
                hosts
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("decode_and_hash_page_100", |b| {
        b.iter_batched(
            || answer.clone(),
            |body| {
                let hosts = decode_page(body, "cn-hangzhou").unwrap();
                assert_eq!(hosts.len(), 100);
                hosts.iter().map(|h| h.content_hash()).collect::<Vec<_>>()
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group! {
    name = group;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = benches
}
criterion_main!(group);
