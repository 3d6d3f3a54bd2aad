//! vim25 faults -> [`cmdb_core::Error`].

use cmdb_core::{Error, ErrorKind, Vendor, VendorError};
use cmdb_http::{request_id, DefaultClassifier, ErrorClassifier, RawResponse};

use crate::soap::{parse_fault, SoapFault};

/// The fault a server answers when the session cookie is unknown or expired.
pub(crate) const NOT_AUTHENTICATED: &str = "NotAuthenticated";

/// Classifies vim25 answers: every SOAP fault comes with HTTP 500, so the fault type in
/// the body decides; bodies without a fault fall back to the HTTP status.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct VsphereClassifier;

impl ErrorClassifier for VsphereClassifier {
    fn classify(&self, response: &RawResponse) -> Option<Error> {
        if response.is_success() {
            // A fault inside a 2xx is found when the envelope is read (`client.rs`).
            return None;
        }
        if let Some(fault) = parse_fault(&response.body) {
            return Some(fault_error(
                &fault,
                Some(response.status.as_u16()),
                request_id(&response.headers),
            ));
        }
        DefaultClassifier::new(Some(Vendor::Vsphere)).classify(response)
    }
}

/// The kind of an answer, by its HTTP status and vim25 fault type, and whether retrying
/// may help; a fault of no known type (or none) is a vendor error. Fault types are those
/// of the vSphere Web Services API reference ("Fault Types",
/// <https://developer.broadcom.com/xapis/vsphere-web-services-api/latest/>).
///
/// `NotAuthenticated` is an authentication error here: the client logs in again once
/// itself, outside the HTTP retry loop, since the old session's views are gone with it.
pub(crate) fn classify(_status: u16, fault_type: Option<&str>) -> (ErrorKind, bool) {
    let Some(fault_type) = fault_type else {
        return (ErrorKind::Vendor, false);
    };
    match fault_type {
        "InvalidLogin"
        | "NotAuthenticated"
        | "InvalidCertificate"
        | "NoClientCertificate"
        | "PasswordExpired"
        | "ExpiredAddonLicense" => (ErrorKind::Unauthenticated, false),
        "NoPermission" | "RestrictedByAdministrator" | "RestrictedVersion" | "SecurityError" => {
            (ErrorKind::PermissionDenied, false)
        }
        "ManagedObjectNotFound" => (ErrorKind::NotFound, false),
        "InvalidArgument"
        | "InvalidRequest"
        | "InvalidType"
        | "InvalidProperty"
        | "InvalidCollectorVersion" => (ErrorKind::InvalidInput, false),
        "RequestCanceled" | "HostCommunication" | "NotReachable" | "TooManyConnections" => {
            (ErrorKind::Unavailable, true)
        }
        _ => (ErrorKind::Vendor, false),
    }
}

/// The error of a fault, keeping its type as the code and its `faultstring` as the
/// message.
pub(crate) fn fault_error(
    fault: &SoapFault,
    http_status: Option<u16>,
    request_id: Option<String>,
) -> Error {
    let code = fault.fault_type.clone().or_else(|| fault.code.clone());
    let (kind, retryable) = classify(http_status.unwrap_or(500), code.as_deref());
    Error::vendor(
        kind,
        retryable,
        VendorError {
            vendor: Some(Vendor::Vsphere),
            http_status,
            code,
            message: fault.message.clone(),
            request_id,
        },
    )
}

/// Whether `error` is a vim25 `NotAuthenticated` fault (an expired session).
pub(crate) fn is_not_authenticated(error: &Error) -> bool {
    fault_type(error) == Some(NOT_AUTHENTICATED)
}

/// Whether `error` is a vim25 `ManagedObjectNotFound` fault: the object asked for (a
/// machine, by its managed object id) no longer exists.
pub(crate) fn is_managed_object_not_found(error: &Error) -> bool {
    fault_type(error) == Some("ManagedObjectNotFound")
}

/// The vim25 fault type of `error`, if it is a fault.
fn fault_type(error: &Error) -> Option<&str> {
    error.vendor_error().and_then(|v| v.code.as_deref())
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, StatusCode};

    use super::*;

    fn fault_body(kind: &str) -> String {
        format!(
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>msg</faultstring><detail><{kind}Fault xmlns="urn:vim25" xsi:type="{kind}"/></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#
        )
    }

    #[test]
    fn faults_are_classified_by_type() {
        for (kind, expected, retry) in [
            ("InvalidLogin", ErrorKind::Unauthenticated, false),
            ("NotAuthenticated", ErrorKind::Unauthenticated, false),
            ("NoPermission", ErrorKind::PermissionDenied, false),
            ("InvalidArgument", ErrorKind::InvalidInput, false),
            ("RequestCanceled", ErrorKind::Unavailable, true),
            ("SystemError", ErrorKind::Vendor, false),
        ] {
            let r = RawResponse::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                HeaderMap::new(),
                fault_body(kind),
            );
            let e = VsphereClassifier.classify(&r).unwrap();
            assert_eq!((e.kind(), e.is_retryable()), (expected, retry), "{kind}");
            let v = e.vendor_error().unwrap();
            assert_eq!(v.code.as_deref(), Some(kind));
            assert_eq!(v.message.as_deref(), Some("msg"));
            assert_eq!(v.http_status, Some(500));
        }
    }

    #[test]
    fn bodies_without_a_fault_fall_back_to_the_status() {
        let r = RawResponse::new(StatusCode::SERVICE_UNAVAILABLE, HeaderMap::new(), "busy");
        let e = VsphereClassifier.classify(&r).unwrap();
        assert_eq!((e.kind(), e.is_retryable()), (ErrorKind::Unavailable, true));
        let r = RawResponse::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            HeaderMap::new(),
            "<html/>",
        );
        let e = VsphereClassifier.classify(&r).unwrap();
        assert_eq!((e.kind(), e.is_retryable()), (ErrorKind::Vendor, false));
        assert!(VsphereClassifier
            .classify(&RawResponse::new(StatusCode::OK, HeaderMap::new(), "x"))
            .is_none());
    }
}
