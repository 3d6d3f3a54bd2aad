//! A stable content hash of a host, and the encoding other resources hash with.
//!
//! SHA-256 over a length-prefixed encoding of every field that describes the host, so the
//! hash is the same across runs, processes and builds (unlike `DefaultHasher`). Sync
//! bookkeeping (`secret_id`, and the store's seen/released times) is left out, and lists
//! whose order the vendor does not define (IPs, security groups, key pairs) are sorted
//! first. Tags and `extra` are ordered maps already; JSON values inside `extra` are
//! encoded with their object keys sorted. [`Feed`] is that encoding, shared by every
//! resource's `content_hash`, each with a version tag of its own.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::model::Host;

/// Version tag mixed into the hash: bump it when the encoding changes, so that every
/// stored hash reads as changed once instead of silently comparing different encodings.
const HASH_VERSION: &[u8] = b"cmdb-host-v1";

/// The length-prefixed, tagged encoding a content hash is computed over. Each field is
/// fed with a tag of its own (its position), so that no two field sequences encode alike.
pub(crate) struct Feed(Sha256);

impl Feed {
    /// A feed that starts with `version`, the encoding's version tag.
    pub(crate) fn new(version: &[u8]) -> Feed {
        let mut f = Feed(Sha256::new());
        f.0.update(version);
        f
    }

    /// Lowercase hex SHA-256 of everything fed.
    pub(crate) fn finish(self) -> String {
        lower_hex(&self.0.finalize())
    }

    fn bytes(&mut self, tag: u8, b: &[u8]) {
        self.0.update([tag]);
        self.0.update((b.len() as u64).to_le_bytes());
        self.0.update(b);
    }

    pub(crate) fn str(&mut self, tag: u8, s: &str) {
        self.bytes(tag, s.as_bytes());
    }

    pub(crate) fn opt_str(&mut self, tag: u8, s: Option<&str>) {
        match s {
            Some(s) => self.str(tag, s),
            None => self.0.update([tag, 0xff]),
        }
    }

    pub(crate) fn opt_u64(&mut self, tag: u8, n: Option<u64>) {
        match n {
            Some(n) => {
                self.0.update([tag]);
                self.0.update(n.to_le_bytes());
            }
            None => self.0.update([tag, 0xff]),
        }
    }

    pub(crate) fn set(&mut self, tag: u8, items: &[String]) {
        let mut sorted: Vec<&str> = items.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        self.0.update([tag]);
        self.0.update((sorted.len() as u64).to_le_bytes());
        for s in sorted {
            self.str(b'.', s);
        }
    }

    /// A string map (tags), in key order.
    pub(crate) fn string_map(&mut self, tag: u8, map: &BTreeMap<String, String>) {
        self.0.update([tag]);
        self.0.update((map.len() as u64).to_le_bytes());
        for (k, v) in map {
            self.str(b'k', k);
            self.str(b'v', v);
        }
    }

    /// A map of JSON values (`extra`), in key order, objects inside with sorted keys.
    pub(crate) fn json_map(&mut self, tag: u8, map: &BTreeMap<String, serde_json::Value>) {
        self.0.update([tag]);
        self.0.update((map.len() as u64).to_le_bytes());
        for (k, v) in map {
            self.str(b'k', k);
            self.json(v);
        }
    }

    fn json(&mut self, v: &serde_json::Value) {
        use serde_json::Value;
        match v {
            Value::Null => self.0.update([b'n']),
            Value::Bool(b) => self.0.update([b'b', u8::from(*b)]),
            Value::Number(n) => self.str(b'#', &n.to_string()),
            Value::String(s) => self.str(b's', s),
            Value::Array(items) => {
                self.0.update([b'[']);
                self.0.update((items.len() as u64).to_le_bytes());
                for item in items {
                    self.json(item);
                }
            }
            Value::Object(map) => {
                // serde_json may preserve insertion order when a dependency enables
                // `preserve_order`: sort here so the hash never depends on it.
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                self.0.update([b'{']);
                self.0.update((entries.len() as u64).to_le_bytes());
                for (k, v) in entries {
                    self.str(b'k', k);
                    self.json(v);
                }
            }
        }
    }
}

