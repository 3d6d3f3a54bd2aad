//! A fake provider that makes up hosts page by page.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt};
use futures::stream::{self, BoxStream, StreamExt};

use cmdb_core::{
    Error, ErrorKind, FailedRecord, Host, HostPage, HostProvider, HostStatus, PayMode, Result,
    Vendor,
};

use crate::gauge::PageGauge;

type HostFn = Arc<dyn Fn(&mut Host) + Send + Sync>;

/// A [`HostProvider`] that lists `count` made-up hosts in pages of `page_size`, lazily:
/// nothing is built before a page is polled. It can fail at a chosen page, wait before
/// each page, alter hosts, and count the pages it has handed out.
#[derive(Clone)]
pub struct FakeProvider {
    vendor: Vendor,
    region: String,
    count: u64,
    page_size: u64,
    fail_at: Option<(u64, ErrorKind)>,
    delay: Option<Duration>,
    report_total: bool,
    host_fn: Option<HostFn>,
    gauge: Option<Arc<PageGauge>>,
    requests: Arc<AtomicU64>,
    hidden: Arc<HashSet<u64>>,
    unmapped: Arc<HashSet<u64>>,
    moved: bool,
    lookup: Lookup,
    lookups: Arc<AtomicU64>,
    regions: Option<std::result::Result<Vec<String>, ErrorKind>>,
}

/// How a [`FakeProvider`] answers [`HostProvider::lookup`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookup {
    /// Finds hosts `0..count` (hidden ones included), 100 ids a request.
    Finds,
    /// Has no by-id lookup.
    Unsupported,
    /// Fails with an error of this kind on the first request.
    Fails(ErrorKind),
}

/// Ids a fake lookup request takes, as Alibaba Cloud's and Tencent Cloud's do.
const LOOKUP_BATCH: usize = 100;

impl fmt::Debug for FakeProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeProvider")
            .field("vendor", &self.vendor)
            .field("region", &self.region)
            .field("count", &self.count)
            .field("page_size", &self.page_size)
            .field("fail_at", &self.fail_at)
            .field("delay", &self.delay)
            .finish_non_exhaustive()
    }
}

impl FakeProvider {
    /// `count` hosts of `vendor` in `region`, `page_size` per page (at least 1).
    pub fn new(vendor: Vendor, region: impl Into<String>, count: u64, page_size: u64) -> Self {
        FakeProvider {
            vendor,
            region: region.into(),
            count,
            page_size: page_size.max(1),
            fail_at: None,
            delay: None,
            report_total: true,
            host_fn: None,
            gauge: None,
            requests: Arc::new(AtomicU64::new(0)),
            hidden: Arc::default(),
            unmapped: Arc::default(),
            moved: false,
            lookup: Lookup::Finds,
            lookups: Arc::new(AtomicU64::new(0)),
            regions: None,
        }
    }

    /// Leaves hosts `indices` out of every listing, as a listing that moved while it was
    /// paged skips live hosts; a by-id lookup still finds them.
    pub fn with_hidden(mut self, indices: impl IntoIterator<Item = u64>) -> Self {
        self.hidden = Arc::new(indices.into_iter().collect());
        self
    }

    /// Lists hosts `indices` as records that cannot be mapped
    /// ([`HostPage::failed`](cmdb_core::HostPage::failed)) instead of hosts, as a
    /// vendor record without an id is.
    pub fn with_unmapped(mut self, indices: impl IntoIterator<Item = u64>) -> Self {
        self.unmapped = Arc::new(indices.into_iter().collect());
        self
    }

    /// Marks the last page of every listing as moved
    /// ([`HostPage::moved`]), as the offset-paging shift guard does when the vendor's
    /// total changed during the listing.
    pub fn with_moved_listing(mut self) -> Self {
        self.moved = true;
        self
    }

