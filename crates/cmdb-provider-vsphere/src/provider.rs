//! [`VsphereHostProvider`]: the virtual machines of one vCenter, page by page.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use cmdb_core::{FailedRecord, Host, HostPage, HostProvider, Result, Vendor};
use cmdb_http::{id_batches, token_pages_pipelined};
use futures::future;
use futures::stream::{self, BoxStream, StreamExt};
use tokio::sync::Mutex;

use crate::client::{Answer, PropertiesPage, Session, VsphereClient};
use crate::error::{is_managed_object_not_found, is_not_authenticated};
use crate::map::to_host;
use crate::model::{page_token, Datacenter, RetrieveResult, ServiceContent, VirtualMachine};
use crate::soap::{Element, MoRef};

/// Lists the virtual machines of a vCenter (or ESXi host) through vim25 SOAP.
///
/// Each listing logs in, finds the datacenters (one container view), then for each
/// datacenter opens a container view of its virtual machines and reads them with
/// `RetrievePropertiesEx` / `ContinueRetrievePropertiesEx`, one round trip per page of
/// at most the page size. The next page is asked for as soon as the token is read from
/// an answer, so that it is on the wire while the page is decoded into hosts (one
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
            decoder: PageDecoder::new(self.region.clone()),
        }));
        // Each page is decoded as it arrives, in the same parse that reads its token, and
        // the next page is asked for while this one is stored. The cursor only feeds the
        // check against a server repeating a token (the listing keeps its own place). A
        // page that fails to decode closes the session there.
        token_pages_pipelined(
            move |_cursor: Option<String>| {
                let listing = Arc::clone(&listing);
                async move { listing.lock().await.next_page().await }
            },
            Ok,
        )
    }

    /// `SearchIndex.FindByUuid` per id (`instanceUuid` and `vmSearch` true, every
    /// datacenter), then `RetrievePropertiesEx` of the machine found, with its
    /// datacenter: one page per id. The session is handled as the listing's: one login
    /// for the whole lookup, once more if it expires (`NotAuthenticated`), a logout after
    /// the last page, after an error, and (in a spawned task) when the stream is dropped
    /// early. A template is not a machine the listing has, so it counts as gone; so does
    /// a machine destroyed between `FindByUuid` and `RetrievePropertiesEx`
    /// (`ManagedObjectNotFound`).
    fn lookup(&self, instance_ids: Vec<String>) -> Option<BoxStream<'static, Result<HostPage>>> {
        let lookup = Arc::new(Mutex::new(Lookup {
            client: Arc::clone(&self.client),
            region: self.region.clone(),
            open: None,
        }));
        let finding = Arc::clone(&lookup);
        let pages = id_batches(instance_ids, 1, move |ids: Vec<String>| {
            let lookup = Arc::clone(&finding);
            async move {
                let mut lookup = lookup.lock().await;
                let mut hosts = Vec::with_capacity(1);
                for id in &ids {
                    hosts.extend(lookup.find(id).await?);
                }
                Ok(HostPage::new(hosts, None))
            }
        });
        // After the last page (an error has logged out already).
        let logout = stream::once(async move {
            lookup.lock().await.close().await;
            None
        })
        .filter_map(future::ready);
        Some(pages.chain(logout).boxed())
    }
}

/// The state of one by-id lookup.
struct Lookup {
    client: Arc<VsphereClient>,
    region: String,
    /// Present while logged in.
    open: Option<(Session, ServiceContent)>,
}

impl Lookup {
    /// The host of the machine whose `config.instanceUuid` is `id`, if it still exists;
    /// logs out after an error.
    async fn find(&mut self, id: &str) -> Result<Option<Host>> {
        let found = self.find_logged_in(id).await;
        if found.is_err() {
            self.close().await;
        }
        found
    }

    async fn find_logged_in(&mut self, id: &str) -> Result<Option<Host>> {
        let client = &*self.client;
        if self.open.is_none() {
            let mut session = Session::default();
            let content = client.retrieve_service_content(&mut session).await?;
            client.login(&mut session, &content).await?;
            self.open = Some((session, content));
        }
        let (session, content) = self.open.as_mut().expect("logged in above");
        let mut logged_in_again = false;
        loop {
            match find_machine(client, session, content, &self.region, id).await {
                Err(e) if is_not_authenticated(&e) && !logged_in_again => {
                    logged_in_again = true;
                    tracing::warn!("the vSphere session expired during a lookup; logging in again");
                    session.forget_cookie();
                    client.login(session, content).await?;
                }
                other => return other,
            }
        }
    }

