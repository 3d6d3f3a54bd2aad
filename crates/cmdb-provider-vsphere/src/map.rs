//! vim25 virtual machine -> normalized [`Host`].

use std::collections::BTreeSet;
use std::net::IpAddr;

use cmdb_core::{Host, HostStatus, OsType, Vendor};

use crate::model::VirtualMachine;

/// The host of `vm`, listed in `datacenter` of the vCenter `region`; `None` for a
/// template, which is not a running machine, and for a machine without a
/// `config.instanceUuid`. The machine's strings move into the host.
pub(crate) fn to_host(vm: VirtualMachine, region: &str, datacenter: &str) -> Option<Host> {
    if vm.template == Some(true) {
        return None;
    }
    let (public, private) = addresses(&vm);
    let os_type = vm.guest_id.as_deref().map(os_type).unwrap_or_default();
    let VirtualMachine {
        moref,
        name,
        instance_uuid,
        bios_uuid,
        num_cpu,
        memory_mb,
        guest_full_name,
        guest_id,
        create_date,
        annotation,
        host_name,
        power_state,
        connection_state,
        custom_values,
        field_names,
        config_missing,
        ..
    } = vm;
    // `config.instanceUuid` is unique per vCenter; a machine whose config cannot be read
    // (inaccessible, orphaned) has none and is never stored under another id: the
    // listing reports it as a failed record.
    let id = instance_uuid?;
    let mut host = Host::new(Vendor::Vsphere, id, region);
    host.zone = Some(datacenter.to_owned());
    host.name = name.unwrap_or_else(|| moref.clone());
    host.description = annotation;
    host.hostname = host_name;
    let (status, raw) = status(connection_state, power_state, config_missing);
    host.status = status;
    host.raw_status = raw;
    host.cpu = num_cpu;
    host.memory_mib = memory_mb;
    host.os_name = guest_full_name;
    host.os_type = os_type;
    host.created_at = create_date;
    host.serial_number = bios_uuid;
    host.public_ips = public;
    host.private_ips = private;
    for (key, value) in custom_values {
        let name = field_names
            .get(&key)
            .cloned()
            .unwrap_or_else(|| format!("custom.{key}"));
        host.tags.insert(name, value);
    }
    host.extra
        .insert("moref".into(), serde_json::Value::from(moref));
    if let Some(guest_id) = guest_id {
        host.extra
            .insert("guest_id".into(), serde_json::Value::from(guest_id));
    }
    Some(host)
}

/// Normalized status and the vendor's word: the power state, unless the machine cannot
/// be managed (no config, or a connection state of inaccessible, orphaned or invalid),
/// in which case the status is unknown and the raw status says why.
fn status(
    connection_state: Option<String>,
    power_state: Option<String>,
    config_missing: bool,
) -> (HostStatus, String) {
    let broken = matches!(
        connection_state.as_deref(),
        Some("inaccessible" | "orphaned" | "invalid")
    );
    if broken || config_missing {
        let raw = connection_state
            .filter(|s| s != "connected")
            .unwrap_or_else(|| "inaccessible".into());
        return (HostStatus::Unknown, raw);
    }
    let raw = power_state.unwrap_or_default();
    let status = match raw.as_str() {
        "poweredOn" => HostStatus::Running,
        "poweredOff" => HostStatus::Stopped,
        "suspended" => HostStatus::Suspended,
        _ => HostStatus::Unknown,
    };
    (status, raw)
}

/// The OS family of a `config.guestId` (`VirtualMachineGuestOsIdentifier`): `windows*`
/// and `win*` are Windows; Linux distributions are named by family
/// (`ubuntu64Guest`, `rhel9_64Guest`, `otherLinux64Guest`, ...).
pub(crate) fn os_type(guest_id: &str) -> OsType {
    let id = guest_id.to_ascii_lowercase();
    if id.starts_with("win") {
        return OsType::Windows;
    }
    const LINUX: &[&str] = &[
        "asianux",
        "mandrake",
        "mandriva",
        "turbolinux",
        "photon",
        "vmwarephoton",
        "opensuse",
        "nld",
        "sjds",
        "rhel",
        "centos",
        "oracle",
        "debian",
        "ubuntu",
        "sles",
        "fedora",
        "coreos",
        "rocky",
        "alma",
        "miracle",
    ];
    if id.contains("linux") || LINUX.iter().any(|family| id.starts_with(family)) {
        return OsType::Linux;
    }
    // `otherGuest`, `dosGuest`, `darwin*`, `solaris*`, `freebsd*`: as the core classifies them.
    OsType::from_vendor(&id)
}

