//! Which addresses a media fetch may connect to (no SSRF).
//!
//! Media URLs come from whoever calls the plugin, so by default a fetch may
//! reach only public unicast addresses: not the operator's loopback, LAN,
//! link-local (cloud metadata at 169.254.169.254), carrier-grade NAT,
//! multicast, broadcast, unspecified or reserved ranges, nor those hidden in
//! IPv6 (IPv4-mapped, -compatible, NAT64, 6to4).
//!
//! The check runs in the media agent's connector chain on the socket
//! addresses the TCP connector is about to connect to, i.e. after DNS and
//! for every connection, redirect hops included. So a host name that
//! resolves to 127.0.0.1, DNS rebinding between two lookups, and every odd
//! spelling the system resolver accepts (`2130706433`, `0x7f.1`, `127.1`,
//! octal) are judged by the address they end up as.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ureq::unversioned::transport::{ConnectionDetails, Connector, Transport};

/// True for addresses anyone on the internet could reach.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let not_public = ip.is_unspecified()
        || a == 0 // "this network", 0.0.0.0/8
        || ip.is_loopback() // 127/8
        || ip.is_private() // 10/8, 172.16/12, 192.168/16
        || ip.is_link_local() // 169.254/16
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT, 100.64/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || ip.is_documentation() // 192.0.2/24, 198.51.100/24, 203.0.113/24
        || (a == 198 && (b == 18 || b == 19)) // benchmarking, 198.18/15
        || ip.is_multicast() // 224/4
        || a >= 240; // reserved 240/4 and broadcast 255.255.255.255
    !not_public
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    // IPv4 inside IPv6: judged by the IPv4 address it carries.
    if let Some(v4) = embedded_v4(ip) {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    let not_public = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast() // ff00::/8
        || ip.is_unique_local() // fc00::/7
        || ip.is_unicast_link_local() // fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // deprecated site-local, fec0::/10
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation, 2001:db8::/32
        || (s[0] == 0x2001 && s[1] == 0) // Teredo, 2001::/32: tunnels anywhere
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard-only, 100::/64
        || s[0] == 0; // the rest of ::/16 (reserved)
    !not_public
}

/// The IPv4 address an IPv6 address stands for: IPv4-mapped `::ffff:a.b.c.d`,
/// IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d` and 6to4
/// `2002:aabb:ccdd::`.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let o = ip.octets();
    let tail = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    if s[..5] == [0, 0, 0, 0, 0] && (s[5] == 0xffff || s[5] == 0) {
        // :: and ::1 are IPv6's own unspecified and loopback addresses,
        // both refused either way.
        return Some(tail);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(tail);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    None
}

/// The message of a refused connection (it reaches the caller only when the
/// operator turned `media.debug_errors` on).
pub const REFUSED: &str =
    "the address is not public (set media.allow_private_networks to allow it)";

/// First link of the media agent's connector chain: refuses to connect
/// when any address the host resolved to is not public (unless the
/// operator allows private networks).
#[derive(Debug, Default)]
pub struct PublicOnlyConnector {
    pub allow_private: bool,
    /// Non-public addresses the operator allowed one by one.
    pub allowed: Vec<IpAddr>,
}

