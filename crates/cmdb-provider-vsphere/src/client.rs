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
use crate::model::{returnval, RetrieveResult, ServiceContent};
use crate::soap::{envelope, parse_envelope, write_text, Element, MoRef, Reply};

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
        let answer = self
            .call(session, "RetrieveServiceContent", &this, "", Retry::Yes)
            .await?;
        let content = ServiceContent::from_answer(&answer)?;
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
        let answer = self
            .call(
                session,
                "CreateContainerView",
                &content.view_manager,
                &args,
                Retry::Yes,
            )
            .await?;
        MoRef::from_element(returnval(&answer)?)
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
    ) -> Result<RetrieveResult> {
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
        let answer = self
            .call(
                session,
                "RetrievePropertiesEx",
                &content.property_collector,
                &args,
                Retry::Yes,
            )
            .await?;
        RetrieveResult::from_answer(answer)
    }

    /// `ContinueRetrievePropertiesEx` with the token of the previous answer.
    pub(crate) async fn continue_retrieve_properties_ex(
        &self,
        session: &mut Session,
        content: &ServiceContent,
        token: &str,
    ) -> Result<RetrieveResult> {
        let mut args = String::new();
        write_text(&mut args, "token", token);
        let answer = self
            .call(
                session,
                "ContinueRetrievePropertiesEx",
                &content.property_collector,
                &args,
                Retry::No,
            )
            .await?;
        RetrieveResult::from_answer(answer)
    }

    /// Sends one call and returns the answer element (`<op>Response`).
    async fn call(
        &self,
        session: &mut Session,
        operation: &str,
        this: &MoRef,
        args: &str,
        retry: Retry,
    ) -> Result<Element> {
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
            .send(|| {
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
            .map_err(|e| e.context(format_args!("vSphere {operation}")))?;
        remember_cookie(session, &response);
        match parse_envelope(&response.body)
            .map_err(|e| e.context(format_args!("vSphere {operation}")))?
        {
            Reply::Answer(answer) => Ok(answer),
            Reply::Fault(fault) => Err(fault_error(
                &fault,
                Some(response.status.as_u16()),
                request_id(&response.headers),
            )
            .context(format_args!("vSphere {operation}"))),
        }
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
