//! The pcapng a live capture streams: a section header naming the broker, one interface per
//! port, a packet block per copy, and the capture's statistics at the end.
//!
//! # Design
//! Written with `pcap-file` (already the workspace's pcap crate), block by block into a buffer
//! the caller drains between blocks, so a streamed capture always ends on a whole block:
//! - the section header (SHB) carries `shb_userappl` (`broker <version>`) and a comment naming
//!   the broker instance and what is captured;
//! - one interface description (IDB) per port, `if_name` the port's name, `if_description` its
//!   role, Ethernet, the capture's snap length, and nanosecond timestamps (`if_tsresol` 9);
//! - an enhanced packet block (EPB) per packet, with a comment for an outcome capture (the
//!   outcome, and the reason of a malformed one);
//! - an interface statistics block (ISB) per interface when the capture ends: packets written
//!   (`isb_usrdeliv`) and packets selected but not copied (`isb_ifdrop`).
//!
//! # Limitations
//! `pcap-file` 2.0 writes an ISB's timestamp as one 64-bit integer, where pcapng wants its upper
//! 32 bits first: the section is written little-endian and the timestamp's halves are swapped
//! before it is handed over, so the bytes come out as the format says (the test reads them
//! back by hand).

use std::borrow::Cow;
use std::time::Duration;

use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::interface_statistics::{
    InterfaceStatisticsBlock, InterfaceStatisticsOption,
};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};
use pcap_file::{DataLink, Endianness};

/// `if_tsresol` 9: timestamps in nanoseconds.
const NANOSECONDS: u8 = 9;

/// An interface of the capture: a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub description: String,
}

/// A pcapng stream being written.
pub struct PcapngStream {
    writer: PcapNgWriter<Vec<u8>>,
    interfaces: u32,
}

impl std::fmt::Debug for PcapngStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapngStream")
            .field("interfaces", &self.interfaces)
            .finish_non_exhaustive()
    }
}

/// What went wrong writing a block into memory (a bad interface index: a bug of the caller).
#[derive(Debug)]
pub struct PcapngError(String);

impl std::fmt::Display for PcapngError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pcapng: {}", self.0)
    }
}

impl std::error::Error for PcapngError {}

impl PcapngStream {
    /// Starts the stream: the section header (`application`, `comment`) and an interface block
    /// per interface, Ethernet, `snaplen` bytes.
    pub fn new(
        application: &str,
        comment: &str,
        interfaces: &[Interface],
        snaplen: u32,
    ) -> Result<PcapngStream, PcapngError> {
        let section = SectionHeaderBlock {
            // See the limitations: the ISB timestamps depend on it.
            endianness: Endianness::Little,
            options: vec![
                SectionHeaderOption::UserApplication(Cow::Owned(application.to_owned())),
                SectionHeaderOption::Comment(Cow::Owned(comment.to_owned())),
            ],
            ..SectionHeaderBlock::default()
        };
        let mut writer = PcapNgWriter::with_section_header(Vec::new(), section)
            .map_err(|e| PcapngError(e.to_string()))?;
        for interface in interfaces {
            let block = InterfaceDescriptionBlock {
                linktype: DataLink::ETHERNET,
                snaplen,
                options: vec![
                    InterfaceDescriptionOption::IfName(Cow::Owned(interface.name.clone())),
                    InterfaceDescriptionOption::IfDescription(Cow::Owned(
                        interface.description.clone(),
                    )),
                    InterfaceDescriptionOption::IfTsResol(NANOSECONDS),
                ],
            };
            writer
                .write_pcapng_block(block)
                .map_err(|e| PcapngError(e.to_string()))?;
        }
        Ok(PcapngStream {
            writer,
            interfaces: interfaces.len() as u32,
        })
    }

    /// A packet of `interface`, at `time_ns` (nanoseconds since the Unix epoch), `original_len`
    /// bytes on the wire of which `data` were kept.
    pub fn packet(
        &mut self,
        interface: u32,
        time_ns: u64,
        original_len: u32,
        data: &[u8],
        comment: Option<&str>,
    ) -> Result<(), PcapngError> {
        let block = EnhancedPacketBlock {
            interface_id: interface,
            timestamp: Duration::from_nanos(time_ns),
            original_len,
            data: Cow::Borrowed(data),
            options: comment
                .map(|c| vec![EnhancedPacketOption::Comment(Cow::Borrowed(c))])
                .unwrap_or_default(),
        };
        self.writer
            .write_pcapng_block(block)
            .map(|_| ())
            .map_err(|e| PcapngError(e.to_string()))
    }

    /// The statistics of `interface` at the end of the capture, at `time_ns`: packets written
    /// and packets selected but not copied.
    pub fn statistics(
        &mut self,
        interface: u32,
        time_ns: u64,
        delivered: u64,
        dropped: u64,
    ) -> Result<(), PcapngError> {
        let block = InterfaceStatisticsBlock {
            interface_id: interface,
            timestamp: upper_half_first(time_ns),
            options: vec![
                InterfaceStatisticsOption::IsbEndTime(upper_half_first(time_ns)),
                InterfaceStatisticsOption::IsbIfDrop(dropped),
                InterfaceStatisticsOption::IsbUsrDeliv(delivered),
            ],
        };
        self.writer
            .write_pcapng_block(block)
            .map(|_| ())
            .map_err(|e| PcapngError(e.to_string()))
    }

    /// Moves what was written since the last call to the end of `out`.
    pub fn take(&mut self, out: &mut Vec<u8>) {
        out.append(self.writer.get_mut());
    }
}

