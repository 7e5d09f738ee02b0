//! The EAL command line: the operator's `[dpdk] eal_args`, then what the broker derives from the
//! config — the lcore map and one `--vdev` / `-a` per port.
//!
//! The broker owns lcores and devices: the config refuses an `eal_args` that sets them itself
//! (`-l`, `--lcores`, `--vdev`, `-a`, …).

use config::ValidatedConfig;

use super::lcores::LcorePlan;

/// A PCI address (`0000:3b:00.0`, or `3b:00.0` with domain 0) in its full form, or `None`.
pub fn pci_address(name: &str) -> Option<String> {
    let full = match name.matches(':').count() {
        1 => format!("0000:{name}"),
        2 => name.to_owned(),
        _ => return None,
    };
    let b = full.as_bytes();
    let hex = |r: std::ops::Range<usize>| {
        b.get(r)
            .is_some_and(|s| s.iter().all(u8::is_ascii_hexdigit))
    };
    let shape = full.len() == 12 && b[4] == b':' && b[7] == b':' && b[10] == b'.';
    (shape && hex(0..4) && hex(5..7) && hex(8..10) && matches!(b[11], b'0'..=b'7'))
        .then(|| full.to_lowercase())
}

/// The ethdev name DPDK gives the port of a `device` string: the PCI address, or the vdev name
/// (the part before the first comma).
pub fn port_name(device: &str) -> String {
    let head = device.split(',').next().unwrap_or_default().trim();
    pci_address(head).unwrap_or_else(|| head.to_owned())
}

/// The EAL arguments (without a program name) for `config` and `lcores`: lcore 0 is the control
/// thread (EAL's main lcore), lcores 1..=N the workers in order.
pub fn build(config: &ValidatedConfig, lcores: &LcorePlan) -> Vec<String> {
    let mut args = config.dpdk.eal_args.clone();
    let mut map = format!("0@{}", lcores.control);
    for (i, cpu) in lcores.workers.iter().enumerate() {
        map.push_str(&format!(",{}@{}", i + 1, cpu));
    }
    args.push(format!("--lcores={map}"));
    args.push("--main-lcore=0".into());
    let devices = config
        .ingress
        .iter()
        .map(|i| &i.device)
        .chain(config.tool_ports.iter().map(|p| &p.device));
    for device in devices {
        let head = device.split(',').next().unwrap_or_default();
        if pci_address(head).is_some() {
            args.push("-a".into());
        } else {
            args.push("--vdev".into());
        }
        args.push(device.clone());
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_addresses_are_recognised_and_normalised() {
        assert_eq!(pci_address("0000:3b:00.0").as_deref(), Some("0000:3b:00.0"));
        assert_eq!(pci_address("3B:00.1").as_deref(), Some("0000:3b:00.1"));
        assert_eq!(pci_address("net_pcap0"), None);
        assert_eq!(pci_address("0000:3b:00.8"), None);
        assert_eq!(pci_address("00:3b:00.0"), None);
        assert_eq!(pci_address("zz:00.0"), None);
    }

    #[test]
    fn port_names_are_what_dpdk_calls_the_device() {
        assert_eq!(port_name("net_pcap1,tx_pcap=out/ids-1.pcap"), "net_pcap1");
        assert_eq!(port_name("0000:3b:00.0,rxq_cqe_comp_en=0"), "0000:3b:00.0");
        assert_eq!(port_name("3b:00.0"), "0000:3b:00.0");
    }

    fn lab() -> ValidatedConfig {
        config::parse(
            r#"
[broker]
name = "t"
[dpdk]
eal_args = ["--no-huge", "-m", "512"]
[[ingress]]
name = "in"
device = "net_pcap0,rx_pcap=a.pcap,rx_pcap=b.pcap"
queues = 2
[[ingress]]
name = "nic"
device = "0000:3b:00.0"
[[session]]
name = "s"
vni = 1
tools = ["g"]
[[tool_group]]
name = "g"
ports = [{ name = "g-1", device = "net_null0" }]
"#,
            None,
        )
        .expect("valid")
    }

    #[test]
    fn lcore_map_and_devices_follow_the_config() {
        let plan = LcorePlan {
            control: 0,
            workers: vec![1, 1, 0],
            worker_nodes: vec![None; 3],
            warnings: vec![],
        };
        let args = build(&lab(), &plan);
        assert_eq!(
            args,
            [
                "--no-huge",
                "-m",
                "512",
                "--lcores=0@0,1@1,2@1,3@0",
                "--main-lcore=0",
                "--vdev",
                "net_pcap0,rx_pcap=a.pcap,rx_pcap=b.pcap",
                "-a",
                "0000:3b:00.0",
                "--vdev",
                "net_null0",
            ]
        );
    }
}
