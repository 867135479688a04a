//! Which network addresses a fetch on a person's behalf may never reach (SPEC §2.5: a client ID
//! metadata document is never fetched from private, loopback or link-local addresses outside dev
//! mode). Our host applies it to every address a name resolves to (`host/src/outbound.rs`); the
//! core applies it to a URL whose host is an address (on Spin, which resolves names itself).

pub use std::net::IpAddr;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Why an address is refused, or `None` if a fetch may go there. IPv4-mapped IPv6 addresses are
/// judged as the IPv4 address they carry.
pub fn refused(ip: IpAddr, dev: bool) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4, dev),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => refused_v4(v4, dev),
            None => refused_v6(v6, dev),
        },
    }
}

fn refused_v4(ip: Ipv4Addr, dev: bool) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        return (!dev).then_some("loopback");
    }
    if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (carrier-grade NAT)")
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        Some("multicast or reserved")
    } else {
        None
    }
}

fn refused_v6(ip: Ipv6Addr, dev: bool) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        return (!dev).then_some("loopback");
    }
    if ip.is_unspecified() {
        Some("unspecified")
    } else if first & 0xfe00 == 0xfc00 {
        Some("private (unique local)")
    } else if first & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if ip.is_multicast() {
        Some("multicast or reserved")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_address_class_of_the_spec_is_refused_and_public_ones_are_not() {
        let cases = [
            ("127.0.0.1", Some("loopback")),
            ("127.3.4.5", Some("loopback")),
            ("::1", Some("loopback")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("10.1.2.3", Some("private")),
            ("172.16.0.1", Some("private")),
            ("172.31.255.254", Some("private")),
            ("192.168.1.1", Some("private")),
            ("::ffff:192.168.1.1", Some("private")),
            ("fd00::1", Some("private (unique local)")),
            ("fc00::1", Some("private (unique local)")),
            ("169.254.169.254", Some("link-local")),
            ("fe80::1", Some("link-local")),
            ("100.64.0.1", Some("shared (carrier-grade NAT)")),
            ("0.0.0.0", Some("unspecified")),
            ("::", Some("unspecified")),
            ("0.1.2.3", Some("unspecified")),
            ("224.0.0.1", Some("multicast or reserved")),
            ("255.255.255.255", Some("multicast or reserved")),
            ("240.0.0.1", Some("multicast or reserved")),
            ("ff02::1", Some("multicast or reserved")),
            ("93.184.215.14", None),
            ("172.32.0.1", None),
            ("100.128.0.1", None),
            ("2606:4700::1111", None),
        ];
        for (ip, expected) in cases {
            assert_eq!(refused(ip.parse().unwrap(), false), expected, "{ip}");
        }
        assert_eq!(refused("127.0.0.1".parse().unwrap(), true), None, "dev mode allows this machine");
        assert_eq!(refused("::1".parse().unwrap(), true), None);
        assert_eq!(refused("10.0.0.1".parse().unwrap(), true), Some("private"), "and nothing else");
    }
}
