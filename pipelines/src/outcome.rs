//! What became of a packet: exactly one [`Outcome`] per received packet.
//!
//! # Design
//! Errors are data (as in VPP): a stage that rejects a packet writes a drop outcome with a reason
//! instead of returning early through layers of `Result`. Each variant's doc line is also the help
//! text of its metric and of its line in the exit summary, so the macro below keeps the two in one
//! place: the name (a Prometheus label value) and the help string cannot drift from the code.
//!
//! The accounting identity the end-to-end tests assert: `received == Σ outcomes`, and for every
//! tool port, `copies queued == transmitted + tx drops`.

/// Declares a fieldless enum whose variants carry a label and a doc line used as help text.
macro_rules! labelled_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( #[doc = $help:literal] $variant:ident = $label:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        pub enum $name {
            $( #[doc = $help] $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order (the order of `index`).
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Number of variants.
            pub const COUNT: usize = Self::ALL.len();

            /// Position in [`Self::ALL`]; indexes counter arrays.
            pub const fn index(self) -> usize {
                self as usize
            }

            /// snake_case name: the metric label value and the summary's row name.
            pub const fn label(self) -> &'static str {
                match self { $($name::$variant => $label,)+ }
            }

            /// The operator-facing explanation (the variant's doc line).
            pub const fn help(self) -> &'static str {
                match self { $($name::$variant => $help.trim_ascii(),)+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.label())
            }
        }
    };
}

labelled_enum! {
    /// Why a packet was dropped as malformed: a header that lies about its length, is cut short,
    /// or nests past a bound.
    pub enum Reason {
        /// frame shorter than an Ethernet header
        EthernetTruncated = "ethernet_truncated",
        /// outer VLAN tag cut short
        VlanTruncated = "vlan_truncated",
        /// more than two outer VLAN tags (QinQ is the limit)
        VlanTooDeep = "vlan_too_deep",
        /// outer IPv4 header cut short
        Ipv4Truncated = "ipv4_truncated",
        /// outer IPv4 version field is not 4
        Ipv4BadVersion = "ipv4_bad_version",
        /// outer IPv4 header length (IHL) below 5 words
        Ipv4BadIhl = "ipv4_bad_ihl",
        /// outer IPv4 total length smaller than its header or larger than the frame
        Ipv4BadLength = "ipv4_bad_length",
        /// outer IPv6 header cut short
        Ipv6Truncated = "ipv6_truncated",
        /// outer IPv6 version field is not 6
        Ipv6BadVersion = "ipv6_bad_version",
        /// outer IPv6 payload length larger than the frame
        Ipv6BadLength = "ipv6_bad_length",
        /// outer IPv6 extension header runs past the packet
        Ipv6ExtTruncated = "ipv6_ext_truncated",
        /// more than 8 outer IPv6 extension headers
        Ipv6ExtTooMany = "ipv6_ext_too_many",
        /// outer IP fragment: tunnels are not reassembled
        OuterFragment = "outer_fragment",
        /// outer UDP header cut short
        UdpTruncated = "udp_truncated",
        /// outer UDP length below 8 or larger than the IP payload
        UdpBadLength = "udp_bad_length",
        /// VXLAN header cut short
        VxlanTruncated = "vxlan_truncated",
        /// VXLAN header without the I flag (no valid VNI)
        VxlanNoVni = "vxlan_no_vni",
        /// GENEVE header cut short
        GeneveTruncated = "geneve_truncated",
        /// GENEVE version is not 0
        GeneveBadVersion = "geneve_bad_version",
        /// GENEVE options run past the end of the UDP payload
        GeneveOptionsOverrun = "geneve_options_overrun",
        /// GENEVE protocol type is not Ethernet, IPv4 or IPv6
        GeneveUnknownProtocol = "geneve_unknown_protocol",
        /// more than 3 tunnels nested in one another
        TunnelTooDeep = "tunnel_too_deep",
        /// tunnel carries no inner frame, or one shorter than an Ethernet header
        InnerTooShort = "inner_too_short",
    }
}

