//! The sync engine: validate, decrypt, list, store, release.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use futures::future::{self, BoxFuture, Either};
use futures::stream;
use futures::StreamExt;
use tokio::runtime::RuntimeFlavor;
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use cmdb_core::{
    DatabaseProvider, DatabaseStore, Error, ErrorKind, FailedRecord, HostProvider, HostStore,
    MissingHost, ResourceType, Result, ScopeLease, ScopeStats, SyncScope, UpsertOutcome, Vendor,
};
use cmdb_http::{AddressPolicy, Endpoint, HttpConfig, RateLimiter};
use cmdb_secret::{Cipher, SecretStore};

use crate::account::Account;
use crate::progress::{SyncProgress, SyncState};
use crate::registry::{refuse_vendor_without_databases, ProviderContext, ProviderRegistry};
use crate::request::{DetailsMode, SyncRequest, ALL_REGIONS};
use crate::resource::{Lister, Page, Record, Store};
use crate::response::{ErrorReport, RegionSummary, SyncDetail, SyncResponse};
use crate::telemetry;

/// Tuning of a [`Syncer`]: start from `SyncOptions::default()` and change what you need
/// with the `with_*` methods (or the public fields).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SyncOptions {
    /// The largest share (0.0 to 1.0) of a scope's active hosts one run may release
    /// without `force_release`. Default 0.5.
    pub max_release_share: f64,
    /// Pages buffered between the listing and the store. Pages that are waiting when the
    /// store is free again are written together, up to `queue_pages + 1` in one upsert,
    /// so at most `2 x queue_pages + 2` pages are alive, the pages being fetched aside.
    /// Default 4.
    pub queue_pages: usize,
    /// The longest a run may take; past it the run ends with a `Timeout` error (pages
    /// stored so far are kept, nothing is released). Default one hour.
    pub run_timeout: Duration,
    /// The HTTP settings given to every provider: timeouts, retries, TLS, and which
    /// addresses vendor requests may connect to (`http.addresses`, checked on the
    /// resolved IP at connect time). By default only public addresses: whoever stores a
    /// secret chooses its endpoint, and must not make the server send credentials to a
    /// cloud metadata service or into the operator's private network. Allow loopback
    /// and private ranges with [`with_private_addresses`](Self::with_private_addresses)
    /// for private clouds, on-premises vCenters and simulators.
    pub http: HttpConfig,
    /// The most per-host details a run's answer keeps (default
    /// [`DEFAULT_MAX_DETAILS`]); past it the answer says `details_truncated`. The counters
    /// always count every host.
    pub max_details: usize,
    /// Regions of a whole-account sync ([`Syncer::sync_all`]) run at once (default
    /// [`DEFAULT_REGIONS_IN_FLIGHT`]); the others wait their turn. They share the
    /// secret's request rate whatever their number: more regions at once helps only
    /// when one region alone cannot use the rate (a token-paged vendor far away).
    pub regions_in_flight: usize,
}

/// Regions of a whole-account sync run at once by default.
pub const DEFAULT_REGIONS_IN_FLIGHT: usize = 8;

/// Per-host details a run's answer keeps by default: 10,000 entries, about 1 MB of JSON.
pub const DEFAULT_MAX_DETAILS: usize = 10_000;

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            max_details: DEFAULT_MAX_DETAILS,
            regions_in_flight: DEFAULT_REGIONS_IN_FLIGHT,
            max_release_share: 0.5,
            queue_pages: 4,
            run_timeout: Duration::from_secs(3600),
            // Unlike a provider built by hand, whose endpoint its caller chose, a sync's
            // endpoint comes from a stored secret: public addresses only by default.
            http: HttpConfig::default().with_addresses(AddressPolicy::public_only()),
        }
    }
}

impl SyncOptions {
    /// These options with `max_release_share` set.
    pub fn with_max_release_share(mut self, share: f64) -> SyncOptions {
        self.max_release_share = share;
        self
    }

    /// These options with `queue_pages` set.
    pub fn with_queue_pages(mut self, pages: usize) -> SyncOptions {
        self.queue_pages = pages;
        self
    }

    /// These options with `run_timeout` set.
    pub fn with_run_timeout(mut self, timeout: Duration) -> SyncOptions {
        self.run_timeout = timeout;
        self
    }

    /// These options with `max_details` set.
    pub fn with_max_details(mut self, details: usize) -> SyncOptions {
        self.max_details = details;
        self
    }

    /// These options with `regions_in_flight` set (at least 1 is used).
    pub fn with_regions_in_flight(mut self, regions: usize) -> SyncOptions {
        self.regions_in_flight = regions;
        self
    }

    /// These options with the providers' HTTP settings replaced by `http` (its address
    /// policy included: keep [`AddressPolicy::public_only`] unless you mean otherwise).
    pub fn with_http(mut self, http: HttpConfig) -> SyncOptions {
        self.http = http;
        self
    }

    /// These options, letting vendor requests reach loopback and private addresses or
    /// not (link-local and cloud metadata addresses stay refused).
    pub fn with_private_addresses(mut self, allow: bool) -> SyncOptions {
        self.http.addresses.allow_private = allow;
        self
    }

    /// Checks the options: `max_release_share` must be a finite number from 0 to 1.
    pub fn validate(&self) -> Result<()> {
        if !(self.max_release_share.is_finite() && (0.0..=1.0).contains(&self.max_release_share)) {
            return Err(Error::invalid_field(
                "max_release_share",
                format!(
                    "must be a number from 0 to 1, not {}",
                    self.max_release_share
                ),
            ));
        }
        Ok(())
    }
}

/// Runs syncs: one at a time per scope, any number of scopes at once.
///
/// Three ways in, by where the credentials come from:
/// - [`sync`](Self::sync): a stored secret, by id, from the [`SecretStore`] given to
///   [`Syncer::new`] and decrypted with its [`Cipher`] (the server's way);
/// - [`sync_account`](Self::sync_account): an [`Account`] with credentials in hand, its
///   provider built by the [`ProviderRegistry`];
/// - [`sync_provider`](Self::sync_provider): a provider you built yourself.
///
/// A `Syncer` is cheap to clone: clones share their locks, rate limiters and stores.
#[derive(Clone)]
pub struct Syncer {
    secrets: Option<(Arc<dyn SecretStore>, Arc<Cipher>)>,
    hosts: Arc<dyn HostStore>,
    /// Where database instances go; `None`: this syncer syncs hosts only.
    databases: Option<Arc<dyn DatabaseStore>>,
    registry: ProviderRegistry,
    options: SyncOptions,
    shared: Arc<Shared>,
}

/// What clones of a [`Syncer`] share.
#[derive(Default)]
struct Shared {
    /// The scopes being synced by this process.
    running: Mutex<HashSet<SyncScope>>,
    /// One rate limiter per secret or account id, while a run uses it.
    limiters: Mutex<HashMap<String, (u32, Weak<RateLimiter>)>>,
    /// The start of the last run (see [`Syncer::next_run_start`]).
    last_start: Mutex<Option<DateTime<Utc>>>,
}

