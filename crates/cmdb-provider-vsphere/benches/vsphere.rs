//! Criterion benchmark: parsing + mapping one `RetrievePropertiesEx` page of 100 virtual
//! machines as the simulator serves them (vSphere signs nothing: it uses a session
//! cookie). `cargo bench -p cmdb-provider-vsphere`.

#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use cmdb_provider_vsphere::bench::{decode_page, scan_page};
use cmdb_testkit::vsphere::retrieve_properties_answer;

fn benches(c: &mut Criterion) {
    let answer = retrieve_properties_answer("dc-bench", 100);
    let mut group = c.benchmark_group("vsphere");
    group.throughput(Throughput::Elements(100));
    group.bench_function("decode_page_100", |b| {
        b.iter(|| {
            let hosts = decode_page(answer.as_bytes(), "vcenter.example", "dc-bench").unwrap();
            assert_eq!(hosts.len(), 100);
            hosts
        })
    });
    group.bench_function("decode_and_hash_page_100", |b| {
        b.iter(|| {
            let hosts = decode_page(answer.as_bytes(), "vcenter.example", "dc-bench").unwrap();
            assert_eq!(hosts.len(), 100);
            hosts.iter().map(|h| h.content_hash()).collect::<Vec<_>>()
        })
    });
    // What the listing reads of a page before it asks for the next one (the parse and
    // the token, on the task that sends the request, while the previous page is decoded).
    group.bench_function("scan_page_100", |b| {
        b.iter(|| scan_page(answer.as_bytes()).unwrap())
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
