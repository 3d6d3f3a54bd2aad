//! Schedules: how often a secret's account is synced by itself ([`SyncInterval`]), and a
//! scheduled sync that is due ([`DueSync`]).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use cmdb_core::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How often a secret's whole account is synced by itself: at least a minute, at most a
/// week, written as `humantime` writes durations (`"90s"`, `"30m"`, `"1h 30m"`, `"1d"`).
///
/// ```
/// use cmdb_secret::SyncInterval;
///
/// let every: SyncInterval = "30m".parse().unwrap();
/// assert_eq!(every.as_duration().as_secs(), 1800);
/// assert_eq!(every.to_string(), "30m");
/// assert!("30s".parse::<SyncInterval>().is_err(), "under a minute");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SyncInterval(Duration);

impl SyncInterval {
    /// The shortest interval: one minute.
    pub const MIN: Duration = Duration::from_secs(60);
    /// The longest interval: one week.
    pub const MAX: Duration = Duration::from_secs(7 * 24 * 3600);

    /// `every`, if it lies between [`MIN`](Self::MIN) and [`MAX`](Self::MAX) and is a
    /// whole number of seconds; else [`InvalidInput`](cmdb_core::ErrorKind::InvalidInput)
    /// on the field `sync_interval`.
    pub fn new(every: Duration) -> Result<SyncInterval> {
        if every < Self::MIN || every > Self::MAX || every.subsec_nanos() != 0 {
            return Err(Error::invalid_field(
                "sync_interval",
                "must be a whole number of seconds from 1m to 7d (e.g. \"30m\")",
            ));
        }
        Ok(SyncInterval(every))
    }

    /// The interval as a [`Duration`].
    pub fn as_duration(self) -> Duration {
        self.0
    }

    /// The interval in seconds, as the SQL stores keep it.
    pub fn as_secs(self) -> u64 {
        self.0.as_secs()
    }
}

impl FromStr for SyncInterval {
    type Err = Error;

    fn from_str(text: &str) -> Result<SyncInterval> {
        let every = humantime::parse_duration(text.trim()).map_err(|e| {
            Error::invalid_field(
                "sync_interval",
                format!("is not a duration like \"30m\" or \"1h\": {e}"),
            )
        })?;
        SyncInterval::new(every)
    }
}

impl fmt::Display for SyncInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        humantime::format_duration(self.0).fmt(f)
    }
}

impl Serialize for SyncInterval {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SyncInterval {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse()
            .map_err(|e: Error| serde::de::Error::custom(e.message()))
    }
}

/// A secret whose scheduled sync is due, as [`SecretStore::due_syncs`] finds it.
///
/// [`SecretStore::due_syncs`]: crate::SecretStore::due_syncs
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DueSync {
    /// The secret.
    pub secret_id: String,
    /// When its sync became due: what [`SecretStore::claim_sync`] compares.
    ///
    /// [`SecretStore::claim_sync`]: crate::SecretStore::claim_sync
    pub due_at: DateTime<Utc>,
    /// Its schedule.
    pub interval: SyncInterval,
    /// How many scheduled syncs in a row failed (`0` after one that succeeded).
    pub failures: u32,
}

impl DueSync {
    /// The sync of `secret_id` due at `due_at`, every `interval`, after `failures`
    /// failures in a row.
    pub fn new(
        secret_id: impl Into<String>,
        due_at: DateTime<Utc>,
        interval: SyncInterval,
        failures: u32,
    ) -> DueSync {
        DueSync {
            secret_id: secret_id.into(),
            due_at,
            interval,
            failures,
        }
    }
}

/// For `Option<Option<T>>` fields: absent is `None`, `null` is `Some(None)`.
pub(crate) fn some_or_null<'de, T, D>(
    deserializer: D,
) -> std::result::Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_print_and_stay_within_bounds() {
        for (text, secs, shown) in [
            ("1m", 60, "1m"),
            ("90s", 90, "1m 30s"),
            ("1h 30m", 5400, "1h 30m"),
            (" 7d ", 604_800, "7days"),
        ] {
            let every: SyncInterval = text.parse().unwrap();
            assert_eq!(every.as_secs(), secs, "{text}");
            assert_eq!(every.to_string(), shown, "{text}");
            assert_eq!(every.to_string().parse::<SyncInterval>().unwrap(), every);
        }
        for bad in ["59s", "8d", "", "often", "1500ms", "-5m"] {
            let e = bad.parse::<SyncInterval>().unwrap_err();
            assert_eq!(e.field(), Some("sync_interval"), "{bad}: {e}");
        }
        let json: SyncInterval = serde_json::from_str("\"30m\"").unwrap();
        assert_eq!(serde_json::to_string(&json).unwrap(), "\"30m\"");
        assert!(serde_json::from_str::<SyncInterval>("\"10s\"").is_err());
    }
}