    /// Logs out, best effort.
    async fn close(&mut self) {
        if let Some((session, content)) = self.open.take() {
            logout(&self.client, session, &content).await;
        }
    }
}

impl Drop for Lookup {
    fn drop(&mut self) {
        // Dropped mid-lookup: log out in the background, as a listing does.
        let Some((session, content)) = self.open.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let client = Arc::clone(&self.client);
                runtime.spawn(async move { logout(&client, session, &content).await });
            }
            Err(_) => tracing::debug!(
                "vSphere lookup dropped outside a tokio runtime; its session will time out"
            ),
        }
    }
}

/// Logs `session` out if it holds a cookie, best effort.
async fn logout(client: &VsphereClient, mut session: Session, content: &ServiceContent) {
    if session.has_cookie() {
        if let Err(e) = client.logout(&mut session, content).await {
            tracing::debug!(error = %e, "vSphere Logout failed");
        }
    }
}

/// The host of the machine whose `config.instanceUuid` is `id`, mapped as the listing
/// maps it, with its datacenter as zone; `None` when there is none (or it is a template).
async fn find_machine(
    client: &VsphereClient,
    session: &mut Session,
    content: &ServiceContent,
    region: &str,
    id: &str,
) -> Result<Option<Host>> {
    let Some(vm) = client
        .find_vm_by_instance_uuid(session, content, id)
        .await?
    else {
        return Ok(None);
    };
    let answer = match client
        .retrieve_vm(session, content, &vm, &content.vm_properties())
        .await
    {
        Ok(answer) => answer,
        // Destroyed since FindByUuid answered: gone too.
        Err(e) if is_managed_object_not_found(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let host = answer.read(|answer| {
        let result = RetrieveResult::from_answer(answer)?;
        let zone = result
            .objects
            .iter()
            .find(|o| o.kind == "Datacenter")
            .map(|o| Datacenter::from_object(o).name);
        let Some(object) = result.objects.iter().find(|o| o.kind == "VirtualMachine") else {
            return Ok(None);
        };
        let vm = VirtualMachine::from_object(object)?;
        let mut host = to_host(vm, region, zone.as_deref().unwrap_or_default());
        if let Some(h) = &mut host {
            h.zone = zone;
        }
        Ok(host)
    })?;
    // FindByUuid matches exactly; a machine answering under another id is not it.
    Ok(host.filter(|h| h.instance_id == id))
}

/// The state of one listing.
struct Listing {
    client: Arc<VsphereClient>,
    page_size: u32,
    /// Present while logged in.
    open: Option<Open>,
    decoder: PageDecoder,
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

/// Decodes the pages of one listing into hosts, in order, as they arrive: each answer is
/// parsed once, for its hosts and the token of the next page.
#[derive(Debug)]
pub(crate) struct PageDecoder {
    region: String,
    /// The datacenter of the pages decoded last.
    datacenter: Option<usize>,
    /// The instance ids listed from it (morefs of machines without one, prefixed
    /// `moref:`), so that a listing restarted after a re-login lists none twice.
    seen: ListedIds,
}

/// The ids a datacenter's listing has yielded, exactly, in little memory: an instance
/// UUID in its canonical form (lowercase, hyphenated) as the 128-bit number it spells,
/// 16 bytes a machine; any other id as text. Until a restart ids are only recorded (a
/// pass names each machine once); after one they are looked up.
#[derive(Debug, Default)]
struct ListedIds {
    /// Canonical UUIDs of the first pass; sorted at the first restart.
    uuids: Vec<u128>,
    sorted: bool,
    /// Canonical UUIDs recorded after a restart.
    later: HashSet<u128>,
    /// Every other id.
    others: HashSet<String>,
}

impl ListedIds {
    /// Records `id`: whether it was not recorded before, when `restarted` (else `true`,
    /// unchecked).
    fn insert(&mut self, id: &str, restarted: bool) -> bool {
        let Some(uuid) = canonical_uuid(id) else {
            return self.others.insert(id.to_owned()) || !restarted;
        };
        if !restarted {
            self.uuids.push(uuid);
            self.sorted = false;
            return true;
        }
        if !self.sorted {
            self.uuids.sort_unstable();
            self.sorted = true;
        }
        self.uuids.binary_search(&uuid).is_err() && self.later.insert(uuid)
    }

    fn clear(&mut self) {
        *self = ListedIds::default();
    }
}

/// The number a UUID in canonical form spells (`5003e0c6-1f2a-4b3c-8d9e-0123456789ab`),
/// else `None`: one number per such text and back, so ids stay exact.
fn canonical_uuid(id: &str) -> Option<u128> {
    let bytes = id.as_bytes();
    let canonical = bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, &b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        });
    if !canonical {
        return None;
    }
    let hex: String = id.chars().filter(|&c| c != '-').collect();
    u128::from_str_radix(&hex, 16).ok()
}

impl PageDecoder {
    /// A decoder for the hosts of vCenter `region`.
    pub(crate) fn new(region: String) -> PageDecoder {
        PageDecoder {
            region,
            datacenter: None,
            seen: ListedIds::default(),
        }
    }

    /// The hosts of a page of datacenter number `datacenter`, named `zone`, and the token
    /// of the next page, from one parse of its answer.
    fn decode_page(
        &mut self,
        answer: &Answer,
        datacenter: usize,
        zone: &str,
        restarted: bool,
    ) -> Result<(HostPage, Option<String>)> {
        self.enter(datacenter);
        answer.read(|answer| {
            let token = page_token(answer);
            let (hosts, failed) = self.hosts_of(answer, zone, restarted)?;
            Ok((HostPage::new(hosts, None).with_failed(failed), token))
        })
    }

    /// The hosts of the `RetrievePropertiesEx` answer `body` of `operation`, listed
    /// from datacenter number `datacenter`, named `zone`: its virtual machines but
    /// templates, and after a restart, none listed before; and the machines without
    /// a `config.instanceUuid` (inaccessible, orphaned), which cannot be stored.
    #[cfg(any(test, feature = "bench"))]
    pub(crate) fn decode_answer(
        &mut self,
        operation: &str,
        body: &[u8],
        datacenter: usize,
        zone: &str,
        restarted: bool,
    ) -> Result<(Vec<Host>, Vec<FailedRecord>)> {
        self.enter(datacenter);
        crate::client::read_answer(operation, body, |answer| {
            self.hosts_of(answer, zone, restarted)
        })
    }

    /// The machines of one answer element, as [`decode_answer`](Self::decode_answer)
    /// describes them.
    fn hosts_of(
        &mut self,
        answer: Element<'_>,
        zone: &str,
        restarted: bool,
    ) -> Result<(Vec<Host>, Vec<FailedRecord>)> {
        let chunk = RetrieveResult::from_answer(answer)?;
        let mut hosts = Vec::with_capacity(chunk.objects.len());
        let mut failed = Vec::new();
        for object in chunk.objects.iter().filter(|o| o.kind == "VirtualMachine") {
            let vm = VirtualMachine::from_object(object)?;
            if vm.instance_uuid.is_none() && vm.template != Some(true) {
                // Re-listed after a restart: reported once.
                if self.seen.insert(&format!("moref:{}", vm.moref), restarted) {
                    failed.push(FailedRecord::new(
                        None,
                        format!(
                            "vSphere virtual machine {} ({}) in {zone} has no \
                             config.instanceUuid (its configuration cannot be read: \
                             inaccessible or orphaned); not stored",
                            vm.moref,
                            vm.name.as_deref().unwrap_or("no name")
                        ),
                    ));
                }
                continue;
            }
            if let Some(host) = to_host(vm, &self.region, zone) {
                // A restarted pass lists only machines not listed before.
                if self.seen.insert(&host.instance_id, restarted) {
                    hosts.push(host);
                }
            }
        }
        Ok((hosts, failed))
    }

    /// Starts over with `seen` when the listing moves on to the next datacenter.
    fn enter(&mut self, datacenter: usize) {
        if self.datacenter != Some(datacenter) {
            self.datacenter = Some(datacenter);
            self.seen.clear();
        }
    }
}

impl Listing {
    /// The next page's answer and the cursor after it; logs out after the last page and
    /// after an error.
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
        let (page, token) = self.decoder.decode_page(
            &chunk.answer,
            open.index,
            &open.datacenters[open.index].name,
            open.restarted,
        )?;
        open.token = token;
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
            let Some(token) = page.token()? else {
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
                        &self.content.vm_properties(),
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

    /// A `RetrievePropertiesEx` answer listing machines `ids` (instance uuids; `None`:
    /// a machine whose config cannot be read).
    fn answer(ids: &[Option<&str>]) -> String {
        let objects: String = ids
            .iter()
            .enumerate()
            .map(|(k, id)| {
                let uuid = id.map_or(String::new(), |id| {
                    format!(
                        r#"<propSet><name>config.instanceUuid</name><val xsi:type="xsd:string">{id}</val></propSet>"#
                    )
                });
                format!(
                    r#"<objects><obj type="VirtualMachine">vm-{k}</obj><propSet><name>name</name><val xsi:type="xsd:string">m{k}</val></propSet>{uuid}</objects>"#
                )
            })
            .collect();
        format!(
            r#"<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema"><soapenv:Body><RetrievePropertiesExResponse xmlns="urn:vim25"><returnval>{objects}</returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"#
        )
    }

    fn ids(hosts: &[Host]) -> Vec<&str> {
        hosts.iter().map(|h| h.instance_id.as_str()).collect()
    }

    #[test]
    fn a_restarted_pass_lists_only_machines_not_listed_before_by_exact_id() {
        let mut decoder = PageDecoder::new("vc".into());
        let decode = |d: &mut PageDecoder, ids: &[Option<&str>], restarted: bool| {
            d.decode_answer(
                "RetrievePropertiesEx",
                answer(ids).as_bytes(),
                0,
                "DC0",
                restarted,
            )
            .unwrap()
        };
        let (first, failed) = decode(&mut decoder, &[Some("a"), Some("b"), None], false);
        assert_eq!(ids(&first), ["a", "b"]);
        assert_eq!(failed.len(), 1);
        // Restarted: the first pass's machines (and the failed one) are not listed
        // again, new ones are, once.
        let (again, failed) = decode(&mut decoder, &[Some("a"), Some("c"), None, Some("c")], true);
        assert_eq!(ids(&again), ["c"]);
        assert!(failed.is_empty());
        // Another datacenter starts afresh.
        let (other, _) = decoder
            .decode_answer(
                "RetrievePropertiesEx",
                answer(&[Some("a")]).as_bytes(),
                1,
                "DC1",
                false,
            )
            .unwrap();
        assert_eq!(ids(&other), ["a"]);
    }

    #[test]
    fn listed_ids_are_exact_whatever_their_form() {
        let a = "5003e0c6-1f2a-4b3c-8d9e-0123456789ab";
        let b = "5003e0c6-1f2a-4b3c-8d9e-0123456789ac";
        let upper = "5003E0C6-1F2A-4B3C-8D9E-0123456789AB";
        assert_eq!(
            canonical_uuid(a),
            Some(0x5003e0c6_1f2a_4b3c_8d9e_0123456789ab)
        );
        assert_eq!(canonical_uuid(upper), None);
        assert_eq!(canonical_uuid("5003e0c61f2a4b3c8d9e0123456789ab"), None);
        assert_eq!(canonical_uuid("+003e0c6-1f2a-4b3c-8d9e-0123456789ab"), None);
        let mut seen = ListedIds::default();
        for id in [a, upper, "moref:vm-1"] {
            assert!(seen.insert(id, false));
        }
        // After a restart: each id is new exactly once, spelled exactly as before.
        assert!(!seen.insert(a, true));
        assert!(!seen.insert(upper, true));
        assert!(!seen.insert("moref:vm-1", true));
        assert!(seen.insert(b, true));
        assert!(!seen.insert(b, true));
        assert!(seen.insert("5003e0c6-1f2a-4b3c-8d9e-0123456789Ab", true));
        seen.clear();
        assert!(seen.insert(a, true));
    }

    #[test]
    fn a_machine_without_an_instance_uuid_is_a_failed_record_naming_its_moref() {
        let mut decoder = PageDecoder::new("vc".into());
        let (hosts, failed) = decoder
            .decode_answer(
                "RetrievePropertiesEx",
                answer(&[None, Some("a")]).as_bytes(),
                0,
                "DC0",
                false,
            )
            .unwrap();
        assert_eq!(ids(&hosts), ["a"], "never stored under its moref");
        assert_eq!(failed[0].instance_id, None);
        assert!(failed[0].reason.contains("vm-0 (m0) in DC0"), "{failed:?}");
    }
}