    /// No by-id lookup: [`HostProvider::lookup`] answers `None`, like a custom provider
    /// without one.
    pub fn without_lookup(mut self) -> Self {
        self.lookup = Lookup::Unsupported;
        self
    }

    /// Answers [`HostProvider::regions`] with `regions` (by default the provider cannot
    /// list regions).
    pub fn with_regions<I, S>(mut self, regions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.regions = Some(Ok(regions.into_iter().map(Into::into).collect()));
        self
    }

    /// [`HostProvider::regions`] fails with an error of `kind` (a key that may not list
    /// regions).
    pub fn with_regions_failure(mut self, kind: ErrorKind) -> Self {
        self.regions = Some(Err(kind));
        self
    }

    /// By-id lookups fail with an error of `kind` (e.g. throttled past their retries).
    pub fn with_lookup_failure(mut self, kind: ErrorKind) -> Self {
        self.lookup = Lookup::Fails(kind);
        self
    }

    /// By-id lookup requests made so far over this provider and its clones.
    pub fn lookups(&self) -> u64 {
        self.lookups.load(Ordering::SeqCst)
    }

    /// The host number of one of this provider's instance ids.
    fn index_of(&self, instance_id: &str) -> Option<u64> {
        let prefix = format!("{}-{}-", self.vendor, self.region);
        instance_id.strip_prefix(&prefix)?.parse().ok()
    }

    /// Fail with an error of `kind` instead of returning page `page` (0-based); the stream
    /// ends after the error.
    pub fn with_failure_at(mut self, page: u64, kind: ErrorKind) -> Self {
        self.fail_at = Some((page, kind));
        self
    }

    /// Wait `delay` (tokio time) before each page, like a vendor's latency.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Whether pages report the total (default true).
    pub fn with_total(mut self, report: bool) -> Self {
        self.report_total = report;
        self
    }

    /// Alter every host after it is made (e.g. to change a field between two syncs).
    pub fn with_host_fn(mut self, f: impl Fn(&mut Host) + Send + Sync + 'static) -> Self {
        self.host_fn = Some(Arc::new(f));
        self
    }

    /// Report each page handed out to `gauge`.
    pub fn with_gauge(mut self, gauge: Arc<PageGauge>) -> Self {
        self.gauge = Some(gauge);
        self
    }

    /// Pages requested so far over every listing of this provider and its clones.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// The instance id of host number `i`.
    pub fn instance_id(&self, i: u64) -> String {
        format!("{}-{}-{i:07}", self.vendor, self.region)
    }

    /// Host number `i` as this provider lists it.
    pub fn host(&self, i: u64) -> Host {
        let mut h = Host::new(self.vendor, self.instance_id(i), self.region.clone());
        h.name = format!("host-{i}");
        h.zone = Some(format!("{}-a", self.region));
        h.status = HostStatus::Running;
        h.raw_status = "Running".into();
        h.instance_type = Some("fake.large".into());
        h.cpu = Some(2);
        h.memory_mib = Some(4096);
        h.pay_mode = PayMode::Postpaid;
        h.private_ips = vec![format!(
            "10.{}.{}.{}",
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255
        )];
        if let Some(f) = &self.host_fn {
            f(&mut h);
        }
        h
    }

    fn page(&self, index: u64) -> Result<HostPage> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        if let Some((at, kind)) = self.fail_at {
            if at == index {
                return Err(Error::new(kind, format!("fake failure at page {index}")));
            }
        }
        let start = index * self.page_size;
        let end = (start + self.page_size).min(self.count);
        let hosts: Vec<Host> = (start..end)
            .filter(|i| !self.hidden.contains(i) && !self.unmapped.contains(i))
            .map(|i| self.host(i))
            .collect();
        let failed: Vec<FailedRecord> = (start..end)
            .filter(|i| self.unmapped.contains(i))
            .map(|i| FailedRecord::new(None, format!("fake record {i} has no id")))
            .collect();
        if let Some(g) = &self.gauge {
            g.produced(hosts.len());
        }
        let mut page =
            HostPage::new(hosts, self.report_total.then_some(self.count)).with_failed(failed);
        if self.moved && end >= self.count {
            page.moved = Some("the fake listing moved while it was paged".to_owned());
        }
        Ok(page)
    }
}

