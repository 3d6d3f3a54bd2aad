//! [`VsphereHostProvider`]: the virtual machines of one vCenter, page by page.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use cmdb_core::{Host, HostPage, HostProvider, Result, Vendor};
use cmdb_http::token_pages_pipelined;
use futures::stream::{BoxStream, StreamExt};
use tokio::sync::Mutex;

use crate::client::{read_answer, Answer, PropertiesPage, Session, VsphereClient};
use crate::error::is_not_authenticated;
use crate::map::to_host;
use crate::model::{Datacenter, RetrieveResult, ServiceContent, VirtualMachine, VM_PROPERTIES};
use crate::soap::MoRef;

/// Lists the virtual machines of a vCenter (or ESXi host) through vim25 SOAP.
///
/// Each listing logs in, finds the datacenters (one container view), then for each
/// datacenter opens a container view of its virtual machines and reads them with
/// `RetrievePropertiesEx` / `ContinueRetrievePropertiesEx`, one round trip per page of
/// at most the page size. The next page is asked for as soon as the token is read from
/// the start of an answer, so that it is on the wire while the page is decoded (one
/// request in flight at a time). Each host's zone is its datacenter's name, its region
/// the vCenter host. Templates are skipped. Views are destroyed and the session logged out
/// at the end, after an error, and (in a spawned task) when the stream is dropped early.
///
/// If the session expires (`NotAuthenticated`), the listing logs in once more and reads
/// the current datacenter again from its start, skipping the machines it already
/// listed; a second expiry in a row ends the listing with the error.
///
/// Build it with [`VsphereBuilder`](crate::VsphereBuilder).
#[derive(Clone)]
pub struct VsphereHostProvider {
    client: Arc<VsphereClient>,
    region: String,
    page_size: u32,
}

impl fmt::Debug for VsphereHostProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VsphereHostProvider")
            .field("region", &self.region)
            .field("page_size", &self.page_size)
            .field("client", &self.client)
            .finish()
    }
}

impl VsphereHostProvider {
    pub(crate) fn new(client: Arc<VsphereClient>, region: String, page_size: u32) -> Self {
        VsphereHostProvider {
            client,
            region,
            page_size,
        }
    }

    /// Virtual machines asked for per page.
    pub fn page_size(&self) -> u32 {
        self.page_size
    }
}

impl HostProvider for VsphereHostProvider {
    fn vendor(&self) -> Vendor {
        Vendor::Vsphere
    }

    /// The vCenter host, with its port when it is not the scheme's default.
    fn region(&self) -> &str {
        &self.region
    }

    fn pages(&self) -> BoxStream<'static, Result<HostPage>> {
        let listing = Arc::new(Mutex::new(Listing {
            client: Arc::clone(&self.client),
            page_size: self.page_size,
            open: None,
        }));
        let fetching = Arc::clone(&listing);
        let mut decoder = PageDecoder::new(self.region.clone());
        // The cursor only feeds the check against a server repeating a token: the
        // listing keeps its own place.
        let pages = token_pages_pipelined(
            move |_cursor: Option<String>| {
                let listing = Arc::clone(&fetching);
                async move { listing.lock().await.next_page().await }
            },
            move |page: RawPage| decoder.decode(page),
        );
        // A page that fails to decode leaves the session open (a failed request closes
        // it itself): close it before the error goes on, once the request in flight is
        // cancelled.
        pages
            .then(move |page| {
                let listing = Arc::clone(&listing);
                async move {
                    if page.is_err() {
                        listing.lock().await.close().await;
                    }
                    page
                }
            })
            .boxed()
    }
}

/// The state of one listing.
struct Listing {
    client: Arc<VsphereClient>,
    page_size: u32,
    /// Present while logged in.
    open: Option<Open>,
}

