#![cfg_attr(not(feature = "aliyun"), allow(missing_docs))]
#![cfg(feature = "aliyun")]
//! The tracing spans of a sync: the built-in Alibaba Cloud provider against its
//! simulator, logged to a subscriber local to the test's thread (a current-thread runtime
//! runs the whole sync on it).
//!
//! The only test of its binary: tracing caches per call site whether any subscriber
//! wants it, process-wide, and a test running beside this one on a thread without a
//! subscriber could leave this one's spans off.

mod common;

use std::sync::{Arc, Mutex};

use cmdb_core::Vendor;
use cmdb_sync::SyncRequest;
use cmdb_testkit::aliyun::SimulatedAliyun;

const REGION: &str = "cn-shanghai";

/// Log lines written while it is the thread's subscriber.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

#[tokio::test]
async fn a_run_and_each_vendor_attempt_are_spans_with_no_secret() {
    let logs = Logs::default();
    let _logging = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .with_writer(logs.clone())
            .finish(),
    );
    let sim = SimulatedAliyun::start(REGION, 300).await;
    sim.throttle_every(2);
    let env = common::builtin_syncer(
        Vendor::Aliyun,
        &sim.access_key_id(),
        &sim.access_key_secret(),
        REGION,
        &sim.uri(),
    )
    .await;
    let r = env
        .syncer
        .sync(SyncRequest::new(&env.secret.id, REGION))
        .await
        .unwrap();
    assert!(r.complete && r.created == 300, "{r:?}");

    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    let sync_span = format!(
        "sync{{secret_id={} vendor=aliyun region={REGION}}}",
        env.secret.id
    );
    // The retry of a throttled attempt is logged in the run's span and the attempt's.
    let retried = text
        .lines()
        .find(|l| l.contains("retrying HTTP request"))
        .unwrap_or_else(|| panic!("no retry logged: {text}"));
    assert!(
        retried.contains(&format!(
            "{sync_span}:vendor_call{{vendor=aliyun action=DescribeInstances attempt="
        )),
        "{retried}"
    );
    let finished = text
        .lines()
        .find(|l| l.contains("sync finished"))
        .unwrap_or_else(|| panic!("no end logged: {text}"));
    assert!(finished.contains(&sync_span), "{finished}");
    for credential in [sim.access_key_id(), sim.access_key_secret()] {
        assert!(
            !text.contains(&credential),
            "a log line carries {credential:?}"
        );
    }
}