impl fmt::Debug for Syncer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Syncer")
            .field("secrets", &self.secrets.as_ref().map(|(store, _)| store))
            .field("hosts", &self.hosts)
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
    shared: Arc<Shared>,
    scope: SyncScope,
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        lock(&self.shared.running).remove(&self.scope);
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
    store: ScopeLease,
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
    /// The most details kept; more are counted, not kept.
    max_details: usize,
    details_truncated: bool,
    error: Option<Error>,
    /// Why the listing cannot have seen every host, when its paging saw it move.
    moved: Option<String>,
}

impl Tally {
    /// Counts the outcomes of upserting `hosts`, keeping the details `details` asks for.
    fn record<R: Record>(
        &mut self,
        scope: &SyncScope,
        hosts: &[R],
        outcomes: &[UpsertOutcome],
        details: DetailsMode,
    ) {
        self.seen += hosts.len() as u64;
        for (host, outcome) in hosts.iter().zip(outcomes) {
            match outcome {
                UpsertOutcome::Created => self.created += 1,
                UpsertOutcome::Updated => self.updated += 1,
                UpsertOutcome::Unchanged => self.unchanged += 1,
                UpsertOutcome::Failed(reason) => {
                    self.failed += 1;
                    tracing::warn!(scope = %scope, instance_id = %host.instance_id(), %reason, "record not stored");
                }
                // An outcome newer than this crate: a stored host may have changed, so it
                // counts as updated; one not stored counts as failed.
                other if other.is_success() => self.updated += 1,
                other => {
                    self.failed += 1;
                    tracing::warn!(scope = %scope, instance_id = %host.instance_id(), outcome = ?other, "record not stored");
                }
            }
            let wanted = match details {
                DetailsMode::All => true,
                DetailsMode::Failed => !outcome.is_success(),
                DetailsMode::None => false,
            };
            if wanted {
                self.push_detail(SyncDetail::new(host.instance_id(), host.name(), outcome));
            }
        }
    }

    /// Keeps `detail` unless the answer already holds as many as it may.
    fn push_detail(&mut self, detail: SyncDetail) {
        if self.details.len() < self.max_details {
            self.details.push(detail);
        } else {
            self.details_truncated = true;
        }
    }

    /// Counts the records a provider could not map as failed, with their details.
    fn record_unmapped(
        &mut self,
        scope: &SyncScope,
        records: &[FailedRecord],
        details: DetailsMode,
    ) {
        for record in records {
            self.failed += 1;
            tracing::warn!(scope = %scope, instance_id = ?record.instance_id, reason = %record.reason, "vendor record not mapped");
            if details != DetailsMode::None {
                self.push_detail(SyncDetail::unmapped(record));
            }
        }
    }

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
    /// A syncer reading secrets by id from `secrets`, decrypted with `cipher`, building
    /// providers with `registry`, and storing hosts in `hosts`, with default options.
    pub fn new(
        secrets: Arc<dyn SecretStore>,
        hosts: Arc<dyn HostStore>,
        cipher: Arc<Cipher>,
        registry: ProviderRegistry,
    ) -> Syncer {
        Syncer {
            secrets: Some((secrets, cipher)),
            ..Syncer::for_host_store(hosts).with_registry(registry)
        }
    }

    /// A syncer storing hosts in `hosts`, for credentials in hand
    /// ([`sync_account`](Self::sync_account)) and providers built by hand
    /// ([`sync_provider`](Self::sync_provider)); it has no secret store, so
    /// [`sync`](Self::sync) answers an error. Its registry is
    /// [`ProviderRegistry::with_builtin_providers`].
    pub fn for_host_store(hosts: Arc<dyn HostStore>) -> Syncer {
        Syncer {
            secrets: None,
            hosts,
            databases: None,
            registry: ProviderRegistry::with_builtin_providers(),
            options: SyncOptions::default(),
            shared: Arc::default(),
        }
    }

    /// Replaces the options.
    pub fn with_options(mut self, options: SyncOptions) -> Syncer {
        self.options = options;
        self
    }

    /// Stores database instances (`resource_type: rds`) in `databases` (usually the
    /// store hosts go to: `MemoryHostStore` and `SqlStore` keep both). Without it, a
    /// sync of `rds` is refused.
    pub fn with_database_store(mut self, databases: Arc<dyn DatabaseStore>) -> Syncer {
        self.databases = Some(databases);
        self
    }

    /// Where database instances are stored, if anywhere.
    pub fn database_store(&self) -> Option<&Arc<dyn DatabaseStore>> {
        self.databases.as_ref()
    }

    /// Replaces the registry that builds providers for secrets and accounts.
    pub fn with_registry(mut self, registry: ProviderRegistry) -> Syncer {
        self.registry = registry;
        self
    }

    /// Checks a secret's endpoint `address` against the options' address policy: an
    /// [`InvalidInput`](ErrorKind::InvalidInput) error on the `address` field when it
    /// does not parse or is an IP literal the policy refuses. A host name passes here and
    /// is checked on the addresses it resolves to, each time a provider connects. An
    /// empty address (the vendor's public endpoint) passes.
    pub fn check_address(&self, address: &str) -> Result<()> {
        if address.trim().is_empty() {
            return Ok(());
        }
        let endpoint = Endpoint::parse(address)?;
        self.options
            .http
            .addresses
            .check_url(endpoint.base_url())
            .map_err(|refused| Error::invalid_field("address", refused.to_string()))
    }

    /// The options runs use.
    pub fn options(&self) -> &SyncOptions {
        &self.options
    }

    /// The host store syncs write to.
    pub fn host_store(&self) -> &Arc<dyn HostStore> {
        &self.hosts
    }

    /// The secret store syncs read from, when the syncer has one ([`Syncer::new`]).
    pub fn secret_store(&self) -> Option<&Arc<dyn SecretStore>> {
        self.secrets.as_ref().map(|(store, _)| store)
    }

    /// The cipher that decrypts the secrets (and encrypts new ones), when the syncer has
    /// a secret store.
    pub fn cipher(&self) -> Option<&Arc<Cipher>> {
        self.secrets.as_ref().map(|(_, cipher)| cipher)
    }

    /// Runs one sync of a stored secret to its end.
    ///
    /// Errors found before anything was stored (invalid request, unknown secret, region
    /// not allowed, wrong key, vendor failure on the first page, a sync of the same scope
    /// already running) are returned as `Err`. A failure after some pages were stored is
    /// an `Ok` response with `complete: false` and `error` set. Dropping the future stops
    /// the run at a page boundary: stored pages stay, nothing is released.
    pub async fn sync(&self, request: SyncRequest) -> Result<SyncResponse> {
        self.prepare(request).await?.run().await
    }

    /// [`sync`](Self::sync), publishing live counters to `progress` as pages are stored.
    pub async fn sync_with_progress(
        &self,
        request: SyncRequest,
        progress: &watch::Sender<SyncProgress>,
    ) -> Result<SyncResponse> {
        match self.prepare(request).await {
            Ok(prepared) => prepared.with_progress(progress.clone()).run().await,
            Err(e) => {
                progress.send_replace(SyncProgress {
                    state: SyncState::Failed,
                    ..SyncProgress::default()
                });
                Err(e)
            }
        }
    }

