//! [`VsphereHostProvider`]: the virtual machines of one vCenter, page by page.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use cmdb_core::{HostPage, HostProvider, Result, Vendor};
use cmdb_http::token_pages;
use futures::stream::BoxStream;
use tokio::sync::Mutex;

use crate::client::{Session, VsphereClient};
use crate::error::is_not_authenticated;
use crate::map::to_host;
use crate::model::{Datacenter, RetrieveResult, ServiceContent, VirtualMachine, VM_PROPERTIES};
use crate::soap::MoRef;

/// Lists the virtual machines of a vCenter (or ESXi host) through vim25 SOAP.
///
/// Each listing logs in, finds the datacenters (one container view), then for each
/// datacenter opens a container view of its virtual machines and reads them with
/// `RetrievePropertiesEx` / `ContinueRetrievePropertiesEx`, one round trip per page of
/// at most the page size. Each host's zone is its datacenter's name, its region the
/// vCenter host. Templates are skipped. Views are destroyed and the session logged out
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
            region: self.region.clone(),
            page_size: self.page_size,
            open: None,
        }));
        // The cursor only feeds `token_pages`' check against a server repeating a token:
        // the listing keeps its own place.
        token_pages(move |_cursor: Option<String>| {
            let listing = Arc::clone(&listing);
            async move { listing.lock().await.next_page().await }
        })
    }
}

/// The state of one listing.
struct Listing {
    client: Arc<VsphereClient>,
    region: String,
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
    /// Hashes of the instance ids listed from it, so a restart after a re-login lists
    /// none twice. 64-bit hashes, not the ids: a million ids as strings held about
    /// 120 MB, the hashes under 20 MB.
    seen: HashSet<u64>,
    /// Whether this datacenter's listing restarted after a re-login. Only then is `seen`
    /// consulted, so a hash collision (about 3 in 100 million for a million machines)
    /// can only ever matter in a restarted listing.
    restarted: bool,
}

/// The hash of an instance id kept in [`Open::seen`].
fn id_hash(id: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut hasher);
    hasher.finish()
}

impl Listing {
    async fn next_page(&mut self) -> Result<(HostPage, Option<String>)> {
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

    async fn step(&mut self) -> Result<(HostPage, Option<String>)> {
        let client = Arc::clone(&self.client);
        if self.open.is_none() {
            self.start(&client).await?;
        }
        let open = self.open.as_mut().expect("logged in above");
        if open.index >= open.datacenters.len() {
            return Ok((HostPage::new(Vec::new(), None), None));
        }
        let chunk = open.fetch_chunk(&client, self.page_size).await?;
        open.token = chunk.token.clone();
        let datacenter = &open.datacenters[open.index].name;
        let mut hosts = Vec::with_capacity(chunk.objects.len());
        for object in chunk
            .objects
            .iter()
            .filter(|o| o.obj.kind == "VirtualMachine")
        {
            let vm = VirtualMachine::from_object(object)?;
            if let Some(host) = to_host(&vm, &self.region, datacenter) {
                if open.seen.insert(id_hash(&host.instance_id)) || !open.restarted {
                    hosts.push(host);
                }
            }
        }
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
                open.seen.clear();
                open.restarted = false;
                (open.index < open.datacenters.len()).then(|| format!("{}/", open.index))
            }
        };
        Ok((HostPage::new(hosts, None), cursor))
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
            seen: HashSet::new(),
            restarted: false,
        });
        let root = open.content.root_folder.clone();
        let view = client
            .create_container_view(&mut open.session, &open.content, &root, "Datacenter")
            .await?;
        open.view = Some(view.clone());
        let mut result = client
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
            open.datacenters
                .extend(result.objects.iter().map(Datacenter::from_object));
            let Some(token) = result.token.take() else {
                break;
            };
            if !tokens.insert(token.clone()) {
                return Err(cmdb_core::Error::decode(
                    "vSphere repeated a page token while listing datacenters",
                ));
            }
            result = client
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
    ) -> Result<RetrieveResult> {
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
    ) -> Result<RetrieveResult> {
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