impl Host {
    /// Hex SHA-256 of the host's content; equal hashes mean nothing worth recording
    /// changed. See the module documentation for what is included.
    pub fn content_hash(&self) -> String {
        let mut f = Feed::new(HASH_VERSION);
        f.str(1, self.vendor.as_str());
        f.str(2, &self.instance_id);
        f.str(3, &self.region);
        f.opt_str(4, self.zone.as_deref());
        f.str(5, &self.name);
        f.opt_str(6, self.description.as_deref());
        f.opt_str(7, self.hostname.as_deref());
        f.str(8, self.status.as_str());
        f.str(9, &self.raw_status);
        f.opt_str(10, self.instance_type.as_deref());
        f.opt_u64(11, self.cpu.map(u64::from));
        f.opt_u64(12, self.memory_mib);
        f.opt_u64(13, self.gpu_count.map(u64::from));
        f.opt_str(14, self.gpu_spec.as_deref());
        f.str(15, self.os_type.as_str());
        f.opt_str(16, self.os_name.as_deref());
        f.opt_str(17, self.image_id.as_deref());
        f.set(18, &self.public_ips);
        f.set(19, &self.private_ips);
        f.str(20, self.pay_mode.as_str());
        f.opt_str(21, self.created_at.map(|t| t.to_rfc3339()).as_deref());
        f.opt_str(22, self.expire_at.map(|t| t.to_rfc3339()).as_deref());
        f.string_map(23, &self.tags);
        f.opt_str(24, self.vpc_id.as_deref());
        f.set(25, &self.security_groups);
        f.set(26, &self.key_pairs);
        f.opt_str(27, self.serial_number.as_deref());
        f.json_map(28, &self.extra);
        f.finish()
    }
}

/// Lowercase hex of `bytes`, written into a string of the right size at once.
fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        hex.push(char::from(DIGITS[usize::from(b >> 4)]));
        hex.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    hex
}

#[cfg(test)]
mod tests {
    use crate::model::{Host, HostStatus, Vendor};

    fn sample() -> Host {
        let mut h = Host::new(Vendor::Huawei, "0a1b", "cn-north-4");
        h.name = "db-1".into();
        h.status = HostStatus::Running;
        h.private_ips = vec!["10.0.0.1".into(), "10.0.0.2".into()];
        h.public_ips = vec!["1.2.3.4".into()];
        h.security_groups = vec!["sg-b".into(), "sg-a".into()];
        h.tags.insert("env".into(), "prod".into());
        h.tags.insert("team".into(), "infra".into());
        h.extra.insert(
            "fault".into(),
            serde_json::json!({"b": 1, "a": [true, null]}),
        );
        h
    }

    #[test]
    fn hash_is_pinned_across_builds() {
        // A fixed value: if the encoding changes by accident, stored hashes would all
        // read as changed. Change HASH_VERSION and this value together, on purpose.
        assert_eq!(
            sample().content_hash(),
            "36918d2dede681d02b793d11b232e4f238d383dcab765cbb4ae3d3fc62ae84c2"
        );
    }

    #[test]
    fn order_of_lists_and_tags_does_not_matter() {
        let a = sample();
        let mut b = sample();
        b.private_ips.reverse();
        b.security_groups.reverse();
        b.tags = b.tags.into_iter().rev().collect();
        assert_eq!(a.content_hash(), b.content_hash());
    }

    #[test]
    fn bookkeeping_is_excluded_and_content_is_included() {
        let a = sample();
        let mut b = sample();
        b.secret_id = "other".into();
        assert_eq!(a.content_hash(), b.content_hash());
        b.status = HostStatus::Stopped;
        assert_ne!(a.content_hash(), b.content_hash());
        let mut c = sample();
        c.tags.insert("env".into(), "dev".into());
        assert_ne!(a.content_hash(), c.content_hash());
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        let mut a = Host::new(Vendor::Aliyun, "ab", "c");
        let mut b = Host::new(Vendor::Aliyun, "a", "bc");
        assert_ne!(a.content_hash(), b.content_hash());
        a.zone = Some(String::new());
        b.zone = None;
        assert_ne!(a.content_hash(), b.content_hash());
    }
}