    /// Runs one sync with credentials in hand, answering as [`sync`](Self::sync) does.
    /// The request's `secret_id` is the id the account's hosts are stored under (any
    /// stable name of the account: keep it from one run to the next, since releases stay
    /// within it); the request's region is listed whatever the account (there is no
    /// list of allowed regions but the caller's).
    pub async fn sync_account(
        &self,
        request: SyncRequest,
        account: Account,
    ) -> Result<SyncResponse> {
        self.prepare_account(request, account).await?.run().await
    }

    /// Runs one sync with a provider built by hand (by one provider crate alone, or your
    /// own [`HostProvider`]), answering as [`sync`](Self::sync) does. The request's
    /// `secret_id` is the id hosts are stored under, as for
    /// [`sync_account`](Self::sync_account); its region must be the provider's, or empty.
    /// The provider's own endpoint, rate limit and HTTP settings are used as built.
    pub async fn sync_provider(
        &self,
        request: SyncRequest,
        provider: Arc<dyn HostProvider>,
    ) -> Result<SyncResponse> {
        self.prepare_provider(request, provider).await?.run().await
    }

    /// Syncs every region of a stored secret, each region its own run (its own scope,
    /// locks, release and result), several at once (at most
    /// [`SyncOptions::regions_in_flight`]), all within the secret's one request rate.
    ///
    /// The request's region is [`ALL_REGIONS`] (`"*"`) or empty. The regions are the
    /// secret's `allowed_regions`, or, when they allow any region (`"*"`), the regions
    /// the vendor lists for the key ([`HostProvider::regions`], asked through a provider
    /// built for a default region of the vendor: Alibaba Cloud `cn-hangzhou`, Tencent
    /// Cloud `ap-guangzhou`, Huawei Cloud `cn-north-4`). A vSphere secret has one scope,
    /// its vCenter. A request naming one region is that region's [`sync`](Self::sync),
    /// answered as it answers.
    ///
    /// A region that fails, even before its listing starts (the key may not list it, a
    /// sync of it is already running), does not stop the others: the answer sums the
    /// regions' counters and details (still at most [`SyncOptions::max_details`]), is
    /// `complete` when every region is, carries the first region's error, and lists
    /// what each region did in [`SyncResponse::regions`]. `Err` is kept for what stops
    /// every region: an invalid request, an unknown secret, a wrong cipher key, or a
    /// vendor that cannot say which regions the account has. Dropping the future stops
    /// every region's run at a page boundary.
    pub async fn sync_all(&self, request: SyncRequest) -> Result<SyncResponse> {
        self.sync_all_inner(request, None).await
    }

    /// [`sync_all`](Self::sync_all), telling `observer` about each region's run as it
    /// starts and ends (a caller that keeps a record per region, as the API's tasks do).
    /// A request naming one region is that region's [`sync`](Self::sync), unobserved.
    pub async fn sync_all_observed(
        &self,
        request: SyncRequest,
        observer: Arc<dyn RegionObserver>,
    ) -> Result<SyncResponse> {
        self.sync_all_inner(request, Some(observer)).await
    }

