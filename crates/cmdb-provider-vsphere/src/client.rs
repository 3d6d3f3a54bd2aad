//! The vim25 SOAP client: one method per SOAP call.

use std::fmt;

use cmdb_core::{Error, Result};
use cmdb_http::{request_id, sensitive_header_value, HttpClient, RawResponse};
use cmdb_secret::Credentials;
use http::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use http::HeaderValue;
use url::Url;
use zeroize::Zeroizing;

use crate::error::fault_error;
use crate::model::{page_token, returnval, ServiceContent};
use crate::soap::{self, envelope, write_text, Element, MoRef, Reply};

/// The session cookie vCenter and ESXi set.
pub(crate) const SESSION_COOKIE: &str = "vmware_soap_session";

/// The API version asked for before the server has said which it speaks: old enough for
/// every supported vCenter and ESXi.
pub(crate) const INITIAL_API_VERSION: &str = "6.5";

/// One login: the session cookie and the API version the server speaks. Owned by one
/// listing, so concurrent listings never log each other out.
#[derive(Default)]
pub(crate) struct Session {
    cookie: Option<Zeroizing<String>>,
    api_version: Option<String>,
}

impl Session {
    /// Whether a cookie is held.
    pub(crate) fn has_cookie(&self) -> bool {
        self.cookie.is_some()
    }

    /// Drops the cookie of a session the server no longer knows, keeping the version.
    pub(crate) fn forget_cookie(&mut self) {
        self.cookie = None;
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("cookie", &self.cookie.as_ref().map(|_| "<redacted>"))
            .field("api_version", &self.api_version)
            .finish()
    }
}

/// The answer of one call, parsed once to know it is well-formed and not a fault, but
/// not decoded yet: the caller reads it when and where it needs it (a page of virtual
/// machines on the consumer's side, while the next page is on the wire).
pub(crate) struct Answer {
    /// The vim25 operation, e.g. `RetrievePropertiesEx`.
    operation: &'static str,
    response: RawResponse,
}

impl fmt::Debug for Answer {
    // Not the headers: they may set the session cookie.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Answer")
            .field("operation", &self.operation)
            .field("status", &self.response.status)
            .field("request_id", &request_id(&self.response.headers))
            .field("body_len", &self.response.body.len())
            .finish()
    }
}

impl Answer {
    /// The response body, a SOAP envelope.
    pub(crate) fn body(&self) -> &[u8] {
        &self.response.body
    }

    /// Parses the answer and hands its answer element (`<op>Response`) to `read`.
    pub(crate) fn read<T>(&self, read: impl FnOnce(Element<'_>) -> Result<T>) -> Result<T> {
        read_answer(self.operation, self.body(), read)
    }
}

/// Parses the answer `body` of `operation` and hands its answer element to `read`.
pub(crate) fn read_answer<T>(
    operation: &str,
    body: &[u8],
    read: impl FnOnce(Element<'_>) -> Result<T>,
) -> Result<T> {
    let context = |e: Error| e.context(format_args!("vSphere {operation}"));
    let document = soap::parse(body).map_err(context)?;
    match soap::reply(&document).map_err(context)? {
        Reply::Answer(answer) => read(answer),
        Reply::Fault(fault) => Err(context(fault_error(&fault, None, None))),
    }
}

/// A page of `RetrievePropertiesEx` / `ContinueRetrievePropertiesEx`: its answer, not
/// parsed yet.
#[derive(Debug)]
pub(crate) struct PropertiesPage {
    pub(crate) answer: Answer,
}

impl PropertiesPage {
    /// The token of the next page, present while more objects remain.
    pub(crate) fn token(&self) -> Result<Option<String>> {
        self.answer.read(|answer| Ok(page_token(answer)))
    }
}

/// vim25 over one [`HttpClient`].
pub(crate) struct VsphereClient {
    /// Retries transient failures: for calls that can be repeated safely.
    http: HttpClient,
    /// Never retries: `ContinueRetrievePropertiesEx` consumes its token, so a retry after
    /// a lost answer could skip a page; cleanup calls are best effort.
    http_once: HttpClient,
    sdk: Url,
    credentials: Credentials,
}

impl fmt::Debug for VsphereClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VsphereClient")
            .field("sdk", &self.sdk.as_str())
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// Which client a call goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    Yes,
    No,
}

impl VsphereClient {
    pub(crate) fn new(
        http: HttpClient,
        http_once: HttpClient,
        sdk: Url,
        credentials: Credentials,
    ) -> VsphereClient {
        VsphereClient {
            http,
            http_once,
            sdk,
            credentials,
        }
    }

