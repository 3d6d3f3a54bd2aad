//! The sync engine: validate, decrypt, list, store, release.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use futures::future::{self, Either};
use futures::StreamExt;
use tokio::runtime::RuntimeFlavor;
use tokio::sync::{mpsc, watch};

use cmdb_core::{
    Error, ErrorKind, Host, HostPage, HostProvider, HostStore, Result, ScopeLease, SyncScope,
    UpsertOutcome,
};
use cmdb_http::{Endpoint, HttpConfig, RateLimiter};
use cmdb_secret::{Cipher, Secret, SecretStore};

use crate::progress::{SyncProgress, SyncState};
use crate::registry::{ProviderContext, ProviderRegistry};
use crate::request::{DetailsMode, SyncRequest};
use crate::response::{ErrorReport, SyncDetail, SyncResponse};

/// Tuning of a [`Syncer`].
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// The largest share (0.0 to 1.0) of a scope's active hosts one run may release
    /// without `force_release`. Default 0.5.
    pub max_release_share: f64,
    /// Pages buffered between the listing and the store. Pages that are waiting when the
    /// store is free again are written together, up to `queue_pages + 1` in one upsert,
    /// so at most `2 x queue_pages + 2` pages are alive, the pages being fetched aside, and
    /// on a multi-threaded runtime the pages stored since the listing last produced one
    /// (at most `queue_pages + 1`), which it frees before it asks for the next. Default 4.
    pub queue_pages: usize,
    /// The longest a run may take; past it the run ends with a `Timeout` error (pages
    /// stored so far are kept, nothing is released). Default one hour.
    pub run_timeout: Duration,
    /// The HTTP settings given to every provider: timeouts, retries, TLS.
    pub http: HttpConfig,
    /// Whether a secret's endpoint may point at a link-local address (169.254.0.0/16,
    /// fe80::/10), where cloud metadata services live. Default false: such an endpoint
    /// would let whoever stores a secret make the server query its own metadata.
    pub allow_link_local_endpoints: bool,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            max_release_share: 0.5,
            queue_pages: 4,
            run_timeout: Duration::from_secs(3600),
            http: HttpConfig::default(),
            allow_link_local_endpoints: false,
        }
    }
}

/// Runs syncs: one at a time per scope, any number of scopes at once.
pub struct Syncer {
    secrets: Arc<dyn SecretStore>,
    hosts: Arc<dyn HostStore>,
    cipher: Arc<Cipher>,
    registry: ProviderRegistry,
    options: SyncOptions,
    running: Arc<Mutex<HashSet<SyncScope>>>,
    limiters: Mutex<HashMap<String, (u32, Weak<RateLimiter>)>>,
    last_start: Mutex<Option<DateTime<Utc>>>,
}

impl fmt::Debug for Syncer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Syncer")
            .field("secrets", &self.secrets)
            .field("hosts", &self.hosts)
            .field("cipher", &self.cipher)
            .field("registry", &self.registry)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here is a single insert or remove: a panic cannot leave the
    // data half-changed, so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Removes its scope from the running set when the run ends or its future is dropped.
struct ScopeGuard {
    running: Arc<Mutex<HashSet<SyncScope>>>,
    scope: SyncScope,
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        lock(&self.running).remove(&self.scope);
    }
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Both locks of a running scope: this process's and the store's.
struct ScopeLocks {
    _local: ScopeGuard,
    _store: ScopeLease,
}

/// What the drain has done so far; kept outside the drain's future so that a timeout
/// still knows what was stored.
#[derive(Default)]
struct Tally {
    pages: u64,
    seen: u64,
    created: u64,
    updated: u64,
    unchanged: u64,
    failed: u64,
    expected: Option<u64>,
    details: Vec<SyncDetail>,
    error: Option<Error>,
}

impl Tally {
    fn stored(&self) -> u64 {
        self.created + self.updated + self.unchanged
    }

    fn progress(&self, state: SyncState) -> SyncProgress {
        SyncProgress {
            state,
            pages: self.pages,
            hosts_seen: self.seen,
            stored: self.stored(),
            failed: self.failed,
            expected_total: self.expected,
        }
    }
}

impl Syncer {
    /// A syncer over the given stores, cipher and providers, with default options.
    pub fn new(
        secrets: Arc<dyn SecretStore>,
        hosts: Arc<dyn HostStore>,
        cipher: Arc<Cipher>,
        registry: ProviderRegistry,
    ) -> Syncer {
        Syncer {
            secrets,
            hosts,
            cipher,
            registry,
            options: SyncOptions::default(),
            running: Arc::default(),
            limiters: Mutex::default(),
            last_start: Mutex::default(),
        }
    }