    async fn sync_all_inner(
        &self,
        request: SyncRequest,
        observer: Option<Arc<dyn RegionObserver>>,
    ) -> Result<SyncResponse> {
        self.options.validate()?;
        request.validate()?;
        if !request.region.is_empty() && !request.is_all_regions() {
            return self.sync(request).await;
        }
        let Some((secrets, cipher)) = &self.secrets else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "this syncer has no secret store (made by Syncer::for_host_store): sync an \
                 Account with sync_account_all instead",
            ));
        };
        let secret = secrets.get(&request.secret_id).await?;
        if let Some(address) = secret.address.as_deref() {
            self.check_address(address)?;
        }
        let credentials = cipher.decrypt_credentials(&secret)?;
        let account = Account::from_secret(&secret, credentials);
        let regions = if secret.allowed_regions.iter().any(|r| r == ALL_REGIONS) {
            self.list_regions(&request.secret_id, account.clone())
                .await?
        } else {
            secret.allowed_regions.clone()
        };
        self.sync_regions(request, account, regions, observer).await
    }

    /// [`sync_all`](Self::sync_all) with credentials in hand: every region the vendor
    /// lists for the account ([`list_regions`](Self::list_regions)), or its one scope
    /// for vSphere. The request's `secret_id` is the id the hosts are stored under, as
    /// for [`sync_account`](Self::sync_account); a request naming one region is that
    /// region's `sync_account`.
    pub async fn sync_account_all(
        &self,
        request: SyncRequest,
        account: Account,
    ) -> Result<SyncResponse> {
        self.options.validate()?;
        request.validate()?;
        if !request.region.is_empty() && !request.is_all_regions() {
            return self.sync_account(request, account).await;
        }
        let regions = self
            .list_regions(&request.secret_id, account.clone())
            .await?;
        self.sync_account_regions(request, account, regions).await
    }

    /// [`sync_account_all`](Self::sync_account_all) of the `regions` given (duplicates
    /// run once) rather than those the vendor lists; the request's region is not used.
    /// A vSphere account has one scope, whatever `regions` says.
    pub async fn sync_account_regions(
        &self,
        request: SyncRequest,
        account: Account,
        regions: Vec<String>,
    ) -> Result<SyncResponse> {
        self.options.validate()?;
        request.validate()?;
        self.sync_regions(request, account, regions, None).await
    }

    async fn sync_regions(
        &self,
        request: SyncRequest,
        account: Account,
        regions: Vec<String>,
        observer: Option<Arc<dyn RegionObserver>>,
    ) -> Result<SyncResponse> {
        // Refused as a whole, as a one-region sync is, rather than region by region.
        if request.resource_type == ResourceType::Rds {
            refuse_vendor_without_databases(account.vendor)?;
        }
        let regions = if account.vendor.requires_region() {
            let mut unique: Vec<String> = Vec::with_capacity(regions.len());
            for region in regions {
                if !unique.contains(&region) {
                    unique.push(region);
                }
            }
            unique
        } else {
            vec![String::new()]
        };
        if regions.is_empty() {
            return Err(Error::invalid_field("region", "no region to sync"));
        }
        let started = tokio::time::Instant::now();
        tracing::info!(secret_id = %request.secret_id, vendor = %account.vendor,
            regions = regions.len(), "whole-account sync started");
        // Held for the whole sync, so that every region's provider gets this one limiter
        // even when no other region's run is alive at the moment it is built.
        let _limiter = self.limiter_for(&request.secret_id, account.request_rate);
        let runs: Vec<RegionSummaryRun> = stream::iter(regions)
            .map(|region| {
                let mut request = request.clone();
                request.region = region;
                self.sync_region(request, account.clone(), observer.clone())
            })
            .buffered(self.options.regions_in_flight.max(1))
            .collect()
            .await;
        let mut response = aggregate(runs, self.options.max_details);
        response.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(
            secret_id = %request.secret_id,
            regions = response.regions.len(),
            failed_regions = response.regions.iter().filter(|r| !r.complete).count(),
            stored = response.total_succeed,
            complete = response.complete,
            elapsed_ms = response.elapsed_ms,
            "whole-account sync finished"
        );
        Ok(response)
    }

    /// The regions the vendor lists for `account` ([`HostProvider::regions`]), asked
    /// through a provider built for a default region of the vendor (Alibaba Cloud
    /// `cn-hangzhou`, Tencent Cloud `ap-guangzhou`, Huawei Cloud `cn-north-4`) within
    /// the rate limiter of `secret_id`. vSphere has one scope, the vCenter: one empty
    /// region, and no request.
    ///
    /// Errors: the vendor's own (a wrong key, a permission the key lacks), an
    /// [`InvalidInput`](ErrorKind::InvalidInput) error when the vendor's provider cannot
    /// list regions, and [`NotFound`](ErrorKind::NotFound) when the vendor lists none.
    pub async fn list_regions(&self, secret_id: &str, account: Account) -> Result<Vec<String>> {
        let vendor = account.vendor;
        if !vendor.requires_region() {
            return Ok(vec![String::new()]);
        }
        // The host provider asks: the account's regions are the same for every kind.
        let ctx = self.provider_context(secret_id, bootstrap_region(vendor), account)?;
        let provider = self.registry.host_provider(ctx)?;
        let listing = provider.regions().ok_or_else(|| {
            Error::invalid_field(
                "region",
                format!(
                    "the {vendor} provider cannot list the account's regions: name them (the \
                     secret's allowed_regions, or one region a request)"
                ),
            )
        })?;
        let regions = listing
            .await
            .map_err(|e| e.context(format_args!("listing the regions of {vendor}")))?;
        if regions.is_empty() {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "{vendor} lists no region for this key: check its permission to list \
                     regions, or name the regions"
                ),
            ));
        }
        tracing::debug!(%vendor, regions = ?regions, "regions listed");
        Ok(regions)
    }

    /// One region of a whole-account sync, to its end: its summary and answer.
    async fn sync_region(
        &self,
        request: SyncRequest,
        account: Account,
        observer: Option<Arc<dyn RegionObserver>>,
    ) -> RegionSummaryRun {
        let started = tokio::time::Instant::now();
        let asked = SyncScope::new(
            request.secret_id.clone(),
            account.vendor,
            request.region.clone(),
            request.resource_type,
        );
        let (region, result) = match self.prepare_account(request, account).await {
            Ok(mut prepared) => {
                let scope = prepared.scope().clone();
                if let Some(observer) = &observer {
                    prepared = prepared.with_trigger(observer.trigger());
                    if let Some(progress) = observer.started(&scope).await {
                        prepared = prepared.with_progress(progress);
                    }
                }
                let (result, held) = prepared.run_holding_locks().await;
                if let Some(observer) = &observer {
                    observer.ended(&scope, &result).await;
                }
                drop(held);
                (scope.region, result)
            }
            Err(e) => {
                let result = Err(e);
                if let Some(observer) = &observer {
                    observer.ended(&asked, &result).await;
                }
                (asked.region, result)
            }
        };
        if let Err(e) = &result {
            tracing::warn!(region = %region, error = %e, "region not synced");
        }
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        RegionSummaryRun {
            region,
            result,
            elapsed_ms,
        }
    }

    /// Everything a run of a stored secret checks before its first vendor request: the
    /// request, the secret, the region, the key, the provider, and the scope's locks (in
    /// this process and in the store). The returned [`PreparedSync`] holds the locks
    /// until it is run or dropped, so a caller can answer these errors at once and run
    /// the listing in the background: it owns what it needs, so it can be spawned.
    pub async fn prepare(&self, request: SyncRequest) -> Result<PreparedSync> {
        self.options.validate()?;
        request.validate()?;
        refuse_all_regions(&request)?;
        let Some((secrets, cipher)) = &self.secrets else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "this syncer has no secret store (made by Syncer::for_host_store): sync an \
                 Account or a provider instead",
            ));
        };
        let secret = secrets.get(&request.secret_id).await?;
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
        // Checked before decrypting: a refused address is answered as such, whatever
        // the key.
        if let Some(address) = secret.address.as_deref() {
            self.check_address(address)?;
        }
        let credentials = cipher.decrypt_credentials(&secret)?;
        self.prepare_account(request, Account::from_secret(&secret, credentials))
            .await
    }

    /// [`prepare`](Self::prepare) for credentials in hand: see
    /// [`sync_account`](Self::sync_account).
    pub async fn prepare_account(
        &self,
        request: SyncRequest,
        account: Account,
    ) -> Result<PreparedSync> {
        self.options.validate()?;
        request.validate()?;
        refuse_all_regions(&request)?;
        if account.vendor.requires_region() && request.region.is_empty() {
            return Err(Error::invalid_field(
                "region",
                format!("is required for {} accounts", account.vendor),
            ));
        }
        let provider = self.build_provider(
            &request.secret_id,
            &request.region,
            request.resource_type,
            account,
        )?;
        self.prepare_listing(request, provider).await
    }

    /// The provider of `account` for `region`, built by the registry with the account's
    /// endpoint, TLS settings and the limiter of `secret_id`. No request is made.
    fn build_provider(
        &self,
        secret_id: &str,
        region: &str,
        resource_type: ResourceType,
        account: Account,
    ) -> Result<Listing> {
        let ctx = self.provider_context(secret_id, region, account)?;
        let vendor = ctx.vendor;
        let provider = match resource_type {
            ResourceType::Rds => {
                let provider = self.registry.database_provider(ctx)?;
                Listing::Databases(provider, self.database_store_or_err()?)
            }
            _ => Listing::Hosts(self.registry.host_provider(ctx)?),
        };
        if provider.vendor() != vendor {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the provider registered for {vendor} lists {} records",
                    provider.vendor()
                ),
            ));
        }
        Ok(provider)
    }

    /// What the registry builds a provider of `account` for `region` from: the
    /// account's endpoint (checked against the address policy), TLS settings and the
    /// limiter of `secret_id`.
    fn provider_context(
        &self,
        secret_id: &str,
        region: &str,
        account: Account,
    ) -> Result<ProviderContext> {
        if let Some(address) = account.endpoint.as_deref() {
            self.check_address(address)?;
        }
        // TLS trust belongs to the account: its CA bundle, or (lab only) no verification.
        let mut http = self.options.http.clone();
        if let Some(pem) = &account.tls_ca_pem {
            http.ca_bundle_pem = Some(pem.clone().into_bytes());
        }
        if account.tls_skip_verify {
            http.accept_invalid_certs = true;
        }
        Ok(ProviderContext {
            secret_id: secret_id.to_owned(),
            vendor: account.vendor,
            credentials: account.credentials,
            region: region.to_owned(),
            endpoint: account.endpoint,
            allow_insecure_http: account.allow_insecure_http,
            request_rate: account.request_rate,
            limiter: self.limiter_for(secret_id, account.request_rate),
            http,
        })
    }

    /// [`prepare`](Self::prepare) for a provider built by hand: see
    /// [`sync_provider`](Self::sync_provider).
    pub async fn prepare_provider(
        &self,
        request: SyncRequest,
        provider: Arc<dyn HostProvider>,
    ) -> Result<PreparedSync> {
        if request.resource_type == ResourceType::Rds {
            return Err(Error::invalid_field(
                "resource_type",
                "is rds but the provider lists hosts: use prepare_database_provider",
            ));
        }
        self.prepare_listing(request, Listing::Hosts(provider))
            .await
    }

    /// [`prepare_provider`](Self::prepare_provider) for a database (RDS) provider built
    /// by hand; the request's `resource_type` is taken as `rds`.
    pub async fn prepare_database_provider(
        &self,
        mut request: SyncRequest,
        provider: Arc<dyn DatabaseProvider>,
    ) -> Result<PreparedSync> {
        request.resource_type = ResourceType::Rds;
        let store = self.database_store_or_err()?;
        self.prepare_listing(request, Listing::Databases(provider, store))
            .await
    }

    /// Runs one sync of database instances with a provider built by hand, as
    /// [`sync_provider`](Self::sync_provider) does for hosts.
    pub async fn sync_database_provider(
        &self,
        request: SyncRequest,
        provider: Arc<dyn DatabaseProvider>,
    ) -> Result<SyncResponse> {
        self.prepare_database_provider(request, provider)
            .await?
            .run()
            .await
    }

    async fn prepare_listing(
        &self,
        request: SyncRequest,
        provider: Listing,
    ) -> Result<PreparedSync> {
        self.options.validate()?;
        request.validate()?;
        refuse_all_regions(&request)?;
        let vendor = provider.vendor();
        // vSphere's region is the vCenter host, which the provider knows; every other
        // vendor's provider lists the region it was built for.
        if vendor.requires_region() && request.region != provider.region() {
            return Err(Error::invalid_field(
                "region",
                format!(
                    "is {:?} but the provider lists {:?}",
                    request.region,
                    provider.region()
                ),
            ));
        }
        let scope = SyncScope::new(
            request.secret_id.clone(),
            vendor,
            provider.region(),
            request.resource_type,
        );
        let guard = self.lock_scope(&scope)?;
        // Then the store's lock, which other processes sharing the store also take.
        let lease = self.hosts.try_lock_scope(&scope).await?.ok_or_else(|| {
            Error::new(
                ErrorKind::Conflict,
                format!("a sync of {scope} is already running in another process"),
            )
        })?;
        Ok(PreparedSync {
            syncer: self.clone(),
            request,
            scope,
            provider,
            progress: None,
            trigger: SyncTrigger::Library,
            locks: ScopeLocks {
                _local: guard,
                store: lease,
            },
        })
    }

    /// The database store, or the error of a syncer without one.
    fn database_store_or_err(&self) -> Result<Arc<dyn DatabaseStore>> {
        self.databases.clone().ok_or_else(|| {
            Error::invalid_field(
                "resource_type",
                "is rds but this syncer has no database store (Syncer::with_database_store)",
            )
        })
    }

    fn lock_scope(&self, scope: &SyncScope) -> Result<ScopeGuard> {
        if !lock(&self.shared.running).insert(scope.clone()) {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("a sync of {scope} is already running"),
            ));
        }
        Ok(ScopeGuard {
            shared: Arc::clone(&self.shared),
            scope: scope.clone(),
        })
    }

    /// One limiter per secret (or account id), shared by its concurrent runs (several
    /// regions at once still respect the secret's rate).
    fn limiter_for(&self, id: &str, rate: u32) -> Arc<RateLimiter> {
        let mut map = lock(&self.shared.limiters);
        if let Some((known, weak)) = map.get(id) {
            if *known == rate {
                if let Some(limiter) = weak.upgrade() {
                    return limiter;
                }
            }
        }
        let limiter = Arc::new(RateLimiter::per_second(rate));
        map.retain(|_, (_, w)| w.strong_count() > 0);
        map.insert(id.to_owned(), (rate, Arc::downgrade(&limiter)));
        limiter
    }

    /// The time every host of this run is marked as seen at; hosts of the scope seen
    /// before it are the missing ones. Strictly increasing and in whole microseconds, so
    /// two quick runs never share it and SQL stores keep it exactly.
    fn next_run_start(&self) -> DateTime<Utc> {
        let mut last = lock(&self.shared.last_start);
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
    /// once for several pages. When storing fails, or the drain is dropped (time-out,
    /// caller gone), the listing is dropped at once ([`run_beside`]).
    #[allow(clippy::too_many_arguments)]
    fn drain<'a, R: Record>(
        &'a self,
        store: &'a dyn Store<R>,
        scope: &'a SyncScope,
        pages: futures::stream::BoxStream<'static, Result<Page<R>>>,
        seen_at: DateTime<Utc>,
        details: DetailsMode,
        tally: &'a mut Tally,
        publish: &'a (dyn Fn(SyncProgress) + Sync),
    ) -> impl Future<Output = ()> + 'a {
        let (tx, rx) = mpsc::channel::<Result<Page<R>>>(self.options.queue_pages.max(1));
        let listing = forward(pages, tx);
        let storing = async move {
            if let Err(e) = self
                .store_pages(store, scope, rx, seen_at, details, tally, publish)
                .await
            {
                tally.error = Some(e);
            }
        };
        run_beside(listing, storing)
    }

    /// Stores the pages `rx` receives until the listing ends (`Ok`) or fails, or a page
    /// fails to store (the error). Pages already listed while the last batch was written
    /// go into the same upsert (one transaction for all of them, when storing is the
    /// slower side); nothing waits for a page to arrive.
    #[allow(clippy::too_many_arguments)]
    async fn store_pages<R: Record>(
        &self,
        store: &dyn Store<R>,
        scope: &SyncScope,
        mut rx: mpsc::Receiver<Result<Page<R>>>,
        seen_at: DateTime<Utc>,
        details: DetailsMode,
        tally: &mut Tally,
        publish: &(dyn Fn(SyncProgress) + Sync),
    ) -> Result<()> {
        let batch_pages = self.options.queue_pages.max(1) + 1;
        while let Some(item) = rx.recv().await {
            let mut batch = vec![item?];
            // A listing error behind pages taken for the batch: those pages are stored
            // first, then the run ends with it.
            let mut listing_error = None;
            while batch.len() < batch_pages {
                match rx.try_recv() {
                    Ok(Ok(page)) => batch.push(page),
                    Ok(Err(e)) => {
                        listing_error = Some(e);
                        break;
                    }
                    Err(_) => break,
                }
            }
            self.store_batch(store, scope, batch, seen_at, details, tally)
                .await?;
            publish(tally.progress(SyncState::Running));
            if let Some(e) = listing_error {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Upserts the records of `batch` in one call and counts them, and the records the
    /// provider could not map, in `tally`.
    async fn store_batch<R: Record>(
        &self,
        store: &dyn Store<R>,
        scope: &SyncScope,
        batch: Vec<Page<R>>,
        seen_at: DateTime<Utc>,
        details: DetailsMode,
        tally: &mut Tally,
    ) -> Result<()> {
        let first_page = tally.pages + 1;
        let count = batch.len() as u64;
        let mut hosts = Vec::new();
        for page in batch {
            tally.expected = page.total.or(tally.expected);
            if page.moved.is_some() {
                tally.moved = page.moved;
            }
            tally.record_unmapped(scope, &page.failed, details);
            hosts.extend(page.records);
        }
        for h in &mut hosts {
            h.set_secret_id(&scope.secret_id);
        }
        let outcomes = store
            .upsert(scope, &hosts, seen_at)
            .await
            .map_err(|e| match count {
                1 => e.context(format!("storing page {first_page}")),
                _ => e.context(format!(
                    "storing pages {first_page} to {}",
                    first_page + count - 1
                )),
            })?;
        if outcomes.len() != hosts.len() {
            return Err(Error::store(format!(
                "the store answered {} outcomes for {} hosts",
                outcomes.len(),
                hosts.len()
            )));
        }
        tally.pages += count;
        tally.record(scope, &hosts, &outcomes, details);
        Ok(())
    }

    /// Releases the scope's missing hosts that the vendor confirms gone, unless the
    /// guard refuses. Hosts the by-id lookup still finds are stored as seen (counted in
    /// `tally`), never released. A provider without a lookup releases only hosts that
    /// two consecutive complete runs missed.
    #[allow(clippy::too_many_arguments)]
    async fn release<R: Record>(
        &self,
        store: &dyn Store<R>,
        scope: &SyncScope,
        provider: &dyn Lister<R>,
        lease: &ScopeLease,
        run_start: DateTime<Utc>,
        request: &SyncRequest,
        tally: &mut Tally,
        publish: &(dyn Fn(SyncProgress) + Sync),
    ) -> Release {
        let can_lookup = provider.lookup(Vec::new()).is_some();
        if let (false, Some(moved)) = (can_lookup, &tally.moved) {
            return Release::failed(
                Error::new(ErrorKind::Conflict, moved.clone()),
                format!(
                    "{moved}; the provider cannot confirm by id which hosts are gone, so \
                     nothing is released"
                ),
            );
        }
        let stats = match store.scope_stats(scope, run_start).await {
            Ok(stats) => stats,
            Err(e) => return Release::failed_at(e, "counting the scope's missing hosts"),
        };
        if stats.missing == 0 {
            return Release::default();
        }
        if !request.force_release {
            if let Some(reason) = self.guard_refuses(stats) {
                return Release::skipped(reason);
            }
        }
        let missing = match self.missing_hosts(store, scope, run_start).await {
            Ok(missing) => missing,
            Err(e) => return Release::failed_at(e, "reading the scope's missing hosts"),
        };
        let ids: Vec<String> = missing.iter().map(|m| m.instance_id.clone()).collect();
        let mut outcome = Release::default();
        let gone = match provider.lookup(ids.clone()) {
            Some(found) => {
                let alive = match self
                    .confirm(
                        store,
                        scope,
                        found,
                        &ids,
                        run_start,
                        request.details,
                        tally,
                        publish,
                    )
                    .await
                {
                    Ok(alive) => alive,
                    Err((e, alive)) => {
                        let reason = format!(
                            "the by-id lookup of {} missing hosts failed ({e}); nothing is \
                             released",
                            ids.len()
                        );
                        let mut failed = Release::failed(e, reason);
                        failed.found_alive = alive;
                        return failed;
                    }
                };
                outcome.found_alive = alive.len() as u64;
                let gone: Vec<String> = ids.into_iter().filter(|id| !alive.contains(id)).collect();
                outcome.confirmed = gone.len() as u64;
                gone
            }
            None => {
                // No by-id lookup: release what an earlier complete run missed too, and
                // mark the rest, to be released if the next complete run misses them.
                let (twice, once): (Vec<MissingHost>, Vec<MissingHost>) =
                    missing.into_iter().partition(|m| m.missed_at.is_some());
                let once: Vec<String> = once.into_iter().map(|m| m.instance_id).collect();
                for chunk in once.chunks(RELEASE_CHUNK) {
                    if let Err(e) = store.mark_missed(scope, chunk, run_start).await {
                        return Release::failed_at(e, "marking missing hosts");
                    }
                }
                if !once.is_empty() {
                    outcome.skipped = Some(format!(
                        "{} hosts missing for the first time are kept until the next complete \
                         run misses them too: the provider cannot confirm by id that they are \
                         gone",
                        once.len()
                    ));
                }
                twice.into_iter().map(|m| m.instance_id).collect()
            }
        };
        if gone.is_empty() {
            return outcome;
        }
        // Another run may have taken the scope over if this one's lock was lost (a dead
        // database session, an expired lease): then its view of the scope counts, not ours.
        let lost = match lease.is_held().await {
            Ok(true) => None,
            Ok(false) => Some(Release::failed(
                Error::new(
                    ErrorKind::Conflict,
                    format!("the lock on {scope} was lost during the run"),
                ),
                "the scope's lock was lost during the run; nothing is released".to_owned(),
            )),
            Err(e) => Some(Release::failed_at(e, "checking the scope's lock")),
        };
        if let Some(mut lost) = lost {
            lost.confirmed = outcome.confirmed;
            lost.found_alive = outcome.found_alive;
            return lost;
        }
        let released_at = Utc::now();
        for chunk in gone.chunks(RELEASE_CHUNK) {
            match store.release(scope, chunk, run_start, released_at).await {
                Ok(n) => outcome.released += n,
                Err(e) => {
                    let released = outcome.released;
                    let mut failed = Release::failed_at(e, "releasing hosts");
                    failed.released = released;
                    failed.confirmed = outcome.confirmed;
                    failed.found_alive = outcome.found_alive;
                    return failed;
                }
            }
        }
        tracing::info!(
            scope = %scope,
            released = outcome.released,
            found_alive = outcome.found_alive,
            "released hosts the vendor no longer has"
        );
        outcome
    }

    /// Why the guard refuses a release of `stats.missing` hosts, if it does.
    fn guard_refuses(&self, stats: ScopeStats) -> Option<String> {
        if stats.missing >= stats.active {
            return Some(format!(
                "refusing to release all {} hosts of the scope: the vendor listed none of \
                 them, which is as often a permission problem as an empty region; pass \
                 force_release to release them",
                stats.active
            ));
        }
        let share = stats.missing as f64 / stats.active as f64;
        (share > self.options.max_release_share).then(|| {
            format!(
                "refusing to release {} of {} hosts ({:.0}%), more than the allowed {:.0}%; \
                 pass force_release to release them",
                stats.missing,
                stats.active,
                share * 100.0,
                self.options.max_release_share * 100.0
            )
        })
    }

    /// Every missing host of the scope (at most the guard's share of it).
    async fn missing_hosts<R: Record>(
        &self,
        store: &dyn Store<R>,
        scope: &SyncScope,
        run_start: DateTime<Utc>,
    ) -> Result<Vec<MissingHost>> {
        let mut all: Vec<MissingHost> = Vec::new();
        loop {
            let after = all.last().map(|m| m.instance_id.as_str());
            let page = store.missing(scope, run_start, after, MISSING_PAGE).await?;
            let done = page.len() < MISSING_PAGE as usize;
            all.extend(page);
            if done {
                return Ok(all);
            }
        }
    }

    /// Stores the hosts a by-id lookup finds among `ids` and answers their ids; on a
    /// failed lookup or store, the error and the ids found before it.
    #[allow(clippy::too_many_arguments)]
    async fn confirm<R: Record>(
        &self,
        store: &dyn Store<R>,
        scope: &SyncScope,
        mut found: futures::stream::BoxStream<'static, Result<Page<R>>>,
        ids: &[String],
        run_start: DateTime<Utc>,
        details: DetailsMode,
        tally: &mut Tally,
        publish: &(dyn Fn(SyncProgress) + Sync),
    ) -> std::result::Result<HashSet<String>, (Error, u64)> {
        let wanted: HashSet<&str> = ids.iter().map(String::as_str).collect();
        let mut alive: HashSet<String> = HashSet::new();
        while let Some(item) = found.next().await {
            let mut page = item.map_err(|e| (e, alive.len() as u64))?;
            tally.pages += 1;
            // Only hosts asked for, each once: a lookup answer is no listing.
            page.records
                .retain(|h| wanted.contains(h.instance_id()) && !alive.contains(h.instance_id()));
            for h in &mut page.records {
                h.set_secret_id(&scope.secret_id);
            }
            if !page.records.is_empty() {
                let outcomes = match store.upsert(scope, &page.records, run_start).await {
                    Ok(o) if o.len() == page.records.len() => o,
                    Ok(o) => {
                        let e = Error::store(format!(
                            "the store answered {} outcomes for {} hosts",
                            o.len(),
                            page.records.len()
                        ));
                        return Err((e, alive.len() as u64));
                    }
                    Err(e) => {
                        return Err((e.context("storing hosts found by id"), alive.len() as u64))
                    }
                };
                tally.record(scope, &page.records, &outcomes, details);
                alive.extend(page.records.iter().map(|h| h.instance_id().to_owned()));
            }
            publish(tally.progress(SyncState::Running));
        }
        Ok(alive)
    }
}

/// Missing hosts read from the store at a time.
const MISSING_PAGE: u32 = 1000;

/// Hosts released (or marked missing) in one store call.
const RELEASE_CHUNK: usize = 500;

/// The region a provider is built for only to ask the vendor for the account's regions:
/// one every account of the vendor can call.
fn bootstrap_region(vendor: Vendor) -> &'static str {
    match vendor {
        Vendor::Aliyun => "cn-hangzhou",
        Vendor::Tencent => "ap-guangzhou",
        Vendor::Huawei => "cn-north-4",
        _ => "",
    }
}

/// Refuses `"*"` where one region is synced: every region is [`Syncer::sync_all`]'s.
fn refuse_all_regions(request: &SyncRequest) -> Result<()> {
    if request.is_all_regions() {
        return Err(Error::invalid_field(
            "region",
            "\"*\" asks for every region of the account: run it with Syncer::sync_all (or \
             sync_account_all)",
        ));
    }
    Ok(())
}

/// The end of one region's run in a whole-account sync.
struct RegionSummaryRun {
    /// The region (vSphere: the vCenter host, once its provider is built).
    region: String,
    result: Result<SyncResponse>,
    elapsed_ms: u64,
}

/// The answer of a whole-account sync: the regions' runs summed up, in their order, with
/// at most `max_details` details in all.
fn aggregate(runs: Vec<RegionSummaryRun>, max_details: usize) -> SyncResponse {
    let mut total = SyncResponse {
        complete: true,
        ..SyncResponse::default()
    };
    let mut skipped: Vec<String> = Vec::new();
    for run in runs {
        let summary = match run.result {
            Ok(mut r) => {
                total.total_succeed += r.total_succeed;
                total.total_failed += r.total_failed;
                total.created += r.created;
                total.updated += r.updated;
                total.unchanged += r.unchanged;
                total.released += r.released;
                total.release_confirmed += r.release_confirmed;
                total.release_found_alive += r.release_found_alive;
                total.pages += r.pages;
                let room = max_details.saturating_sub(total.details.len());
                total.details_truncated |= r.details_truncated || r.details.len() > room;
                total.details.extend(r.details.drain(..).take(room));
                if let Some(reason) = &r.release_skipped {
                    skipped.push(format!("{}: {reason}", region_label(&run.region)));
                }
                RegionSummary::of(run.region, &r)
            }
            Err(e) => RegionSummary::failed(run.region, &e, run.elapsed_ms),
        };
        total.complete &= summary.complete;
        if let (None, Some(e)) = (&total.error, &summary.error) {
            let mut e = e.clone();
            e.message = format!("{}: {}", region_label(&summary.region), e.message);
            total.error = Some(e);
        }
        total.regions.push(summary);
    }
    total.release_skipped = (!skipped.is_empty()).then(|| skipped.join("; "));
    total
}

/// How a region is named in an aggregated message.
fn region_label(region: &str) -> String {
    if region.is_empty() {
        "the account's one scope".to_owned()
    } else {
        format!("region {region}")
    }
}

/// Sends the listing's pages to `tx` until it ends, fails (the error is sent) or the
/// receiver is gone.
async fn forward<R>(
    mut pages: futures::stream::BoxStream<'static, Result<Page<R>>>,
    tx: mpsc::Sender<Result<Page<R>>>,
) {
    while let Some(item) = pages.next().await {
        let last = item.is_err();
        if tx.send(item).await.is_err() || last {
            break;
        }
    }
}

/// Runs `listing` beside `storing` until `storing` ends, then drops `listing` with
/// whatever request it had in flight.
///
/// On a multi-threaded runtime the listing is a task of its own, so that fetching and
/// decoding the next pages use another core while this one writes a page. On a
/// current-thread runtime, where a task buys no parallelism, it is polled in place.
async fn run_beside(
    listing: impl Future<Output = ()> + Send + 'static,
    storing: impl Future<Output = ()>,
) {
    let parallel = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
    if !parallel {
        match future::select(pin!(storing), pin!(listing)).await {
            Either::Left(((), _listing)) => {}
            Either::Right(((), storing)) => storing.await,
        }
        return;
    }
    // In the run's span, so the listing's vendor calls are its children.
    let mut task = AbortOnDrop(tokio::spawn(listing.in_current_span()));
    storing.await;
    task.0.abort();
    // A listing that panicked closed the channel as if it had ended: the panic goes on
    // to the caller, as it does when the listing is polled in place.
    if let Err(e) = (&mut task.0).await {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

/// What the release step of a run did.
#[derive(Debug, Default)]
struct Release {
    released: u64,
    confirmed: u64,
    found_alive: u64,
    skipped: Option<String>,
    error: Option<Error>,
}

impl Release {
    fn skipped(reason: String) -> Release {
        Release {
            skipped: Some(reason),
            ..Release::default()
        }
    }

    fn failed(error: Error, reason: String) -> Release {
        Release {
            skipped: Some(reason),
            error: Some(error),
            ..Release::default()
        }
    }

    fn failed_at(error: Error, doing: &str) -> Release {
        let error = error.context(doing);
        let reason = format!("release failed: {error}");
        Release::failed(error, reason)
    }
}

/// What started a run: the `trigger` label of its [metrics](crate::telemetry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SyncTrigger {
    /// A program calling the library (the default).
    #[default]
    Library,
    /// A request to the HTTP API.
    Api,
    /// A secret's schedule.
    Schedule,
}

impl SyncTrigger {
    /// The label value: `library`, `api` or `schedule`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SyncTrigger::Library => "library",
            SyncTrigger::Api => "api",
            SyncTrigger::Schedule => "schedule",
        }
    }
}