    /// `RetrieveServiceContent` on `ServiceInstance`.
    pub(crate) async fn retrieve_service_content(
        &self,
        session: &mut Session,
    ) -> Result<ServiceContent> {
        let this = MoRef::new("ServiceInstance", "ServiceInstance");
        let content = self
            .call(session, "RetrieveServiceContent", &this, "", Retry::Yes)
            .await?
            .read(ServiceContent::from_answer)?;
        session.api_version = content.api_version.clone();
        Ok(content)
    }

    /// `Login` on the SessionManager: the server answers with the session cookie (or
    /// authenticates the one it set on an earlier call). A wrong password is an
    /// `InvalidLogin` fault, never retried.
    pub(crate) async fn login(
        &self,
        session: &mut Session,
        content: &ServiceContent,
    ) -> Result<()> {
        // The password goes into the body only (bodies are never logged), and every copy
        // is wiped.
        let mut args = Zeroizing::new(String::new());
        write_text(&mut args, "userName", self.credentials.api_key());
        write_text(&mut args, "password", self.credentials.api_secret());
        self.call(
            session,
            "Login",
            &content.session_manager,
            &args,
            Retry::Yes,
        )
        .await?;
        if !session.has_cookie() {
            return Err(Error::decode(format!(
                "vSphere Login succeeded but set no {SESSION_COOKIE} cookie"
            )));
        }
        tracing::debug!(sdk = %self.sdk, "logged in to vSphere");
        Ok(())
    }

    /// `Logout` on the SessionManager; forgets the cookie whatever the answer.
    pub(crate) async fn logout(
        &self,
        session: &mut Session,
        content: &ServiceContent,
    ) -> Result<()> {
        let result = self
            .call(session, "Logout", &content.session_manager, "", Retry::No)
            .await;
        session.cookie = None;
        result.map(drop)
    }

    /// `CreateContainerView` of `kind` objects below `container`, recursively.
    pub(crate) async fn create_container_view(
        &self,
        session: &mut Session,
        content: &ServiceContent,
        container: &MoRef,
        kind: &str,
    ) -> Result<MoRef> {
        let mut args = String::new();
        container.write(&mut args, "container");
        write_text(&mut args, "type", kind);
        write_text(&mut args, "recursive", "true");
        self.call(
            session,
            "CreateContainerView",
            &content.view_manager,
            &args,
            Retry::Yes,
        )
        .await?
        .read(|answer| MoRef::from_element(returnval(answer)?))
    }

    /// `DestroyView` of a view.
    pub(crate) async fn destroy_view(&self, session: &mut Session, view: &MoRef) -> Result<()> {
        self.call(session, "DestroyView", view, "", Retry::No)
            .await
            .map(drop)
    }