    /// Replaces the options.
    pub fn with_options(mut self, options: SyncOptions) -> Syncer {
        self.options = options;
        self
    }

    /// The host store syncs write to.
    pub fn host_store(&self) -> &Arc<dyn HostStore> {
        &self.hosts
    }

    /// The secret store syncs read from.
    pub fn secret_store(&self) -> &Arc<dyn SecretStore> {
        &self.secrets
    }

    /// The cipher that decrypts the secrets (and encrypts new ones).
    pub fn cipher(&self) -> &Arc<Cipher> {
        &self.cipher
    }

    /// Runs one sync to its end.
    ///
    /// Errors found before anything was stored (invalid request, unknown secret, region
    /// not allowed, wrong key, vendor failure on the first page, a sync of the same scope
    /// already running) are returned as `Err`. A failure after some pages were stored is
    /// an `Ok` response with `complete: false` and `error` set. Dropping the future stops
    /// the run at a page boundary: stored pages stay, nothing is released.
    pub async fn sync(&self, request: SyncRequest) -> Result<SyncResponse> {
        self.prepare(request).await?.run(None).await
    }

    /// [`sync`](Self::sync), publishing live counters to `progress` as pages are stored.
    pub async fn sync_with_progress(
        &self,
        request: SyncRequest,
        progress: &watch::Sender<SyncProgress>,
    ) -> Result<SyncResponse> {
        match self.prepare(request).await {
            Ok(prepared) => prepared.run(Some(progress)).await,
            Err(e) => {
                progress.send_replace(SyncProgress {
                    state: SyncState::Failed,
                    ..SyncProgress::default()
                });
                Err(e)
            }
        }
    }