impl fmt::Display for SyncTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A sync that passed every check and holds its scope's locks; nothing is listed yet.
/// Made by [`Syncer::prepare`] (or `prepare_account`, `prepare_provider`); dropping it
/// releases the locks. It owns what it needs (`'static` and `Send`), so
/// `tokio::spawn(prepared.run())` runs it in the background.
pub struct PreparedSync {
    syncer: Syncer,
    request: SyncRequest,
    scope: SyncScope,
    provider: Listing,
    progress: Option<watch::Sender<SyncProgress>>,
    trigger: SyncTrigger,
    locks: ScopeLocks,
}

impl fmt::Debug for PreparedSync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedSync")
            .field("request", &self.request)
            .field("scope", &self.scope)
            .field("provider", &self.provider)
            .field("trigger", &self.trigger)
            .finish_non_exhaustive()
    }
}

impl PreparedSync {
    /// The scope the run lists and may release in.
    pub fn scope(&self) -> &SyncScope {
        &self.scope
    }

    /// This run, publishing live counters to `progress` as pages are stored.
    pub fn with_progress(mut self, progress: watch::Sender<SyncProgress>) -> PreparedSync {
        self.progress = Some(progress);
        self
    }

    /// This run, started by `trigger` (the `trigger` label of its metrics; default
    /// [`SyncTrigger::Library`]).
    pub fn with_trigger(mut self, trigger: SyncTrigger) -> PreparedSync {
        self.trigger = trigger;
        self
    }

