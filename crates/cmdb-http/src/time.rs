//! Vendor date-times without an offset, read with strftime formats parsed once.

use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{DateTime, Utc};

/// strftime formats of date-times without an offset, each parsed into chrono's items
/// once, so that reading a time does not parse its format again (chrono's
/// `NaiveDateTime::parse_from_str` does, on every call). Times are read as UTC.
///
/// ```
/// use cmdb_http::TimeFormats;
///
/// let formats = TimeFormats::new(&["%Y-%m-%dT%H:%MZ", "%Y-%m-%d %H:%M:%S"]);
/// let t = formats.parse_utc("2017-12-10T04:04Z").unwrap();
/// assert_eq!(t.to_rfc3339(), "2017-12-10T04:04:00+00:00");
/// assert!(formats.parse_utc("2017-12-10 04:04:05").is_some());
/// assert!(formats.parse_utc("yesterday").is_none());
/// ```
#[derive(Debug, Clone)]
pub struct TimeFormats {
    formats: Vec<Vec<Item<'static>>>,
}

impl TimeFormats {
    /// The formats, tried in this order.
    pub fn new(formats: &[&'static str]) -> TimeFormats {
        TimeFormats {
            formats: formats
                .iter()
                .map(|format| StrftimeItems::new(format).collect())
                .collect(),
        }
    }

    /// `text` read with the first format that reads all of it, as a UTC time; what
    /// `NaiveDateTime::parse_from_str(text, format)` answers for each format in turn.
    pub fn parse_utc(&self, text: &str) -> Option<DateTime<Utc>> {
        self.formats.iter().find_map(|items| {
            let mut parsed = Parsed::new();
            chrono::format::parse(&mut parsed, text, items.iter()).ok()?;
            parsed
                .to_naive_datetime_with_offset(0)
                .ok()
                .map(|t| t.and_utc())
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDateTime;

    use super::*;

    #[test]
    fn reads_what_parse_from_str_reads() {
        let formats = [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%MZ",
            "%Y-%m-%dT%H:%M:%SZ",
        ];
        let read = TimeFormats::new(&formats);
        for text in [
            "2024-01-02T03:04:05",
            "2024-01-02T03:04:05.123456",
            "2024-01-02 03:04:05",
            "2024-01-02 03:04:05.5",
            "2017-12-10T04:04Z",
            "2017-12-10T04:04:59Z",
            "2024-02-30T03:04:05",
            "2024-01-02T25:04:05",
            "2024-01-02T03:04",
            "2024-01-02",
            "",
            " 2024-01-02T03:04:05",
            "2024-01-02T03:04:05 ",
            "2024-01-02T03:04:05+08:00",
        ] {
            let expected = formats
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
                .map(|t| t.and_utc());
            assert_eq!(read.parse_utc(text), expected, "{text:?}");
        }
    }
}
