//! Criterion benchmarks: SDK-HMAC-SHA256 signing, and decoding + mapping one
//! ListServersDetails page of 100 servers as the simulator generates them.
//! `cargo bench -p cmdb-provider-huawei`.

#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use serde_json::json;

use cmdb_provider_huawei::bench::{authorization, decode_page};
use cmdb_testkit::huawei::{server_json, ACCESS_KEY, SECRET_KEY};

fn benches(c: &mut Criterion) {
    let query: Vec<(String, String)> = [("limit", "100"), ("offset", "3")]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec();
    let headers = [
        ("Host", "ecs.cn-north-4.myhuaweicloud.com"),
        ("X-Sdk-Date", "20240101T000000Z"),
        ("X-Project-Id", "0123456789abcdef0123456789abcdef"),
    ];
    c.bench_function("huawei/sign", |b| {
        b.iter(|| {
            authorization(
                black_box("/v1/0123456789abcdef0123456789abcdef/cloudservers/detail"),
                &query,
                &headers,
                ACCESS_KEY,
                SECRET_KEY,
            )
            .unwrap()
        })
    });

    let page: Vec<_> = (0..100).map(|i| server_json(i, "cn-north-4")).collect();
    let answer = serde_json::to_vec(&json!({"count": 100, "servers": page})).unwrap();
    let mut group = c.benchmark_group("huawei");
    group.throughput(Throughput::Elements(100));
    group.bench_function("decode_page_100", |b| {
        b.iter_batched(
            || answer.clone(),
            |body| {
                let hosts = decode_page(body, "cn-north-4").unwrap();
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
                let hosts = decode_page(body, "cn-north-4").unwrap();
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