impl<In: Transport> Connector<In> for PublicOnlyConnector {
    type Out = In;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        // No addresses means a proxy resolves the target: the media agent
        // has none, so that is refused too rather than left unchecked.
        // Any non-public address refuses the host, not just that address:
        // a name that resolves to both kinds is not one to trust.
        let allowed = |ip: IpAddr| {
            // An IPv4-mapped address is the IPv4 address it carries.
            let ip = ip.to_canonical();
            is_public(ip) || self.allowed.iter().any(|a| a.to_canonical() == ip)
        };
        let all_allowed =
            !details.addrs.is_empty() && details.addrs.iter().all(|a| allowed(a.ip()));
        if !all_allowed && !self.allow_private {
            return Err(ureq::Error::Io(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                REFUSED,
            )));
        }
        Ok(chained)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(text: &str) -> bool {
        is_public(IpAddr::V4(text.parse().unwrap()))
    }

    fn v6(text: &str) -> bool {
        is_public(IpAddr::V6(text.parse().unwrap()))
    }

    #[test]
    fn every_non_public_ipv4_range_is_refused() {
        for (first, last) in [
            ("0.0.0.0", "0.255.255.255"),
            ("10.0.0.0", "10.255.255.255"),
            ("100.64.0.0", "100.127.255.255"),
            ("127.0.0.0", "127.255.255.255"),
            ("169.254.0.0", "169.254.255.255"),
            ("172.16.0.0", "172.31.255.255"),
            ("192.0.0.0", "192.0.0.255"),
            ("192.0.2.0", "192.0.2.255"),
            ("192.168.0.0", "192.168.255.255"),
            ("198.18.0.0", "198.19.255.255"),
            ("198.51.100.0", "198.51.100.255"),
            ("203.0.113.0", "203.0.113.255"),
            ("224.0.0.0", "239.255.255.255"),
            ("240.0.0.0", "255.255.255.255"),
        ] {
            let (lo, hi): (Ipv4Addr, Ipv4Addr) = (first.parse().unwrap(), last.parse().unwrap());
            // Both ends, the middle and every address next to a /16 edge.
            let (lo, hi) = (u32::from(lo), u32::from(hi));
            for n in [lo, hi, lo + (hi - lo) / 2, lo + 1, hi - 1] {
                assert!(!is_public_v4(Ipv4Addr::from(n)), "{}", Ipv4Addr::from(n));
            }
        }
        assert!(!v4("169.254.169.254"), "cloud metadata");
    }

    #[test]
    fn public_ipv4_neighbours_of_those_ranges_are_allowed() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
        ] {
            assert!(v4(ip), "{ip}");
        }
    }

    #[test]
    fn every_sweep_of_the_ipv4_space_agrees_with_the_ranges() {
        // A coarse sweep (every 2^20th address, offset so edges are hit)
        // against an independent statement of the refused ranges.
        let refused: [(u32, u8); 14] = [
            (0x0000_0000, 8),
            (0x0a00_0000, 8),
            (0x6440_0000, 10),
            (0x7f00_0000, 8),
            (0xa9fe_0000, 16),
            (0xac10_0000, 12),
            (0xc000_0000, 24),
            (0xc000_0200, 24),
            (0xc0a8_0000, 16),
            (0xc612_0000, 15),
            (0xc633_6400, 24),
            (0xcb00_7100, 24),
            (0xe000_0000, 4),
            (0xf000_0000, 4),
        ];
        let in_refused = |n: u32| {
            refused
                .iter()
                .any(|&(net, bits)| n >> (32 - bits) == net >> (32 - bits))
        };
        for step in 0..4096u32 {
            for offset in [0u32, 1, 0xff, 0x8_0000] {
                let n = (step << 20) | offset;
                assert_eq!(
                    is_public_v4(Ipv4Addr::from(n)),
                    !in_refused(n),
                    "{}",
                    Ipv4Addr::from(n)
                );
            }
        }
    }

    #[test]
    fn ipv6_forms_are_refused() {
        for ip in [
            "::",
            "::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "ff0e::1",
            "2001:db8::1",
            "2001::1",
            "100::1",
            // IPv4 inside IPv6.
            "::ffff:127.0.0.1",
            "::ffff:7f00:1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:0.0.0.0",
            "::127.0.0.1",
            "::10.1.2.3",
            "::192.168.0.1",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
        ] {
            assert!(!v6(ip), "{ip}");
        }
    }

    #[test]
    fn public_ipv6_is_allowed() {
        for ip in [
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "::8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:4860::8888",
        ] {
            assert!(v6(ip), "{ip}");
        }
    }
}