/// A pcapng timestamp as `pcap-file` writes a `u64` little-endian, so that its upper 32 bits come
/// first, as the format wants (see the limitations).
fn upper_half_first(time: u64) -> u64 {
    time.rotate_left(32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn interfaces() -> Vec<Interface> {
        vec![
            Interface {
                name: "mirror0".into(),
                description: "ingress port".into(),
            },
            Interface {
                name: "ids-1".into(),
                description: "tool port of group ids".into(),
            },
        ]
    }

    /// An Ethernet/IPv4/UDP frame of `len` bytes.
    fn frame(len: usize) -> Vec<u8> {
        let mut f = vec![0u8; len];
        f[..12].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip_len = (len - 14) as u16;
        f[14] = 0x45;
        f[16..18].copy_from_slice(&ip_len.to_be_bytes());
        f[22] = 64;
        f[23] = 17;
        f[26..30].copy_from_slice(&[10, 0, 0, 1]);
        f[30..34].copy_from_slice(&[10, 0, 0, 2]);
        f[34..36].copy_from_slice(&1000u16.to_be_bytes());
        f[36..38].copy_from_slice(&2000u16.to_be_bytes());
        f[38..40].copy_from_slice(&(ip_len - 20).to_be_bytes());
        f
    }

    fn written() -> Vec<u8> {
        let mut stream =
            PcapngStream::new("broker 0.1.0", "broker lab-1: test", &interfaces(), 96).unwrap();
        let mut out = Vec::new();
        stream.take(&mut out);
        let big = frame(300);
        stream
            .packet(
                0,
                1_700_000_000_123_456_789,
                300,
                &big[..96],
                Some("filtered"),
            )
            .unwrap();
        stream
            .packet(1, 1_700_000_001_000_000_001, 60, &frame(60), None)
            .unwrap();
        stream
            .statistics(0, 1_700_000_002_000_000_000, 1, 7)
            .unwrap();
        stream.take(&mut out);
        assert!(
            stream.packet(2, 0, 60, &frame(60), None).is_err(),
            "no such interface"
        );
        out
    }

    fn tshark(path: &std::path::Path, fields: &[&str]) -> String {
        let mut command = Command::new("tshark");
        command.arg("-r").arg(path).args(["-T", "fields"]);
        for field in fields {
            command.args(["-e", field]);
        }
        let out = command
            .output()
            .expect("run tshark (apt-get install tshark)");
        assert!(
            out.status.success(),
            "tshark: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn tshark_reads_interfaces_times_lengths_and_comments() {
        let dir = std::env::temp_dir().join(format!("broker-pcapng-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("capture.pcapng");
        std::fs::write(&path, written()).unwrap();
        let text = tshark(
            &path,
            &[
                "frame.interface_name",
                "frame.interface_description",
                "frame.time_epoch",
                "frame.len",
                "frame.cap_len",
                "frame.comment",
                "udp.dstport",
            ],
        );
        let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
        assert_eq!(rows.len(), 2, "{text}");
        assert_eq!(rows[0][0], "mirror0");
        assert_eq!(rows[0][1], "ingress port");
        assert!(rows[0][2].starts_with("1700000000.123456789"), "{text}");
        assert_eq!((rows[0][3], rows[0][4]), ("300", "96"), "snap length kept");
        assert_eq!(rows[0][5], "filtered");
        assert_eq!(rows[0][6], "2000");
        assert_eq!(rows[1][0], "ids-1");
        assert!(rows[1][2].starts_with("1700000001.000000001"), "{text}");
        assert_eq!((rows[1][3], rows[1][4]), ("60", "60"));
        let info = Command::new("capinfos").arg(&path).output().unwrap();
        let info = String::from_utf8_lossy(&info.stdout);
        assert!(info.contains("broker lab-1: test"), "{info}");
        assert!(info.contains("broker 0.1.0"), "{info}");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn the_statistics_block_has_its_timestamp_upper_half_first() {
        let bytes = written();
        // Walk the blocks: type, total length.
        let mut offset = 0;
        let mut isb = None;
        while offset + 12 <= bytes.len() {
            let kind = u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap());
            let len =
                u32::from_le_bytes(bytes[offset + 4..offset + 8].try_into().unwrap()) as usize;
            assert!(len >= 12 && len % 4 == 0, "block at {offset}: length {len}");
            if kind == 5 {
                isb = Some(&bytes[offset..offset + len]);
            }
            offset += len;
        }
        assert_eq!(offset, bytes.len(), "whole blocks only");
        let isb = isb.expect("an interface statistics block");
        let word = |at: usize| u32::from_le_bytes(isb[at..at + 4].try_into().unwrap());
        let time = 1_700_000_002_000_000_000u64;
        assert_eq!(word(8), 0, "interface 0");
        assert_eq!((word(12), word(16)), ((time >> 32) as u32, time as u32));
        // Options: isb_endtime (3), then isb_ifdrop (5) = 7, isb_usrdeliv (8) = 1.
        assert_eq!(u16::from_le_bytes([isb[20], isb[21]]), 3);
        assert_eq!((word(24), word(28)), ((time >> 32) as u32, time as u32));
        assert_eq!(u16::from_le_bytes([isb[32], isb[33]]), 5);
        assert_eq!(u64::from_le_bytes(isb[36..44].try_into().unwrap()), 7);
        assert_eq!(u16::from_le_bytes([isb[44], isb[45]]), 8);
        assert_eq!(u64::from_le_bytes(isb[48..56].try_into().unwrap()), 1);
    }
}
