//! Property tests: range checks accept exactly their range, and no input panics the parser.

mod support;

use proptest::prelude::*;
use support::MINIMAL;

fn with_queues(queues: i64) -> String {
    MINIMAL.replace("in.pcap\"", &format!("in.pcap\"\nqueues = {queues}"))
}

fn with_vni(vni: i64) -> String {
    MINIMAL.replace("vni = 101", &format!("vni = {vni}"))
}

fn with_dst_ports(ports: &str) -> String {
    support::minimal_with(&format!(
        "[[filter]]\nname = \"f\"\n[[filter.rule]]\nnumber = 1\naction = \"accept\"\ndst_ports = {ports:?}\n"
    ))
}

proptest! {
    #[test]
    fn queues_are_accepted_exactly_in_1_to_64(queues in -10i64..100) {
        let parsed = config::parse(&with_queues(queues), None);
        prop_assert_eq!(parsed.is_ok(), (1..=64).contains(&queues));
        if let Ok(config) = parsed {
            prop_assert_eq!(i64::from(config.ingress[0].queues), queues);
        }
    }

    #[test]
    fn vnis_are_accepted_exactly_in_24_bits(vni in prop_oneof![0i64..=0xFF_FFFF, any::<i64>()]) {
        let parsed = config::parse(&with_vni(vni), None);
        prop_assert_eq!(parsed.is_ok(), (0..=0xFF_FFFF).contains(&vni));
        if let Ok(config) = parsed {
            prop_assert_eq!(config.sessions[0].vni.map(|vni| i64::from(vni.get())), Some(vni));
        }
    }

    #[test]
    fn port_ranges_round_trip(first: u16, last: u16) {
        let parsed = config::parse(&with_dst_ports(&format!("{first}-{last}")), None);
        prop_assert_eq!(parsed.is_ok(), first <= last);
        if let Ok(config) = parsed {
            prop_assert_eq!(
                config.filters[0].rules[0].dst_ports,
                Some(config::PortRange { first, last })
            );
        }
    }

    #[test]
    fn arbitrary_port_strings_never_panic(text in ".{0,16}") {
        let _ = config::parse(&with_dst_ports(&text), None);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        if let Err(error) = config::parse(&text, None) {
            prop_assert!(!error.to_string().is_empty());
        }
    }

    #[test]
    fn a_byte_replaced_in_the_lab_config_never_panics(offset in 0usize..2000, byte in 0u8..128) {
        let mut text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/lab.toml"))
            .unwrap()
            .into_bytes();
        let offset = offset % text.len();
        text[offset] = byte;
        if let Ok(text) = String::from_utf8(text) {
            let _ = config::parse(&text, None);
        }
    }
}