    /// Lists, stores and releases (see [`Syncer::sync`]).
    ///
    /// The run is a `sync` tracing span (`secret_id`, `vendor`, `region`; never a key or
    /// secret) and records the [metrics of `telemetry`](crate::telemetry) when it ends.
    pub async fn run(self) -> Result<SyncResponse> {
        self.run_holding_locks().await.0
    }

    /// [`run`](Self::run), keeping the scope's locks until the returned [`HeldScope`] is
    /// dropped: for a caller that records the run's end somewhere other processes read
    /// (a task store), so that none of them finds the scope free, and takes the run for
    /// a dead process's, before the end is recorded.
    pub async fn run_holding_locks(self) -> (Result<SyncResponse>, HeldScope) {
        let span = tracing::info_span!(
            "sync",
            secret_id = %self.scope.secret_id,
            vendor = %self.scope.vendor,
            region = %self.scope.region,
        );
        let (scope, trigger) = (self.scope.clone(), self.trigger);
        let started = tokio::time::Instant::now();
        let (result, locks) = self.run_in_span().instrument(span).await;
        telemetry::record_run(&scope, trigger, started.elapsed().as_secs_f64(), &result);
        (result, HeldScope { _locks: locks })
    }

    async fn run_in_span(self) -> (Result<SyncResponse>, ScopeLocks) {
        let PreparedSync {
            syncer,
            request,
            scope,
            provider,
            progress,
            trigger: _,
            locks,
        } = self;
        let result = match &provider {
            Listing::Hosts(p) => {
                syncer
                    .run_records(
                        &syncer.hosts,
                        p,
                        &scope,
                        &request,
                        progress.as_ref(),
                        &locks.store,
                    )
                    .await
            }
            Listing::Databases(p, store) => {
                syncer
                    .run_records(store, p, &scope, &request, progress.as_ref(), &locks.store)
                    .await
            }
        };
        (result, locks)
    }
}