/// A logged-in listing: where it is.
struct Open {
    session: Session,
    content: ServiceContent,
    datacenters: Vec<Datacenter>,
    /// The datacenter being listed.
    index: usize,
    /// Its container view, once created.
    view: Option<MoRef>,
    /// The token of its next page, once the first page is read.
    token: Option<String>,
    /// Whether this datacenter's listing restarted after a re-login: its pages say so,
    /// for [`PageDecoder`] to skip the machines it already listed.
    restarted: bool,
}

/// A page as the listing fetched it: its answer, not decoded yet, and what decoding it
/// needs.
#[derive(Debug)]
struct RawPage {
    /// `None` when there was nothing to ask for (no datacenters).
    answer: Option<Answer>,
    /// The position of the page's datacenter in the listing.
    datacenter: usize,
    /// Its name: the zone of its hosts.
    zone: String,
    /// Whether the datacenter's listing restarted after a re-login.
    restarted: bool,
}

/// Decodes the pages of one listing into hosts, in order, on the consumer's side of
/// [`token_pages_pipelined`] while the listing fetches the next one.
#[derive(Debug)]
pub(crate) struct PageDecoder {
    region: String,
    /// The datacenter of the pages decoded last.
    datacenter: Option<usize>,
    /// Hashes of the instance ids listed from it, so that a listing restarted after a
    /// re-login lists none twice. See [`Seen`].
    seen: Seen,
}

impl PageDecoder {
    /// A decoder for the hosts of vCenter `region`.
    pub(crate) fn new(region: String) -> PageDecoder {
        PageDecoder {
            region,
            datacenter: None,
            seen: Seen::default(),
        }
    }

    fn decode(&mut self, page: RawPage) -> Result<HostPage> {
        let hosts = match &page.answer {
            Some(answer) => self.decode_answer(
                answer.operation(),
                answer.body(),
                page.datacenter,
                &page.zone,
                page.restarted,
            )?,
            None => {
                self.enter(page.datacenter);
                Vec::new()
            }
        };
        Ok(HostPage::new(hosts, None))
    }

    /// The hosts of the `RetrievePropertiesEx` answer `body` of `operation`, listed
    /// from datacenter number `datacenter`, named `zone`: its virtual machines but
    /// templates, and after a restart, none listed before.
    pub(crate) fn decode_answer(
        &mut self,
        operation: &str,
        body: &[u8],
        datacenter: usize,
        zone: &str,
        restarted: bool,
    ) -> Result<Vec<Host>> {
        self.enter(datacenter);
        read_answer(operation, body, |answer| {
            let chunk = RetrieveResult::from_answer(answer)?;
            let mut hosts = Vec::with_capacity(chunk.objects.len());
            for object in chunk.objects.iter().filter(|o| o.kind == "VirtualMachine") {
                let vm = VirtualMachine::from_object(object)?;
                if let Some(host) = to_host(vm, &self.region, zone) {
                    if self.seen.insert(id_hash(&host.instance_id), restarted) {
                        hosts.push(host);
                    }
                }
            }
            Ok(hosts)
        })
    }

    /// Starts over with `seen` when the listing moves on to the next datacenter.
    fn enter(&mut self, datacenter: usize) {
        if self.datacenter != Some(datacenter) {
            self.datacenter = Some(datacenter);
            self.seen = Seen::default();
        }
    }
}

/// The 64-bit hashes of the instance ids listed from one datacenter.
///
/// A first pass only appends to a plain vector: 8 bytes a machine (a hash set took 19 MB
/// for a million), and nothing is ever looked up. Only when the listing restarts after a
/// re-login is that vector sorted, once, and each machine of the restarted pass looked up
/// in it (binary search) and in the set of those listed since the restart. A hash
/// collision (about 3 in 100 million for a million machines) can therefore only ever
/// matter in a restarted listing.
#[derive(Debug, Default)]
struct Seen {
    /// Hashes listed before the first restart; sorted once `restarted` is set.
    first_pass: Vec<u64>,
    /// Hashes listed since the first restart.
    since_restart: HashSet<u64>,
    restarted: bool,
}

