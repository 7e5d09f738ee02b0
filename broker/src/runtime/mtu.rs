//! The MTU an addressed port works with, and what DPDK is told of it.
//!
//! Most drivers take the MTU through ethdev (`rxmode.mtu`), and the port's MTU is what DPDK then
//! reports. `net_af_packet` cannot: ethdev caps its frames at 1518 bytes (the driver's
//! `max_rx_pktlen`), so any `mtu` above 1500 is refused by `rte_eth_dev_configure`, while the
//! frames it sends and receives are its kernel interface's, up to that interface's MTU (and the
//! driver's `framesz`, 2048 bytes by default). For such a port the interface's MTU
//! (`/sys/class/net/<iface>/mtu`) is the port's: used when the config sets no `mtu`, and a
//! config `mtu` above it is refused (the kernel would drop the longer frames) — set it on the
//! interface (`ip link set <iface> mtu …`). DPDK is told nothing.

use std::path::Path;

use anyhow::{Context, bail};
use config::Device;

/// The driver whose MTU is its kernel interface's.
const AF_PACKET: &str = "net_af_packet";

/// What the port's MTU is, and what to give DPDK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortMtu {
    /// For `PortSetup::mtu` (`None`: the device's default).
    pub dpdk: Option<u16>,
    /// The MTU the port works with when DPDK does not know it (`None`: ask DPDK once
    /// configured).
    pub link: Option<u16>,
}

/// The MTU of the port `name` on `device`, configured `mtu`; `sys_class_net` is
/// `/sys/class/net` (a parameter for the tests).
pub fn port_mtu(
    name: &str,
    device: &Device,
    mtu: Option<u16>,
    sys_class_net: &Path,
) -> anyhow::Result<PortMtu> {
    if device.vdev_driver() != Some(AF_PACKET) {
        return Ok(PortMtu {
            dpdk: mtu,
            link: None,
        });
    }
    let Some(iface) = device.arg_values("iface").next() else {
        // DPDK refuses an af_packet device without an interface, with its own message.
        return Ok(PortMtu {
            dpdk: None,
            link: mtu,
        });
    };
    let path = sys_class_net.join(iface).join("mtu");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{name}: reading the MTU of its interface {iface}"))?;
    let iface_mtu: u16 = text
        .trim()
        .parse()
        .with_context(|| format!("{name}: {}: not an MTU: {text:?}", path.display()))?;
    match mtu {
        Some(wanted) if wanted > iface_mtu => bail!(
            "{name}: mtu = {wanted}, but its interface {iface} has MTU {iface_mtu} and {AF_PACKET} \
             cannot change it: set it on the interface (ip link set {iface} mtu {wanted}) or lower mtu"
        ),
        Some(wanted) => Ok(PortMtu {
            dpdk: None,
            link: Some(wanted),
        }),
        None => Ok(PortMtu {
            dpdk: None,
            link: Some(iface_mtu),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(text: &str) -> Device {
        config::fixtures::config(&config::fixtures::MINIMAL.replace("net_null0", text)).ingress[0]
            .device
            .clone()
    }

    /// A `/sys/class/net` with one interface and its `mtu` file.
    fn sys_with(iface: &str, mtu: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("broker-mtu-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join(iface)).unwrap();
        std::fs::write(dir.join(iface).join("mtu"), mtu).unwrap();
        dir
    }

    #[test]
    fn other_drivers_take_the_mtu_through_dpdk() {
        let none = Path::new("/nonexistent");
        for mtu in [None, Some(9001)] {
            assert_eq!(
                port_mtu("in", &device("net_tap0,iface=x"), mtu, none).unwrap(),
                PortMtu {
                    dpdk: mtu,
                    link: None
                }
            );
        }
    }

    #[test]
    fn af_packet_takes_its_interface_mtu() {
        let sys = sys_with("eth7", "1600\n");
        let dev = device("net_af_packet0,iface=eth7");
        let mtu = |m| port_mtu("in", &dev, m, &sys);
        assert_eq!(
            mtu(None).unwrap(),
            PortMtu {
                dpdk: None,
                link: Some(1600)
            }
        );
        assert_eq!(
            mtu(Some(1500)).unwrap(),
            PortMtu {
                dpdk: None,
                link: Some(1500)
            }
        );
        let refused = mtu(Some(9001)).unwrap_err().to_string();
        assert!(
            refused.contains("interface eth7 has MTU 1600")
                && refused.contains("ip link set eth7 mtu 9001"),
            "{refused}"
        );
        let missing =
            port_mtu("in", &device("net_af_packet0,iface=gone0"), None, &sys).unwrap_err();
        assert!(
            format!("{missing:#}").contains("interface gone0"),
            "{missing:#}"
        );
        std::fs::remove_dir_all(&sys).unwrap();
    }
}