    /// `RetrievePropertiesEx`: `paths` of the `kind` objects of `view`, traversing the
    /// view's `view` property, at most `max_objects` per answer.
    pub(crate) async fn retrieve_properties_ex(
        &self,
        session: &mut Session,
        content: &ServiceContent,
        view: &MoRef,
        kind: &str,
        paths: &[&str],
        max_objects: u32,
    ) -> Result<PropertiesPage> {
        let mut args = String::from("<specSet><propSet>");
        write_text(&mut args, "type", kind);
        for path in paths {
            write_text(&mut args, "pathSet", path);
        }
        args.push_str("</propSet><objectSet>");
        view.write(&mut args, "obj");
        args.push_str(r#"<skip>true</skip><selectSet xsi:type="TraversalSpec">"#);
        write_text(&mut args, "name", "traverseView");
        write_text(&mut args, "type", "ContainerView");
        write_text(&mut args, "path", "view");
        args.push_str("<skip>false</skip></selectSet></objectSet></specSet><options>");
        write_text(&mut args, "maxObjects", &max_objects.to_string());
        args.push_str("</options>");
        self.call_page(
            session,
            "RetrievePropertiesEx",
            &content.property_collector,
            &args,
            Retry::Yes,
        )
        .await
    }

    /// `FindByUuid` on the SearchIndex with `vmSearch` and `instanceUuid` true and no
    /// datacenter (every datacenter is searched): the virtual machine whose
    /// `config.instanceUuid` is `uuid`, or `None` when there is none.
    pub(crate) async fn find_vm_by_instance_uuid(
        &self,
        session: &mut Session,
        content: &ServiceContent,
        uuid: &str,
    ) -> Result<Option<MoRef>> {
        let index = content.search_index.as_ref().ok_or_else(|| {
            Error::decode("vSphere ServiceContent has no searchIndex: machines cannot be looked up")
        })?;
        let mut args = String::new();
        write_text(&mut args, "uuid", uuid);
        write_text(&mut args, "vmSearch", "true");
        write_text(&mut args, "instanceUuid", "true");
        self.call(session, "FindByUuid", index, &args, Retry::Yes)
            .await?
            .read(|answer| {
                answer
                    .child("returnval")
                    .map(MoRef::from_element)
                    .transpose()
            })
    }

    /// `RetrievePropertiesEx` of one virtual machine's `paths`, and the `name` of the
    /// datacenter above it: the traversal follows `parent` (and a vApp's `parentVApp`
    /// and `parentFolder`) up to the root.
    pub(crate) async fn retrieve_vm(
        &self,
        session: &mut Session,
        content: &ServiceContent,
        vm: &MoRef,
        paths: &[&str],
    ) -> Result<Answer> {
        let mut args = String::from("<specSet><propSet>");
        write_text(&mut args, "type", "VirtualMachine");
        for path in paths {
            write_text(&mut args, "pathSet", path);
        }
        args.push_str("</propSet><propSet>");
        write_text(&mut args, "type", "Datacenter");
        write_text(&mut args, "pathSet", "name");
        args.push_str("</propSet><objectSet>");
        vm.write(&mut args, "obj");
        args.push_str("<skip>false</skip>");
        for (name, kind, path) in [
            ("vmParent", "VirtualMachine", "parent"),
            ("vmVApp", "VirtualMachine", "parentVApp"),
            ("vAppFolder", "VirtualApp", "parentFolder"),
            ("up", "ManagedEntity", "parent"),
        ] {
            args.push_str(r#"<selectSet xsi:type="TraversalSpec">"#);
            write_text(&mut args, "name", name);
            write_text(&mut args, "type", kind);
            write_text(&mut args, "path", path);
            args.push_str("<skip>false</skip>");
            for next in ["up", "vAppFolder"] {
                args.push_str("<selectSet>");
                write_text(&mut args, "name", next);
                args.push_str("</selectSet>");
            }
            args.push_str("</selectSet>");
        }
        args.push_str("</objectSet></specSet><options></options>");
        self.call(
            session,
            "RetrievePropertiesEx",
            &content.property_collector,
            &args,
            Retry::Yes,
        )
        .await
    }

    /// `ContinueRetrievePropertiesEx` with the token of the previous answer.
    pub(crate) async fn continue_retrieve_properties_ex(
        &self,
        session: &mut Session,
        content: &ServiceContent,
        token: &str,
    ) -> Result<PropertiesPage> {
        let mut args = String::new();
        write_text(&mut args, "token", token);
        self.call_page(
            session,
            "ContinueRetrievePropertiesEx",
            &content.property_collector,
            &args,
            Retry::No,
        )
        .await
    }

    /// Sends one call and returns its answer.
    async fn call(
        &self,
        session: &mut Session,
        operation: &'static str,
        this: &MoRef,
        args: &str,
        retry: Retry,
    ) -> Result<Answer> {
        self.send(session, operation, this, args, retry, true).await
    }

    /// Sends one call answered by a `RetrieveResult` and returns the page.
    async fn call_page(
        &self,
        session: &mut Session,
        operation: &'static str,
        this: &MoRef,
        args: &str,
        retry: Retry,
    ) -> Result<PropertiesPage> {
        let answer = self
            .send(session, operation, this, args, retry, false)
            .await?;
        Ok(PropertiesPage { answer })
    }

    /// Sends one call. A fault answered with an error status (as vSphere answers faults)
    /// becomes the error here, through the classifier: the listing's re-login looks for
    /// `NotAuthenticated` in it. With `check`, a successful answer is parsed too, to find
    /// a fault inside it; pages skip that, since decoding them parses them anyway.
    async fn send(
        &self,
        session: &mut Session,
        operation: &'static str,
        this: &MoRef,
        args: &str,
        retry: Retry,
        check: bool,
    ) -> Result<Answer> {
        let context = |e: Error| e.context(format_args!("vSphere {operation}"));
        // Login's body holds the password: wipe every copy we make.
        let body = Zeroizing::new(envelope(operation, this, args));
        let action = format!(
            "urn:vim25/{}",
            session
                .api_version
                .as_deref()
                .unwrap_or(INITIAL_API_VERSION)
        );
        let cookie = match &session.cookie {
            Some(c) => Some(sensitive_header_value(&format!(
                "{SESSION_COOKIE}={}",
                c.as_str()
            ))?),
            None => None,
        };
        let http = match retry {
            Retry::Yes => &self.http,
            Retry::No => &self.http_once,
        };
        let response = http
            .send(operation, || {
                let mut request = reqwest::Request::new(reqwest::Method::POST, self.sdk.clone());
                let headers = request.headers_mut();
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/xml; charset=utf-8"),
                );
                headers.insert(
                    "SOAPAction",
                    HeaderValue::from_str(&action).map_err(|_| {
                        Error::invalid_field("api_version", "is not a header value")
                    })?,
                );
                if let Some(cookie) = &cookie {
                    headers.insert(COOKIE, cookie.clone());
                }
                *request.body_mut() = Some(body.as_bytes().to_vec().into());
                Ok(request)
            })
            .await
            .map_err(context)?;
        remember_cookie(session, &response);
        if check {
            let document = soap::parse(&response.body).map_err(context)?;
            if let Reply::Fault(fault) = soap::reply(&document).map_err(context)? {
                return Err(context(fault_error(
                    &fault,
                    Some(response.status.as_u16()),
                    request_id(&response.headers),
                )));
            }
        }
        Ok(Answer {
            operation,
            response,
        })
    }
}

/// Keeps the `vmware_soap_session` cookie of a response, if it sets one.
fn remember_cookie(session: &mut Session, response: &RawResponse) {
    for value in response.headers.get_all(SET_COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        let pair = value.split(';').next().unwrap_or_default().trim();
        if let Some((name, cookie)) = pair.split_once('=') {
            if name.trim() == SESSION_COOKIE {
                let cookie = cookie.trim().trim_matches('"');
                if !cookie.is_empty() {
                    session.cookie = Some(Zeroizing::new(cookie.to_owned()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, StatusCode};

    use super::*;

    #[test]
    fn the_session_cookie_is_taken_from_set_cookie_and_never_shown() {
        let mut headers = HeaderMap::new();
        headers.append(SET_COOKIE, HeaderValue::from_static("other=1; Path=/"));
        headers.append(
            SET_COOKIE,
            HeaderValue::from_static(r#"vmware_soap_session="52a1-secret"; Path=/; HttpOnly"#),
        );
        let mut session = Session::default();
        remember_cookie(&mut session, &RawResponse::new(StatusCode::OK, headers, ""));
        assert_eq!(
            session.cookie.as_deref().map(String::as_str),
            Some("52a1-secret")
        );
        let shown = format!("{session:?}");
        assert!(!shown.contains("52a1"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}