impl Seen {
    /// Records `hash` and says whether its machine is to be listed: always in a first
    /// pass, and in a restarted one only when it was not listed before.
    fn insert(&mut self, hash: u64, restarted: bool) -> bool {
        if !restarted {
            self.first_pass.push(hash);
            return true;
        }
        if !self.restarted {
            self.restarted = true;
            self.first_pass.sort_unstable();
            self.first_pass.dedup();
            self.first_pass.shrink_to_fit();
        }
        self.first_pass.binary_search(&hash).is_err() && self.since_restart.insert(hash)
    }
}

/// The hash of an instance id kept in [`Seen`].
fn id_hash(id: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut hasher);
    hasher.finish()
}

impl Listing {
    /// The next page's answer and the cursor after it; logs out after the last page and
    /// after an error.
    async fn next_page(&mut self) -> Result<(RawPage, Option<String>)> {
        match self.step().await {
            Ok((page, None)) => {
                self.close().await;
                Ok((page, None))
            }
            Ok(more) => Ok(more),
            Err(error) => {
                self.close().await;
                Err(error)
            }
        }
    }

    async fn step(&mut self) -> Result<(RawPage, Option<String>)> {
        let client = Arc::clone(&self.client);
        if self.open.is_none() {
            self.start(&client).await?;
        }
        let open = self.open.as_mut().expect("logged in above");
        if open.index >= open.datacenters.len() {
            let page = RawPage {
                answer: None,
                datacenter: open.index,
                zone: String::new(),
                restarted: false,
            };
            return Ok((page, None));
        }
        let chunk = open.fetch_chunk(&client, self.page_size).await?;
        open.token = chunk.token;
        let page = RawPage {
            answer: Some(chunk.answer),
            datacenter: open.index,
            zone: open.datacenters[open.index].name.clone(),
            restarted: open.restarted,
        };
        let cursor = match &open.token {
            Some(token) => Some(format!("{}/{token}", open.index)),
            None => {
                // This datacenter is done.
                if let Some(view) = open.view.take() {
                    if let Err(e) = client.destroy_view(&mut open.session, &view).await {
                        tracing::debug!(error = %e, "vSphere DestroyView failed");
                    }
                }
                open.index += 1;
                open.restarted = false;
                (open.index < open.datacenters.len()).then(|| format!("{}/", open.index))
            }
        };
        Ok((page, cursor))
    }

    /// Logs in and finds the datacenters.
    async fn start(&mut self, client: &VsphereClient) -> Result<()> {
        let mut session = Session::default();
        let content = client.retrieve_service_content(&mut session).await?;
        client.login(&mut session, &content).await?;
        let open = self.open.insert(Open {
            session,
            content,
            datacenters: Vec::new(),
            index: 0,
            view: None,
            token: None,
            restarted: false,
        });
        let root = open.content.root_folder.clone();
        let view = client
            .create_container_view(&mut open.session, &open.content, &root, "Datacenter")
            .await?;
        open.view = Some(view.clone());
        let mut page = client
            .retrieve_properties_ex(
                &mut open.session,
                &open.content,
                &view,
                "Datacenter",
                &["name"],
                crate::builder::MAX_PAGE_SIZE,
            )
            .await?;
        let mut tokens = HashSet::new();
        loop {
            let datacenters = &mut open.datacenters;
            page.answer.read(|answer| {
                let result = RetrieveResult::from_answer(answer)?;
                datacenters.extend(result.objects.iter().map(Datacenter::from_object));
                Ok(())
            })?;
            let Some(token) = page.token.take() else {
                break;
            };
            if !tokens.insert(token.clone()) {
                return Err(cmdb_core::Error::decode(
                    "vSphere repeated a page token while listing datacenters",
                ));
            }
            page = client
                .continue_retrieve_properties_ex(&mut open.session, &open.content, &token)
                .await?;
        }
        open.view = None;
        if let Err(e) = client.destroy_view(&mut open.session, &view).await {
            tracing::debug!(error = %e, "vSphere DestroyView failed");
        }
        tracing::debug!(
            datacenters = open.datacenters.len(),
            "listing vSphere virtual machines"
        );
        Ok(())
    }