impl HostProvider for FakeProvider {
    fn vendor(&self) -> Vendor {
        self.vendor
    }

    fn region(&self) -> &str {
        &self.region
    }

    fn pages(&self) -> BoxStream<'static, Result<HostPage>> {
        let this = self.clone();
        // An empty listing is still one (empty) page, as a vendor answers one request.
        let pages = self.count.div_ceil(self.page_size).max(1);
        stream::unfold(Some(0u64), move |state| {
            let this = this.clone();
            async move {
                let index = state?;
                if index >= pages {
                    return None;
                }
                if let Some(d) = this.delay {
                    tokio::time::sleep(d).await;
                }
                match this.page(index) {
                    Ok(page) => Some((Ok(page), Some(index + 1))),
                    Err(e) => Some((Err(e), None)),
                }
            }
        })
        .boxed()
    }

    fn regions(&self) -> Option<BoxFuture<'static, Result<Vec<String>>>> {
        let answer = self.regions.clone()?;
        Some(
            async move {
                answer.map_err(|kind| Error::new(kind, "fake failure listing the regions"))
            }
            .boxed(),
        )
    }

    fn lookup(&self, instance_ids: Vec<String>) -> Option<BoxStream<'static, Result<HostPage>>> {
        if self.lookup == Lookup::Unsupported {
            return None;
        }
        let this = self.clone();
        let batches: Vec<Vec<String>> = instance_ids
            .chunks(LOOKUP_BATCH)
            .map(<[String]>::to_vec)
            .collect();
        let pages = stream::iter(batches).map(move |batch| {
            this.lookups.fetch_add(1, Ordering::SeqCst);
            if let Lookup::Fails(kind) = this.lookup {
                return Err(Error::new(kind, "fake lookup failure"));
            }
            let hosts = batch
                .iter()
                .filter_map(|id| this.index_of(id))
                .filter(|&i| i < this.count)
                .map(|i| this.host(i))
                .collect();
            Ok(HostPage::new(hosts, None))
        });
        // One error, then the end.
        Some(
            pages
                .scan(false, |failed, page| {
                    let out = (!*failed).then_some(page);
                    *failed = out.as_ref().is_some_and(|p| p.is_err());
                    futures::future::ready(out)
                })
                .boxed(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cmdb_core::testing::{self, ProviderExpectation};

    #[tokio::test]
    async fn fake_provider_passes_the_provider_conformance_suite() {
        for (count, page) in [(0, 10), (1, 10), (10, 10), (250, 100)] {
            let p = Arc::new(FakeProvider::new(
                Vendor::Tencent,
                "ap-guangzhou",
                count,
                page,
            ));
            let expect = ProviderExpectation {
                hosts: Some(count),
                max_pages: 100,
                ..ProviderExpectation::default()
            };
            assert_eq!(testing::host_provider_conformance(p, expect).await, count);
        }
    }

    #[tokio::test]
    async fn failure_ends_the_stream_after_the_pages_before_it() {
        let p = FakeProvider::new(Vendor::Aliyun, "cn-hangzhou", 500, 100)
            .with_failure_at(2, ErrorKind::Unavailable);
        assert_eq!(
            testing::host_provider_error_conformance(Arc::new(p)).await,
            2
        );
    }

    #[tokio::test]
    async fn pages_are_lazy() {
        let p = FakeProvider::new(Vendor::Huawei, "cn-north-4", 1000, 10);
        let mut s = p.pages();
        assert_eq!(p.requests(), 0, "nothing is fetched before polling");
        s.next().await.unwrap().unwrap();
        assert_eq!(p.requests(), 1, "one request per page");
    }
}
