//! `broker capture` and `broker trace`: the CLI's side of `/capture` and `/trace`.
//!
//! # Design
//! The broker writes the pcapng and the JSON; the CLI asks for them ([`StreamReader`]), writes
//! the pcapng out a whole block at a time (a file cut by a second Ctrl-C, or a reader that
//! exits, never ends in half a block), prints the trace, and on the first Ctrl-C (or SIGTERM)
//! closes its side of the connection: the broker then ends the stream properly, the capture's
//! statistics last, which the CLI reads for its closing line. A second Ctrl-C exits at once.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use signal_hook::consts::{SIGINT, SIGTERM};

use super::trace::parse_line;
use crate::client::{Read, StreamReader, target};

/// How long the CLI waits for the broker to end a stream it asked to end.
const END_WAIT: Duration = Duration::from_secs(10);

/// Exit status of a second Ctrl-C (128 + SIGINT, as shells do).
const EXIT_SECOND_SIGNAL: i32 = 130;

/// The first SIGINT or SIGTERM sets the flag; a second one exits.
fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, EXIT_SECOND_SIGNAL, stop.clone())
            .context("installing signal handlers")?;
        signal_hook::flag::register(signal, stop.clone()).context("installing signal handlers")?;
    }
    Ok(stop)
}

/// Reads `reader` to its end, handing each piece to `take`, asking for the end when `stop` is
/// set. `take` returns `false` when it wants no more (its output is gone).
fn pump(
    reader: &mut StreamReader,
    stop: &AtomicBool,
    mut take: impl FnMut(&mut Vec<u8>) -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let mut pending = Vec::new();
    let mut stopping: Option<Instant> = None;
    loop {
        if stop.load(Ordering::Relaxed) && stopping.is_none() {
            reader.stop();
            stopping = Some(Instant::now());
        }
        let read = reader.read(&mut pending)?;
        if !take(&mut pending)? {
            return Ok(());
        }
        if read == Read::End {
            return Ok(());
        }
        if stopping.is_some_and(|s| s.elapsed() > END_WAIT) {
            anyhow::bail!("the broker did not end the stream within {END_WAIT:?}");
        }
    }
}

/// What a capture wrote, from its blocks.
#[derive(Debug, Default, PartialEq, Eq)]
struct Blocks {
    packets: u64,
    /// From the statistics blocks at the end: packets selected but not copied.
    dropped: u64,
    statistics: bool,
}

/// The length of the whole pcapng blocks at the front of `bytes`, counting what they hold.
fn whole_blocks(bytes: &[u8], blocks: &mut Blocks) -> usize {
    let word = |at: usize| -> Option<u32> {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let mut offset = 0;
    while let (Some(kind), Some(len)) = (word(offset), word(offset + 4)) {
        let len = len as usize;
        if len < 12 || offset + len > bytes.len() {
            break;
        }
        match kind {
            6 => blocks.packets += 1,
            5 => {
                blocks.statistics = true;
                // Options after interface id (4) and timestamp (8).
                let mut at = offset + 20;
                let end = offset + len - 4;
                while at + 4 <= end {
                    let code = u16::from_le_bytes([bytes[at], bytes[at + 1]]);
                    let size = usize::from(u16::from_le_bytes([bytes[at + 2], bytes[at + 3]]));
                    if code == 0 || at + 4 + size > end {
                        break;
                    }
                    let value = (size == 8).then(|| {
                        u64::from_le_bytes(bytes[at + 4..at + 12].try_into().unwrap_or([0; 8]))
                    });
                    // isb_ifdrop
                    if let (5, Some(v)) = (code, value) {
                        blocks.dropped += v;
                    }
                    at += 4 + size.div_ceil(4) * 4;
                }
            }
            _ => {}
        }
        offset += len;
    }
    offset
}

/// `broker capture`: asks the broker at `address` for `query` and writes the pcapng to `write`
/// (`-`: standard output).
pub fn capture(
    address: SocketAddr,
    query: &[(&str, String)],
    write: &Path,
) -> anyhow::Result<ExitCode> {
    let stop = stop_flag()?;
    let to_stdout = write.as_os_str() == "-";
    let mut reader = StreamReader::open(address, &target("/capture", query))?;
    let mut out: Box<dyn Write> = if to_stdout {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(
            std::fs::File::create(write)
                .with_context(|| format!("creating {}", write.display()))?,
        )
    };
    let mut blocks = Blocks::default();
    let mut reader_gone = false;
    pump(&mut reader, &stop, |pending| {
        let whole = whole_blocks(pending, &mut blocks);
        if whole > 0 {
            let written = out.write_all(&pending[..whole]).and_then(|()| out.flush());
            if let Err(e) = written {
                // A pipe whose reader exited (`| head`): not an error of the capture.
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    reader_gone = true;
                    return Ok(false);
                }
                return Err(e).with_context(|| format!("writing {}", write.display()));
            }
            pending.drain(..whole);
        }
        Ok(true)
    })?;
    let whereto = if to_stdout {
        "standard output".to_owned()
    } else {
        write.display().to_string()
    };
    if reader_gone {
        eprintln!(
            "{} packets written to {whereto} before its reader went away",
            blocks.packets
        );
    } else if blocks.dropped > 0 {
        eprintln!(
            "{} packets written to {whereto}; {} selected but not copied (the capture's buffers were full: the reader was behind)",
            blocks.packets, blocks.dropped
        );
    } else {
        eprintln!("{} packets written to {whereto}", blocks.packets);
    }
    Ok(ExitCode::SUCCESS)
}

/// `broker trace`: asks the broker at `address` for `query` and prints each traced packet, as
/// text or (`json`) as the JSON line the broker sent.
pub fn trace(
    address: SocketAddr,
    query: &[(&str, String)],
    json: bool,
) -> anyhow::Result<ExitCode> {
    let stop = stop_flag()?;
    let mut reader = StreamReader::open(address, &target("/trace", query))?;
    let mut stdout = std::io::stdout().lock();
    let mut packets = 0u64;
    pump(&mut reader, &stop, |pending| {
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end();
            if text.is_empty() {
                continue;
            }
            packets += 1;
            let printed = if json {
                writeln!(stdout, "{text}")
            } else {
                let packet = parse_line(text)
                    .context("the broker sent a trace line that is not a traced packet")?;
                writeln!(stdout, "{packet}")
            };
            if printed.and_then(|()| stdout.flush()).is_err() {
                return Ok(false);
            }
        }
        Ok(true)
    })?;
    if !json {
        eprintln!("{packets} packets traced");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::pcapng::{Interface, PcapngStream};

    #[test]
    fn whole_blocks_are_found_and_the_statistics_read() {
        let interfaces = [Interface {
            name: "p".into(),
            description: "d".into(),
        }];
        let mut stream = PcapngStream::new("a", "c", &interfaces, 64).unwrap();
        let mut bytes = Vec::new();
        for i in 0..3u64 {
            stream.packet(0, i, 60, &[0; 60], None).unwrap();
        }
        stream.statistics(0, 9, 3, 11).unwrap();
        stream.take(&mut bytes);
        let mut blocks = Blocks::default();
        assert_eq!(whole_blocks(&bytes, &mut blocks), bytes.len());
        assert_eq!(
            blocks,
            Blocks {
                packets: 3,
                dropped: 11,
                statistics: true
            }
        );
        // A cut block is left for later.
        let mut blocks = Blocks::default();
        let cut = whole_blocks(&bytes[..bytes.len() - 5], &mut blocks);
        assert!(cut < bytes.len() - 5);
        assert_eq!((blocks.packets, blocks.statistics), (3, false));
    }
}