    /// Destroys the open view and logs out, best effort.
    async fn close(&mut self) {
        if let Some(open) = self.open.take() {
            open.close(&self.client).await;
        }
    }
}

impl Open {
    /// The next page of the current datacenter, logging in again once if the session
    /// expired.
    async fn fetch_chunk(
        &mut self,
        client: &VsphereClient,
        page_size: u32,
    ) -> Result<PropertiesPage> {
        let mut logged_in_again = false;
        loop {
            match self.try_fetch_chunk(client, page_size).await {
                Err(e) if is_not_authenticated(&e) && !logged_in_again => {
                    logged_in_again = true;
                    tracing::warn!(
                        datacenter = %self.datacenters[self.index].name,
                        "the vSphere session expired; logging in again and re-reading the datacenter"
                    );
                    // The old session's view and token died with it.
                    self.view = None;
                    self.token = None;
                    self.restarted = true;
                    self.session.forget_cookie();
                    client.login(&mut self.session, &self.content).await?;
                }
                other => return other,
            }
        }
    }

    async fn try_fetch_chunk(
        &mut self,
        client: &VsphereClient,
        page_size: u32,
    ) -> Result<PropertiesPage> {
        let view = match &self.view {
            Some(view) => view.clone(),
            None => {
                let container = self.datacenters[self.index].moref.clone();
                let view = client
                    .create_container_view(
                        &mut self.session,
                        &self.content,
                        &container,
                        "VirtualMachine",
                    )
                    .await?;
                self.view = Some(view.clone());
                self.token = None;
                view
            }
        };
        match self.token.clone() {
            Some(token) => {
                client
                    .continue_retrieve_properties_ex(&mut self.session, &self.content, &token)
                    .await
            }
            None => {
                client
                    .retrieve_properties_ex(
                        &mut self.session,
                        &self.content,
                        &view,
                        "VirtualMachine",
                        VM_PROPERTIES,
                        page_size,
                    )
                    .await
            }
        }
    }

    async fn close(mut self, client: &VsphereClient) {
        if let Some(view) = self.view.take() {
            if let Err(e) = client.destroy_view(&mut self.session, &view).await {
                tracing::debug!(error = %e, "vSphere DestroyView failed");
            }
        }
        if self.session.has_cookie() {
            if let Err(e) = client.logout(&mut self.session, &self.content).await {
                tracing::debug!(error = %e, "vSphere Logout failed");
            }
        }
    }
}

impl Drop for Listing {
    fn drop(&mut self) {
        // Dropped mid-listing (the consumer stopped early): clean up in the background so
        // the vCenter does not keep the session and its views until they time out.
        let Some(open) = self.open.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let client = Arc::clone(&self.client);
                runtime.spawn(async move { open.close(&client).await });
            }
            Err(_) => tracing::debug!(
                "vSphere listing dropped outside a tokio runtime; its session will time out"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restarted_pass_lists_only_machines_not_listed_before() {
        let mut seen = Seen::default();
        // A first pass lists everything, a duplicate included.
        assert!([3, 1, 2, 1].iter().all(|h| seen.insert(*h, false)));
        // Restarted: the first pass's machines are skipped, new ones listed once.
        let listed: Vec<u64> = [1, 2, 3, 4, 5, 4]
            .into_iter()
            .filter(|h| seen.insert(*h, true))
            .collect();
        assert_eq!(listed, [4, 5]);
        // A second restart skips those of both passes.
        let listed: Vec<u64> = [5, 1, 6]
            .into_iter()
            .filter(|h| seen.insert(*h, true))
            .collect();
        assert_eq!(listed, [6]);
    }
}
