//! What a caller asks a sync to do.

use serde::{Deserialize, Serialize};

use cmdb_core::{Error, ResourceType, Result};

/// The longest secret id a request may carry.
pub const MAX_SECRET_ID_LEN: usize = 100;

/// The longest region name a request may carry.
const MAX_REGION_LEN: usize = 64;

/// Which per-host details a [`SyncResponse`](crate::SyncResponse) carries. A run of a
/// million hosts with `All` answers a million details: `Failed` or `None` keep the answer
/// small.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub enum DetailsMode {
    /// One detail per host.
    #[default]
    All,
    /// Details of failed hosts only.
    Failed,
    /// No details; the counters only.
    None,
}

/// The region of a request that asks for every region of the account
/// ([`Syncer::sync_all`](crate::Syncer::sync_all)).
pub const ALL_REGIONS: &str = "*";

/// A request to sync one region of one secret (or account), or every region of it
/// (region `"*"`, [`Syncer::sync_all`](crate::Syncer::sync_all)): made with
/// [`SyncRequest::new`] and the `with_*` methods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SyncRequest {
    /// The secret to list with.
    pub secret_id: String,
    /// The region to list; may be empty for vSphere, which lists the whole vCenter.
    /// [`ALL_REGIONS`] (`"*"`) asks [`Syncer::sync_all`](crate::Syncer::sync_all) for
    /// every region of the account.
    #[serde(default)]
    pub region: String,
    /// What to list (only hosts for now).
    #[serde(default)]
    pub resource_type: ResourceType,
    /// Which per-host details to answer.
    #[serde(default)]
    pub details: DetailsMode,
    /// Release missing hosts even when the guard would refuse (see DESIGN.md).
    #[serde(default)]
    pub force_release: bool,
}

impl SyncRequest {
    /// A host sync of `region` with `secret_id` and the default options.
    pub fn new(secret_id: impl Into<String>, region: impl Into<String>) -> SyncRequest {
        SyncRequest {
            secret_id: secret_id.into(),
            region: region.into(),
            resource_type: ResourceType::Host,
            details: DetailsMode::All,
            force_release: false,
        }
    }

    /// Sets what to list.
    pub fn with_resource_type(mut self, resource_type: ResourceType) -> Self {
        self.resource_type = resource_type;
        self
    }

    /// Sets which details to answer.
    pub fn with_details(mut self, details: DetailsMode) -> Self {
        self.details = details;
        self
    }

    /// Allows the release guard to be overridden.
    pub fn with_force_release(mut self, force: bool) -> Self {
        self.force_release = force;
        self
    }

    /// Whether the request asks for every region of the account: its region is
    /// [`ALL_REGIONS`] (`"*"`).
    pub fn is_all_regions(&self) -> bool {
        self.region == ALL_REGIONS
    }

    /// Checks what can be checked without the secret: the id, the region's syntax (a
    /// region name, empty, or [`ALL_REGIONS`]) and the resource type.
    pub fn validate(&self) -> Result<()> {
        let id = self.secret_id.trim();
        if id.is_empty() {
            return Err(Error::invalid_field("secret_id", "is required"));
        }
        if self.secret_id.chars().count() > MAX_SECRET_ID_LEN {
            return Err(Error::invalid_field(
                "secret_id",
                format!("must be at most {MAX_SECRET_ID_LEN} characters"),
            ));
        }
        if self.region.chars().count() > MAX_REGION_LEN {
            return Err(Error::invalid_field(
                "region",
                format!("must be at most {MAX_REGION_LEN} characters"),
            ));
        }
        // Region names of every vendor are lowercase words joined by '-' (and vSphere
        // needs none): anything else is a mistake or an attack on a path or a query.
        if let Some(c) = self
            .region
            .chars()
            .filter(|_| !self.is_all_regions())
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(Error::invalid_field(
                "region",
                format!("contains the character {c:?}; only letters, digits, '-', '_' and '.' are allowed"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cmdb_core::ErrorKind;

    fn field_of(r: SyncRequest) -> &'static str {
        let e = r.validate().expect_err("invalid request");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        e.field().expect("names a field")
    }

    #[test]
    fn every_validation_error_names_its_field() {
        assert_eq!(field_of(SyncRequest::new("", "cn-hangzhou")), "secret_id");
        assert_eq!(field_of(SyncRequest::new("  ", "cn-hangzhou")), "secret_id");
        assert_eq!(
            field_of(SyncRequest::new("x".repeat(101), "cn-hangzhou")),
            "secret_id"
        );
        assert_eq!(field_of(SyncRequest::new("s", "r".repeat(65))), "region");
        assert_eq!(field_of(SyncRequest::new("s", "../../etc")), "region");
        assert_eq!(field_of(SyncRequest::new("s", "cn' OR 1=1 --")), "region");
        assert_eq!(field_of(SyncRequest::new("s", "cn-*")), "region");
        assert_eq!(field_of(SyncRequest::new("s", "**")), "region");
    }

    #[test]
    fn valid_requests_pass() {
        SyncRequest::new("x".repeat(100), "cn-hangzhou")
            .validate()
            .unwrap();
        SyncRequest::new("s", "").validate().unwrap();
        SyncRequest::new("s", "ap-shanghai-fsi").validate().unwrap();
        let all = SyncRequest::new("s", "*");
        all.validate().unwrap();
        SyncRequest::new("s", "cn-hangzhou")
            .with_resource_type(ResourceType::Rds)
            .validate()
            .unwrap();
        assert!(all.is_all_regions());
        assert!(!SyncRequest::new("s", "").is_all_regions());
    }

    #[test]
    fn json_defaults_and_unknown_fields() {
        let r: SyncRequest =
            serde_json::from_str(r#"{"secret_id":"s1","region":"cn-hangzhou"}"#).unwrap();
        assert_eq!(r, SyncRequest::new("s1", "cn-hangzhou"));
        let bad = serde_json::from_str::<SyncRequest>(r#"{"secret_id":"s1","regoin":"x"}"#);
        assert!(bad.unwrap_err().to_string().contains("regoin"));
    }
}
