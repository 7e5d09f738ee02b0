//! The EAL command line: the operator's `[dpdk] eal_args`, then what the broker derives from the
//! config — the lcore map and one `--vdev` / `-a` per port.
//!
//! The broker owns lcores and devices: the config refuses an `eal_args` that sets them itself
//! (`-l`, `--lcores`, `--vdev`, `-a`, …).

use config::{DeviceKind, Kernel, ValidatedConfig};

use super::lcores::LcorePlan;

/// The vdev of the kernel interface of the addressed port `name` (the exception path's side
/// `side`), or `None` without one: a `net_tap` or a virtio-user device whose kernel interface is
/// named after the port (the broker gives it the port's MAC and addresses once EAL is up).
pub fn kernel_vdev(side: usize, name: &str, kernel: Kernel) -> Option<String> {
    match kernel {
        Kernel::None => None,
        Kernel::Tap => Some(format!("net_tap_k{side},iface={name}")),
        Kernel::VirtioUser => Some(format!(
            "virtio_user_k{side},path=/dev/vhost-net,queues=1,queue_size={},iface={name}",
            super::exception::CONTROL_DESCRIPTORS
        )),
    }
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
        .chain(config.uplinks.iter().map(|u| &u.device))
        .chain(config.tool_ports.iter().filter_map(|p| p.device()));
    let kernels = config
        .addressed_ports()
        .enumerate()
        .filter_map(|(side, (id, addressing))| {
            kernel_vdev(side, config.addressed_port_name(id), addressing.kernel)
        });
    for device in devices {
        args.push(
            match device.kind() {
                DeviceKind::Pci(_) => "-a",
                DeviceKind::Vdev { .. } => "--vdev",
            }
            .into(),
        );
        args.push(device.as_str().to_owned());
    }
    for vdev in kernels {
        args.push("--vdev".into());
        args.push(vdev);
    }
    args
}

/// Whether DPDK's capture tools (`dpdk-dumpcap`, `dpdk-pdump`), which run as secondary
/// processes, can attach to an EAL started with `args`: only when it shares its memory and
/// configuration, that is with hugepages and neither `--no-shconf` nor `--in-memory`. `Err`
/// names the argument that keeps them out.
pub fn secondary_processes_attach(args: &[String]) -> Result<(), &'static str> {
    for arg in args {
        let name = arg.split('=').next().unwrap_or_default();
        match name {
            "--no-huge" => return Err("--no-huge"),
            "--no-shconf" => return Err("--no-shconf"),
            "--in-memory" => return Err("--in-memory"),
            _ => {}
        }
    }
    Ok(())
}

/// The `--file-prefix` of `args`, which a secondary process must be given too.
pub fn file_prefix(args: &[String]) -> Option<&str> {
    args.iter()
        .enumerate()
        .find_map(|(i, arg)| match arg.as_str() {
            "--file-prefix" => args.get(i + 1).map(String::as_str),
            other => other.strip_prefix("--file-prefix="),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn secondary_processes_attach_only_to_shared_memory() {
        assert_eq!(
            secondary_processes_attach(&strings(&["-m", "1024", "--file-prefix", "b1"])),
            Ok(())
        );
        for (args, flag) in [
            (&["--no-huge", "-m", "256"][..], "--no-huge"),
            (&["--no-shconf"][..], "--no-shconf"),
            (&["--in-memory"][..], "--in-memory"),
        ] {
            assert_eq!(secondary_processes_attach(&strings(args)), Err(flag));
        }
        assert_eq!(file_prefix(&strings(&["--file-prefix", "b1"])), Some("b1"));
        assert_eq!(file_prefix(&strings(&["--file-prefix=b2"])), Some("b2"));
        assert_eq!(file_prefix(&strings(&["--no-huge"])), None);
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
