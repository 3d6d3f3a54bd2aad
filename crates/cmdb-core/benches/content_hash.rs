//! Criterion benchmark of `Host::content_hash` on [`cmdb_core::testing::reference_host`],
//! a host with the fields a cloud fills in.
//! `cargo bench -p cmdb-core`.

#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};

fn benches(c: &mut Criterion) {
    let h = cmdb_core::testing::reference_host();
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