impl Syncer {
    /// Lists the records of `scope` from `lister` into `store`, then releases the
    /// missing ones the vendor confirms gone: one run, whatever the kind of record.
    async fn run_records<R: Record>(
        &self,
        store: &dyn Store<R>,
        lister: &dyn Lister<R>,
        scope: &SyncScope,
        request: &SyncRequest,
        progress: Option<&watch::Sender<SyncProgress>>,
        lease: &ScopeLease,
    ) -> Result<SyncResponse> {
        let started = tokio::time::Instant::now();
        let publish = |p: SyncProgress| {
            if let Some(tx) = &progress {
                tx.send_replace(p);
            }
        };
        publish(SyncProgress {
            state: SyncState::Running,
            ..SyncProgress::default()
        });
        let run_start = self.next_run_start();
        tracing::info!(scope = %scope, "sync started");

        let mut tally = Tally {
            max_details: self.options.max_details,
            ..Tally::default()
        };
        let drain = self.drain(
            store,
            scope,
            lister.pages(),
            run_start,
            request.details,
            &mut tally,
            &publish,
        );
        let timed_out = tokio::time::timeout(self.options.run_timeout, drain)
            .await
            .is_err();
        if timed_out {
            tally.error = Some(Error::new(
                ErrorKind::Timeout,
                format!(
                    "the run did not finish within {} s",
                    self.options.run_timeout.as_secs_f64()
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
        let listed = tally.error.is_none();
        let release = if !listed {
            Release::skipped("the listing is incomplete; nothing is released".to_owned())
        } else if tally.failed > 0 {
            Release::skipped(format!(
                "{} hosts failed to map or store; nothing is released",
                tally.failed
            ))
        } else {
            self.release(
                store, scope, lister, lease, run_start, request, &mut tally, &publish,
            )
            .await
        };
        // A failed release (or lookup) leaves the run incomplete: nothing can be said of
        // the hosts it was about.
        let complete = listed && release.error.is_none();
        let error = tally
            .error
            .as_ref()
            .or(release.error.as_ref())
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
            details_truncated: tally.details_truncated,
            created: tally.created,
            updated: tally.updated,
            unchanged: tally.unchanged,
            released: release.released,
            release_confirmed: release.confirmed,
            release_found_alive: release.found_alive,
            release_skipped: release.skipped,
            complete,
            pages: tally.pages,
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            error,
            regions: Vec::new(),
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

/// What a run lists, and (for database instances) where it stores them; hosts go to
/// the syncer's host store.
#[derive(Clone)]
enum Listing {
    Hosts(Arc<dyn HostProvider>),
    Databases(Arc<dyn DatabaseProvider>, Arc<dyn DatabaseStore>),
}

impl Listing {
    fn vendor(&self) -> Vendor {
        match self {
            Listing::Hosts(p) => p.vendor(),
            Listing::Databases(p, _) => p.vendor(),
        }
    }

    fn region(&self) -> &str {
        match self {
            Listing::Hosts(p) => p.region(),
            Listing::Databases(p, _) => p.region(),
        }
    }
}

impl fmt::Debug for Listing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listing::Hosts(p) => p.fmt(f),
            Listing::Databases(p, _) => p.fmt(f),
        }
    }
}

/// Told about each region's run of a whole-account sync
/// ([`Syncer::sync_all_observed`]): a caller that keeps a record per region implements
/// it. Both calls are awaited by the region's run, so they should be quick.
pub trait RegionObserver: Send + Sync + 'static {
    /// The run of `scope` passed its checks and holds its locks; nothing is listed yet.
    /// Answers where to publish its live progress, if anywhere.
    fn started(&self, scope: &SyncScope)
        -> BoxFuture<'static, Option<watch::Sender<SyncProgress>>>;

    /// The run of `scope` ended with `result`, its locks still held. A region that
    /// failed its checks ends without having started.
    fn ended(&self, scope: &SyncScope, result: &Result<SyncResponse>) -> BoxFuture<'static, ()>;

    /// What started the regions' runs: the `trigger` label of their metrics (default
    /// [`SyncTrigger::Library`]).
    fn trigger(&self) -> SyncTrigger {
        SyncTrigger::Library
    }
}

/// The locks of a scope whose run has ended, held until dropped
/// ([`PreparedSync::run_holding_locks`]).
pub struct HeldScope {
    _locks: ScopeLocks,
}

impl fmt::Debug for HeldScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeldScope").finish_non_exhaustive()
    }
}