    /// Everything a run checks before its first vendor request: the request, the
    /// secret, the region, the key, the provider, and the scope's locks (in this process
    /// and in the store). The returned [`PreparedSync`] holds the locks until it is run
    /// or dropped, so a caller can answer these errors at once and run the listing in
    /// the background.
    pub async fn prepare(&self, request: SyncRequest) -> Result<PreparedSync<'_>> {
        let (scope, provider, locks) = self.check(&request).await?;
        Ok(PreparedSync {
            syncer: self,
            request,
            scope,
            provider,
            _locks: locks,
        })
    }

    /// Validation, secret, key, provider, and the scope's locks.
    async fn check(
        &self,
        request: &SyncRequest,
    ) -> Result<(SyncScope, Arc<dyn HostProvider>, ScopeLocks)> {
        request.validate()?;
        let secret = self.secrets.get(&request.secret_id).await?;
        if secret.vendor.requires_region() && request.region.is_empty() {
            return Err(Error::invalid_field(
                "region",
                format!("is required for {} secrets", secret.vendor),
            ));
        }
        if !request.region.is_empty() && !secret.is_allow_region(&request.region) {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "region {:?} is not allowed by secret {}; allowed: {}",
                    request.region,
                    secret.id,
                    secret.allowed_regions.join(", ")
                ),
            ));
        }
        if let Some(address) = secret.address.as_deref().filter(|a| !a.trim().is_empty()) {
            let endpoint = Endpoint::parse(address)?;
            if endpoint.is_link_local() && !self.options.allow_link_local_endpoints {
                return Err(Error::invalid_field(
                    "address",
                    "points at a link-local address (a cloud metadata service); allow it \
                     with SyncOptions::allow_link_local_endpoints",
                ));
            }
        }
        let credentials = self.cipher.decrypt_credentials(&secret)?;
        let provider = self.registry.host_provider(ProviderContext {
            secret_id: secret.id.clone(),
            vendor: secret.vendor,
            credentials,
            region: request.region.clone(),
            endpoint: secret.address.clone(),
            request_rate: secret.request_rate,
            limiter: self.limiter_for(&secret),
            http: self.options.http.clone(),
        })?;
        if provider.vendor() != secret.vendor {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the provider registered for {} lists {} hosts",
                    secret.vendor,
                    provider.vendor()
                ),
            ));
        }
        let scope = SyncScope {
            secret_id: secret.id.clone(),
            vendor: secret.vendor,
            // vSphere's region is the vCenter host, which the provider knows.
            region: provider.region().to_owned(),
            resource_type: request.resource_type,
        };
        let guard = self.lock_scope(&scope)?;
        // Then the store's lock, which other processes sharing the store also take.
        let lease = self.hosts.try_lock_scope(&scope).await?.ok_or_else(|| {
            Error::new(
                ErrorKind::Conflict,
                format!("a sync of {scope} is already running in another process"),
            )
        })?;
        Ok((
            scope,
            provider,
            ScopeLocks {
                _local: guard,
                _store: lease,
            },
        ))
    }

    fn lock_scope(&self, scope: &SyncScope) -> Result<ScopeGuard> {
        if !lock(&self.running).insert(scope.clone()) {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("a sync of {scope} is already running"),
            ));
        }
        Ok(ScopeGuard {
            running: Arc::clone(&self.running),
            scope: scope.clone(),
        })
    }

    /// One limiter per secret, shared by its concurrent runs (several regions at once
    /// still respect the secret's rate).
    fn limiter_for(&self, secret: &Secret) -> Arc<RateLimiter> {
        let mut map = lock(&self.limiters);
        if let Some((rate, weak)) = map.get(&secret.id) {
            if *rate == secret.request_rate {
                if let Some(limiter) = weak.upgrade() {
                    return limiter;
                }
            }
        }
        let limiter = Arc::new(RateLimiter::per_second(secret.request_rate));
        map.retain(|_, (_, w)| w.strong_count() > 0);
        map.insert(
            secret.id.clone(),
            (secret.request_rate, Arc::downgrade(&limiter)),
        );
        limiter
    }

    /// The time every host of this run is marked as seen at; hosts of the scope seen
    /// before it are the missing ones. Strictly increasing and in whole microseconds, so
    /// two quick runs never share it and SQL stores keep it exactly.
    fn next_run_start(&self) -> DateTime<Utc> {
        let mut last = lock(&self.last_start);
        let mut now = Utc::now().trunc_subsecs(6);
        if let Some(prev) = *last {
            if now <= prev {
                now = prev + chrono::Duration::microseconds(1);
            }
        }
        *last = Some(now);
        now
    }

    /// Stores pages while the next ones are fetched: the listing runs ahead by at most
    /// `queue_pages` pages. Pages queued while the store was busy are written with the
    /// next one in a single upsert, so a store slower than the listing pays its
    /// per-call cost (a transaction, a key look-up, round trips to a database thread)
    /// once for several pages: Tencent pages into SQLite went from about 23,000 to
    /// 37,000 hosts/s on two cores. When storing fails the listing is dropped at once.
    ///
    /// On a multi-threaded runtime the listing runs as a task of its own, so that
    /// fetching and decoding the next pages use another core while this one prepares and
    /// writes a page (polled in the same task, the two took turns on one thread: Alibaba
    /// Cloud pages went from about 33,000 to over 50,000 hosts/s into SQLite on two
    /// cores). The task is aborted when the drain ends or is dropped (time-out, caller
    /// gone), with whatever request it had in flight. On a current-thread runtime, where
    /// a task buys no parallelism, the listing is polled in place.
    fn drain<'a>(
        &'a self,
        scope: &'a SyncScope,
        mut pages: futures::stream::BoxStream<'static, Result<HostPage>>,
        seen_at: DateTime<Utc>,
        details: DetailsMode,
        tally: &'a mut Tally,
        publish: &'a (dyn Fn(SyncProgress) + Sync),
    ) -> impl Future<Output = ()> + 'a {
        let (tx, mut rx) = mpsc::channel::<Result<HostPage>>(self.options.queue_pages.max(1));
        let parallel = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
        // Stored hosts go back to the listing task to be freed there, off the storing
        // side (the slower one when the store is), and for offset-paged providers on the
        // thread that made them, where glibc's allocator frees fastest: Tencent pages into
        // SQLite went 3% to 22% faster in alternating runs. Hosts wait there only until the
        // listing's next page, so at most the pages stored meanwhile: those it had queued.
        let (stored_tx, mut stored_rx) = mpsc::unbounded_channel::<Vec<Host>>();
        let producer = async move {
            while let Some(item) = pages.next().await {
                while let Ok(stored) = stored_rx.try_recv() {
                    drop(stored);
                }
                let last = item.is_err();
                if tx.send(item).await.is_err() || last {
                    break;
                }
            }
        };
        let batch_pages = self.options.queue_pages.max(1) as u64 + 1;
        let consumer = async move {
            // A listing error that arrived behind pages taken for the batch: those pages
            // are stored first, then the run ends with it.
            let mut pending_error = None;
            while let Some(item) = rx.recv().await {
                let mut page = match item {
                    Ok(page) => page,
                    Err(e) => {
                        tally.error = Some(e);
                        break;
                    }
                };
                // Pages already listed while the last batch was written go into the same
                // upsert: one transaction and one round of statements for all of them,
                // when storing is the slower side. Nothing waits for a page to arrive.
                let first_page = tally.pages + 1;
                let mut pages_in_batch: u64 = 1;
                while pages_in_batch < batch_pages {
                    match rx.try_recv() {
                        Ok(Ok(next)) => {
                            page.total = next.total.or(page.total);
                            page.hosts.extend(next.hosts);
                            pages_in_batch += 1;
                        }
                        Ok(Err(e)) => {
                            pending_error = Some(e);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                tally.expected = page.total.or(tally.expected);
                for h in &mut page.hosts {
                    h.secret_id.clone_from(&scope.secret_id);
                }
                let outcomes = match self.hosts.upsert(scope, &page.hosts, seen_at).await {
                    Ok(o) if o.len() == page.hosts.len() => o,
                    Ok(o) => {
                        tally.error = Some(Error::store(format!(
                            "the store answered {} outcomes for {} hosts",
                            o.len(),
                            page.hosts.len()
                        )));
                        break;
                    }
                    Err(e) => {
                        let pages = if pages_in_batch == 1 {
                            format!("storing page {first_page}")
                        } else {
                            format!(
                                "storing pages {first_page} to {}",
                                first_page + pages_in_batch - 1
                            )
                        };
                        tally.error = Some(e.context(pages));
                        break;
                    }
                };
                tally.pages += pages_in_batch;
                tally.seen += page.hosts.len() as u64;
                for (host, outcome) in page.hosts.iter().zip(&outcomes) {
                    match outcome {
                        UpsertOutcome::Created => tally.created += 1,
                        UpsertOutcome::Updated => tally.updated += 1,
                        UpsertOutcome::Unchanged => tally.unchanged += 1,
                        UpsertOutcome::Failed(reason) => {
                            tally.failed += 1;
                            tracing::warn!(scope = %scope, instance_id = %host.instance_id, %reason, "host not stored");
                        }
                    }
                    let wanted = match details {
                        DetailsMode::All => true,
                        DetailsMode::Failed => !outcome.is_success(),
                        DetailsMode::None => false,
                    };
                    if wanted {
                        tally
                            .details
                            .push(SyncDetail::new(&host.instance_id, &host.name, outcome));
                    }
                }
                publish(tally.progress(SyncState::Running));
                if parallel {
                    // When the listing has ended the hosts come back and are freed here.
                    drop(stored_tx.send(std::mem::take(&mut page.hosts)));
                }
                if let Some(e) = pending_error.take() {
                    tally.error = Some(e);
                    break;
                }
            }
        };
        async move {
            if parallel {
                let mut task = AbortOnDrop(tokio::spawn(producer));
                // The consumer ends once the listing ended and every page is stored, or
                // at the first error; then the listing is aborted if still running.
                consumer.await;
                task.0.abort();
                // A listing that panicked closed the channel as if it had ended: the
                // panic goes on to the caller, as it does when the listing is polled here.
                if let Err(e) = (&mut task.0).await {
                    if e.is_panic() {
                        std::panic::resume_unwind(e.into_panic());
                    }
                }
                return;
            }
            // When the consumer stops first (store error), the producer is dropped with
            // whatever request it had in flight.
            match future::select(pin!(consumer), pin!(producer)).await {
                Either::Left(((), _producer)) => {}
                Either::Right(((), consumer)) => consumer.await,
            }
        }
    }

    /// Releases the scope's missing hosts unless the guard refuses; answers how many
    /// were released and why none were when the guard refused.
    async fn release(
        &self,
        scope: &SyncScope,
        run_start: DateTime<Utc>,
        force: bool,
    ) -> Result<(u64, Option<String>)> {
        let stats = self.hosts.scope_stats(scope, run_start).await?;
        if stats.missing == 0 {
            return Ok((0, None));
        }
        if !force {
            if stats.missing >= stats.active {
                return Ok((
                    0,
                    Some(format!(
                        "refusing to release all {} hosts of the scope: the vendor listed none \
                         of them, which is as often a permission problem as an empty region; \
                         pass force_release to release them",
                        stats.active
                    )),
                ));
            }
            let share = stats.missing as f64 / stats.active as f64;
            if share > self.options.max_release_share {
                return Ok((
                    0,
                    Some(format!(
                        "refusing to release {} of {} hosts ({:.0}%), more than the allowed \
                         {:.0}%; pass force_release to release them",
                        stats.missing,
                        stats.active,
                        share * 100.0,
                        self.options.max_release_share * 100.0
                    )),
                ));
            }
        }
        let released = self
            .hosts
            .release_missing(scope, run_start, Utc::now())
            .await?;
        tracing::info!(scope = %scope, released, "released hosts the vendor no longer lists");
        Ok((released, None))
    }
}

/// A sync that passed every check and holds its scope's locks; nothing is listed yet.
/// Made by [`Syncer::prepare`]; dropping it releases the locks.
pub struct PreparedSync<'a> {
    syncer: &'a Syncer,
    request: SyncRequest,
    scope: SyncScope,
    provider: Arc<dyn HostProvider>,
    _locks: ScopeLocks,
}