/// The single fate of a received packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// delivered to at least one tool group
    Delivered,
    /// rejected by the session's filter
    Filtered,
    /// every tool group of the session already had this packet: within the dedup window, or from the copy mirrored at its sender
    Duplicate,
    /// outer source address not in decap.allowed_sources
    SourceDenied,
    /// not a tunnelled frame (and pass_untunneled is off)
    NotTunnel,
    /// VNI of no session (and no default_session)
    UnknownSession,
    /// no tool group of the session had a live port to take it
    NoLivePort,
    /// for the addressed port itself (ARP, neighbour discovery, ICMP, TCP or non-mirror UDP to its addresses): handed to its kernel side
    Control,
    /// malformed outer headers, dropped; see the reason
    Malformed(Reason),
}

impl Outcome {
    /// Outcomes that are not `Malformed`.
    const SIMPLE: [Outcome; 8] = [
        Outcome::Delivered,
        Outcome::Filtered,
        Outcome::Duplicate,
        Outcome::SourceDenied,
        Outcome::NotTunnel,
        Outcome::UnknownSession,
        Outcome::NoLivePort,
        Outcome::Control,
    ];

    /// Number of distinct outcomes, each malformed reason counting as one.
    pub const COUNT: usize = Self::SIMPLE.len() + Reason::COUNT;

    /// Dense index for counter arrays: the simple outcomes first, then one per reason.
    pub const fn index(self) -> usize {
        match self {
            Outcome::Delivered => 0,
            Outcome::Filtered => 1,
            Outcome::Duplicate => 2,
            Outcome::SourceDenied => 3,
            Outcome::NotTunnel => 4,
            Outcome::UnknownSession => 5,
            Outcome::NoLivePort => 6,
            Outcome::Control => 7,
            Outcome::Malformed(r) => Self::SIMPLE.len() + r.index(),
        }
    }

    /// The outcome with this [`Outcome::index`].
    pub fn from_index(i: usize) -> Option<Outcome> {
        match Self::SIMPLE.get(i) {
            Some(o) => Some(*o),
            None => Reason::ALL
                .get(i - Self::SIMPLE.len())
                .map(|r| Outcome::Malformed(*r)),
        }
    }

    /// Every outcome in index order.
    pub fn all() -> impl Iterator<Item = Outcome> {
        (0..Self::COUNT).filter_map(Outcome::from_index)
    }

    /// snake_case label: `delivered`, …, `malformed` for every reason (the reason is its own label).
    pub const fn label(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Filtered => "filtered",
            Outcome::Duplicate => "duplicate",
            Outcome::SourceDenied => "source_denied",
            Outcome::NotTunnel => "not_tunnel",
            Outcome::UnknownSession => "unknown_session",
            Outcome::NoLivePort => "no_live_port",
            Outcome::Control => "control",
            Outcome::Malformed(_) => "malformed",
        }
    }

    /// The operator-facing explanation.
    pub const fn help(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered to at least one tool group",
            Outcome::Filtered => "rejected by the session's filter",
            Outcome::Duplicate => {
                "every tool group of the session already had this packet: within the dedup window, or from the copy mirrored at its sender"
            }
            Outcome::SourceDenied => "outer source address not in decap.allowed_sources",
            Outcome::NotTunnel => "not a tunnelled frame (and pass_untunneled is off)",
            Outcome::UnknownSession => "VNI of no session (and no default_session)",
            Outcome::NoLivePort => "no tool group of the session had a live port to take it",
            Outcome::Control => {
                "for the addressed port itself (ARP, neighbour discovery, ICMP, TCP or non-mirror UDP to its addresses): handed to its kernel side"
            }
            Outcome::Malformed(r) => r.help(),
        }
    }

    /// Whether the packet reached a tool.
    pub const fn is_delivered(self) -> bool {
        matches!(self, Outcome::Delivered)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Malformed(r) => write!(f, "malformed({r})"),
            other => f.write_str(other.label()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_round_trips_and_is_dense() {
        let all: Vec<Outcome> = Outcome::all().collect();
        assert_eq!(all.len(), Outcome::COUNT);
        for (i, o) in all.iter().enumerate() {
            assert_eq!(o.index(), i);
            assert_eq!(Outcome::from_index(i), Some(*o));
        }
        assert_eq!(Outcome::from_index(Outcome::COUNT), None);
    }

    #[test]
    fn labels_are_unique_snake_case_and_help_is_nonempty() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            assert!(seen.insert(r.label()), "duplicate label {}", r.label());
            assert!(
                r.label()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            );
            assert!(!r.help().is_empty() && !r.help().starts_with(' '));
        }
        for o in Outcome::all() {
            assert!(!o.help().is_empty());
        }
    }
}
