//! Criterion benchmarks: TC3 signing, and decoding + mapping one `DescribeInstances` page
//! of 100 instances as the simulator generates them. `cargo bench -p cmdb-provider-tencent`.

#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;

use cmdb_provider_tencent::bench::{authorization, decode_page};
use cmdb_testkit::tencent::{generate_instance, REGION, SECRET_ID, SECRET_KEY};

fn benches(c: &mut Criterion) {
    let body = br#"{"Offset":100,"Limit":100}"#;
    c.bench_function("tencent/sign", |b| {
        b.iter(|| {
            authorization(
                black_box(body),
                "cvm.tencentcloudapi.com",
                1_700_000_000,
                SECRET_ID,
                SECRET_KEY,
            )
            .unwrap()
        })
    });

    let page: Vec<_> = (0..100).map(|i| generate_instance(REGION, i)).collect();
    let answer = bytes::Bytes::from(
        serde_json::to_vec(&json!({
            "Response": {"TotalCount": 100, "InstanceSet": page, "RequestId": "bench"}
        }))
        .unwrap(),
    );
    let mut group = c.benchmark_group("tencent");
    group.throughput(Throughput::Elements(100));
    group.bench_function("decode_page_100", |b| {
        b.iter(|| {
            let hosts = decode_page(answer.clone(), REGION).unwrap();
            assert_eq!(hosts.len(), 100);
            hosts
        })
    });
    group.bench_function("decode_and_hash_page_100", |b| {
        b.iter(|| {
            let hosts = decode_page(answer.clone(), REGION).unwrap();
            assert_eq!(hosts.len(), 100);
            hosts.iter().map(|h| h.content_hash()).collect::<Vec<_>>()
        })
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