impl fmt::Debug for PreparedSync<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedSync")
            .field("request", &self.request)
            .field("scope", &self.scope)
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

impl PreparedSync<'_> {
    /// The scope the run lists and may release in.
    pub fn scope(&self) -> &SyncScope {
        &self.scope
    }

    /// Lists, stores and releases (see [`Syncer::sync`]), publishing live counters to
    /// `progress` when given.
    pub async fn run(self, progress: Option<&watch::Sender<SyncProgress>>) -> Result<SyncResponse> {
        let started = tokio::time::Instant::now();
        let publish = |p: SyncProgress| {
            if let Some(tx) = progress {
                tx.send_replace(p);
            }
        };
        let PreparedSync {
            syncer,
            request,
            scope,
            provider,
            _locks,
        } = self;
        publish(SyncProgress {
            state: SyncState::Running,
            ..SyncProgress::default()
        });
        let run_start = syncer.next_run_start();
        tracing::info!(scope = %scope, "sync started");

        let mut tally = Tally::default();
        let drain = syncer.drain(
            &scope,
            provider.pages(),
            run_start,
            request.details,
            &mut tally,
            &publish,
        );
        if tokio::time::timeout(syncer.options.run_timeout, drain)
            .await
            .is_err()
        {
            tally.error = Some(Error::new(
                ErrorKind::Timeout,
                format!(
                    "the run did not finish within {} s",
                    syncer.options.run_timeout.as_secs_f64()
                ),
            ));
        }

        if let Some(e) = tally.error.take() {
            if tally.pages == 0 {
                tracing::warn!(scope = %scope, error = %e, "sync failed before storing anything");
                publish(tally.progress(SyncState::Failed));
                return Err(e);
            }
            tracing::warn!(scope = %scope, pages = tally.pages, error = %e, "sync ended incomplete");
            tally.error = Some(e);
        }
        let complete = tally.error.is_none();
        let (released, release_skipped, release_error) = if !complete {
            (
                0,
                Some("the listing is incomplete; nothing is released".to_owned()),
                None,
            )
        } else if tally.failed > 0 {
            let reason = format!(
                "{} hosts failed to store; nothing is released",
                tally.failed
            );
            (0, Some(reason), None)
        } else {
            match syncer
                .release(&scope, run_start, request.force_release)
                .await
            {
                Ok((n, skipped)) => (n, skipped, None),
                Err(e) => (0, Some(format!("release failed: {e}")), Some(e)),
            }
        };
        let error = tally
            .error
            .as_ref()
            .or(release_error.as_ref())
            .map(ErrorReport::from);
        let state = if complete && tally.failed == 0 && error.is_none() {
            SyncState::Succeeded
        } else {
            SyncState::Partial
        };
        publish(tally.progress(state));
        let response = SyncResponse {
            total_succeed: tally.stored(),
            total_failed: tally.failed,
            details: std::mem::take(&mut tally.details),
            created: tally.created,
            updated: tally.updated,
            unchanged: tally.unchanged,
            released,
            release_skipped,
            complete,
            pages: tally.pages,
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            error,
        };
        tracing::info!(
            scope = %scope,
            stored = response.total_succeed,
            failed = response.total_failed,
            created = response.created,
            updated = response.updated,
            released = response.released,
            complete = response.complete,
            elapsed_ms = response.elapsed_ms,
            "sync finished"
        );
        Ok(response)
    }
}