/// Every guest address, from `guest.net` (all adapters, IPv4 and IPv6) or else
/// `guest.ipAddress`, without link-local ones, de-duplicated in order, split into public
/// and private ones.
fn addresses(vm: &VirtualMachine) -> (Vec<String>, Vec<String>) {
    let mut seen = BTreeSet::new();
    let (mut public, mut private) = (Vec::new(), Vec::new());
    let from_nics: Vec<&str> = vm
        .nics
        .iter()
        .flat_map(|n| n.ips.iter().map(String::as_str))
        .collect();
    let candidates = if from_nics.is_empty() {
        vm.ip_address.as_deref().into_iter().collect()
    } else {
        from_nics
    };
    for raw in candidates {
        // IPv6 addresses may carry a zone (`fe80::1%eth0`).
        let address = raw.split('%').next().unwrap_or(raw);
        let Ok(ip) = address.parse::<IpAddr>() else {
            continue;
        };
        if is_link_local(ip) || ip.is_unspecified() || !seen.insert(ip) {
            continue;
        }
        let text = match ip {
            // The only text that parses as an IPv4 address is its dotted decimal form,
            // no digit more: what `to_string` would write, without formatting it.
            IpAddr::V4(_) => address.to_owned(),
            IpAddr::V6(_) => ip.to_string(),
        };
        if is_private(ip) {
            private.push(text);
        } else {
            public.push(text);
        }
    }
    (public, private)
}

fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// RFC 1918, shared (100.64/10), loopback and IPv6 unique-local addresses.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private() || v4.is_loopback() || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::GuestNic;

    fn vm() -> VirtualMachine {
        VirtualMachine {
            moref: "vm-42".into(),
            name: Some("web-1".into()),
            instance_uuid: Some("5012-aaaa".into()),
            bios_uuid: Some("4212-bbbb".into()),
            template: Some(false),
            num_cpu: Some(2),
            memory_mb: Some(4096),
            guest_full_name: Some("Ubuntu Linux (64-bit)".into()),
            guest_id: Some("ubuntu64Guest".into()),
            power_state: Some("poweredOn".into()),
            connection_state: Some("connected".into()),
            ..VirtualMachine::default()
        }
    }

    #[test]
    fn a_running_machine_maps_every_field() {
        let mut vm = vm();
        vm.nics = vec![GuestNic {
            ips: vec![
                "10.0.0.5".into(),
                "fe80::250:56ff:fe00:1".into(),
                "169.254.1.1".into(),
                "2001:db8::5".into(),
                "10.0.0.5".into(),
                "fd00::1".into(),
            ],
            ..GuestNic::default()
        }];
        vm.ip_address = Some("192.168.9.9".into());
        vm.annotation = Some("owned by ops".into());
        vm.custom_values.insert(7, "prod".into());
        vm.field_names.insert(7, "env".into());
        let h = to_host(vm, "vc.example.com", "DC1").unwrap();
        assert_eq!(h.instance_id, "5012-aaaa");
        assert_eq!(h.serial_number.as_deref(), Some("4212-bbbb"));
        assert_eq!(h.region, "vc.example.com");
        assert_eq!(h.zone.as_deref(), Some("DC1"));
        assert_eq!(
            (h.status, h.raw_status.as_str()),
            (HostStatus::Running, "poweredOn")
        );
        assert_eq!((h.cpu, h.memory_mib), (Some(2), Some(4096)));
        assert_eq!(h.os_type, OsType::Linux);
        assert_eq!(h.private_ips, ["10.0.0.5", "fd00::1"]);
        assert_eq!(h.public_ips, ["2001:db8::5"]);
        assert_eq!(h.description.as_deref(), Some("owned by ops"));
        assert_eq!(h.tags["env"], "prod");
        assert_eq!(h.extra["moref"], "vm-42");
    }

    #[test]
    fn the_guest_ip_is_the_fallback_and_templates_are_skipped() {
        let mut v = vm();
        v.ip_address = Some("192.168.9.9".into());
        assert_eq!(
            to_host(v.clone(), "vc", "DC").unwrap().private_ips,
            ["192.168.9.9"]
        );
        v.template = Some(true);
        assert!(to_host(v, "vc", "DC").is_none());
    }

    #[test]
    fn power_states_normalize_and_inaccessible_machines_are_unknown() {
        for (power, status) in [
            ("poweredOff", HostStatus::Stopped),
            ("suspended", HostStatus::Suspended),
            ("weird", HostStatus::Unknown),
        ] {
            let mut v = vm();
            v.power_state = Some(power.into());
            let h = to_host(v, "vc", "DC").unwrap();
            assert_eq!((h.status, h.raw_status.as_str()), (status, power));
        }
        // Its config unreadable, yet its instance uuid known (from an earlier answer).
        let orphan = VirtualMachine {
            moref: "vm-9".into(),
            name: Some("lost".into()),
            instance_uuid: Some("5000-9".into()),
            connection_state: Some("orphaned".into()),
            power_state: Some("poweredOff".into()),
            config_missing: true,
            ..VirtualMachine::default()
        };
        let h = to_host(orphan.clone(), "vc", "DC").unwrap();
        assert_eq!(h.instance_id, "5000-9");
        assert_eq!(
            (h.status, h.raw_status.as_str()),
            (HostStatus::Unknown, "orphaned")
        );
        assert_eq!(h.name, "lost");
        // Without one, it is never stored under its moref.
        let no_uuid = VirtualMachine {
            instance_uuid: None,
            ..orphan
        };
        assert!(to_host(no_uuid, "vc", "DC").is_none());
    }

    /// `addresses` keeps the text of an IPv4 address rather than formatting it: only its
    /// dotted decimal form parses, so both are the same. Checked on many near misses.
    #[test]
    fn an_ipv4_address_that_parses_is_written_as_it_was_read() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let pieces = [
            "0", "00", "1", "01", "9", "10", "255", "256", "099", "1000", "+1", "a", "",
        ];
        let mut parsed = 0;
        for _ in 0..50_000 {
            let count = if next() % 4 == 0 {
                3 + (next() % 3) as usize
            } else {
                4
            };
            let text: Vec<&str> = (0..count)
                .map(|_| pieces[(next() % pieces.len() as u64) as usize])
                .collect();
            let text = text.join(if next() % 8 == 0 { ":" } else { "." });
            if let Ok(ip @ IpAddr::V4(_)) = text.parse::<IpAddr>() {
                parsed += 1;
                assert_eq!(ip.to_string(), text);
            }
        }
        assert!(parsed > 500, "{parsed}");
        let mut v = vm();
        v.nics = vec![GuestNic {
            ips: vec![
                "10.0.0.5%eth0".into(),
                "8.8.8.8".into(),
                "2001:DB8:0::5".into(),
            ],
            ..GuestNic::default()
        }];
        let h = to_host(v, "vc", "DC").unwrap();
        assert_eq!(h.private_ips, ["10.0.0.5"]);
        assert_eq!(h.public_ips, ["8.8.8.8", "2001:db8::5"]);
    }

    #[test]
    fn guest_ids_map_to_families() {
        for (id, t) in [
            ("windows9Server64Guest", OsType::Windows),
            ("winNetStandardGuest", OsType::Windows),
            ("rhel9_64Guest", OsType::Linux),
            ("otherLinux64Guest", OsType::Linux),
            ("vmwarePhoton64Guest", OsType::Linux),
            ("centos7_64Guest", OsType::Linux),
            ("otherGuest", OsType::Other),
            ("darwin20_64Guest", OsType::Other),
        ] {
            assert_eq!(os_type(id), t, "{id}");
        }
    }
}
