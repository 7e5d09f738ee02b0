//! The CLI's side of the endpoint: `broker status` and `broker reload` ask a running broker over
//! HTTP and read its answer as the [`crate::report`] types.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::report::{ReloadOutcome, Status};
use crate::requests::REPLY_TIMEOUT;

/// How long `broker reload` waits: as long as the endpoint waits for the control loop, and the
/// HTTP round trip.
const RELOAD_TIMEOUT: Duration = REPLY_TIMEOUT.saturating_add(Duration::from_secs(5));

/// An HTTP client for a broker's endpoint, giving up after `timeout`; HTTP error statuses are
/// answers, not errors (the caller reads the body).
pub fn endpoint_agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        // The endpoint is the broker's own, usually on loopback: never through a proxy.
        .proxy(None)
        .build()
        .into()
}

fn no_answer(url: &str, address: SocketAddr) -> String {
    format!("no answer from {url} (is the broker running with [broker] metrics = \"{address}\"?)")
}

/// The status and body of the answer to a request to `url`, whatever the status.
fn read_answer(
    sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    url: &str,
    address: SocketAddr,
) -> anyhow::Result<(ureq::http::StatusCode, String)> {
    let mut response = sent.with_context(|| no_answer(url, address))?;
    let body = response
        .body_mut()
        .read_to_string()
        .with_context(|| format!("reading the answer of {url}"))?;
    Ok((response.status(), body))
}

/// Fetches `GET /status` from a running broker's endpoint: the status and the JSON as sent.
pub fn fetch_status(address: SocketAddr) -> anyhow::Result<(Status, String)> {
    let url = format!("http://{address}/status");
    let agent = endpoint_agent(Duration::from_secs(5));
    let (code, body) = read_answer(agent.get(&url).call(), &url, address)?;
    if !code.is_success() {
        bail!("{url} answered {code}: {}", body.trim());
    }
    let status = serde_json::from_str(&body)
        .with_context(|| format!("{url} did not answer a broker status"))?;
    Ok((status, body))
}

/// Asks the broker whose endpoint is `address` to reload (`POST /reload`): its outcome.
pub fn request_reload(address: SocketAddr) -> anyhow::Result<ReloadOutcome> {
    let url = format!("http://{address}/reload");
    let agent = endpoint_agent(RELOAD_TIMEOUT);
    let (code, body) = read_answer(agent.post(&url).send_empty(), &url, address)?;
    serde_json::from_str(&body).with_context(|| format!("{url} answered {code}: {}", body.trim()))
}

/// Characters a query value keeps as they are (RFC 3986 unreserved); the rest is
/// percent-encoded.
fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b':') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `path?key=value&…`, the values encoded.
pub fn target(path: &str, query: &[(&str, String)]) -> String {
    let query: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{k}={}", encode_query_value(v)))
        .collect();
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

/// How long a read of a stream waits before the caller gets control back (to look at its
/// Ctrl-C flag).
const STREAM_READ_WAIT: Duration = Duration::from_millis(200);

/// A streamed answer being read: `GET /capture` and `GET /trace` send their body chunked, for
/// as long as they last. Plain HTTP/1.1 over a socket of its own, so that the reader can close
/// its side to ask for the end ([`StreamReader::stop`]) and keep reading what the broker sends
/// to end properly.
#[derive(Debug)]
pub struct StreamReader {
    stream: std::net::TcpStream,
    /// Bytes read and not decoded yet.
    raw: Vec<u8>,
    /// Bytes of the current chunk still to come.
    chunk_left: usize,
    ended: bool,
}

/// What a read gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// Bytes appended to the caller's buffer (maybe none: the wait ran out).
    Data,
    /// The body ended (its last chunk came).
    End,
}

impl StreamReader {
    /// Sends `GET target` to the broker at `address` and reads the answer's head: a stream, or
    /// the broker's refusal as an error (its status and reason).
    pub fn open(address: SocketAddr, target: &str) -> anyhow::Result<StreamReader> {
        use std::io::Write as _;
        let url = format!("http://{address}{target}");
        let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(5))
            .with_context(|| no_answer(&url, address))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let request = format!(
            "GET {target} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: broker-cli\r\nAccept: */*\r\n\r\n"
        );
        stream.write_all(request.as_bytes())?;
        let mut raw = Vec::new();
        let head_len = loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(&raw) {
                Ok(httparse::Status::Complete(len)) => {
                    let code = response.code.unwrap_or(0);
                    let chunked = response.headers.iter().any(|h| {
                        h.name.eq_ignore_ascii_case("transfer-encoding")
                            && String::from_utf8_lossy(h.value)
                                .to_ascii_lowercase()
                                .contains("chunked")
                    });
                    if code != 200 || !chunked {
                        let mut body = raw[len..].to_vec();
                        let _ = std::io::Read::read_to_end(&mut stream, &mut body);
                        bail!(
                            "{url} answered {code}: {}",
                            String::from_utf8_lossy(&body).trim()
                        );
                    }
                    break len;
                }
                Ok(httparse::Status::Partial) if raw.len() < 64 * 1024 => {}
                Ok(httparse::Status::Partial) => bail!("{url}: the answer's head is too long"),
                Err(e) => bail!("{url}: not an HTTP answer ({e})"),
            }
            let mut buf = [0u8; 4096];
            let n = std::io::Read::read(&mut stream, &mut buf)
                .with_context(|| format!("reading the answer of {url}"))?;
            if n == 0 {
                bail!("{url}: the connection closed before an answer");
            }
            raw.extend_from_slice(&buf[..n]);
        };
        raw.drain(..head_len);
        stream.set_read_timeout(Some(STREAM_READ_WAIT))?;
        Ok(StreamReader {
            stream,
            raw,
            chunk_left: 0,
            ended: false,
        })
    }

    /// Asks the broker to end the stream (closes this side of the connection); what it sends
    /// to end it properly is still read.
    pub fn stop(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
    }

    /// Decodes what `raw` holds of the chunked body into `out`; `true` once the last chunk came.
    fn decode(&mut self, out: &mut Vec<u8>) -> anyhow::Result<bool> {
        loop {
            if self.chunk_left > 0 {
                let n = self.chunk_left.min(self.raw.len());
                out.extend_from_slice(&self.raw[..n]);
                self.raw.drain(..n);
                self.chunk_left -= n;
                if self.chunk_left > 0 {
                    return Ok(false);
                }
                // The chunk's CRLF, read with the next size line.
            }
            let text = &self.raw[..];
            // Skip the CRLF ending the previous chunk, then the size line.
            let start = if text.starts_with(b"\r\n") { 2 } else { 0 };
            let Some(end) = text[start..].windows(2).position(|w| w == b"\r\n") else {
                if self.raw.len() > 1024 {
                    bail!("a broken chunked stream");
                }
                return Ok(false);
            };
            let line = String::from_utf8_lossy(&text[start..start + end]).to_string();
            let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| anyhow::anyhow!("a broken chunked stream (size {line:?})"))?;
            self.raw.drain(..start + end + 2);
            if size == 0 {
                return Ok(true);
            }
            self.chunk_left = size;
        }
    }

    /// Reads what comes within a short wait into `out`.
    pub fn read(&mut self, out: &mut Vec<u8>) -> anyhow::Result<Read> {
        if self.ended {
            return Ok(Read::End);
        }
        if self.decode(out)? {
            self.ended = true;
            return Ok(Read::End);
        }
        let mut buf = [0u8; 64 * 1024];
        match std::io::Read::read(&mut self.stream, &mut buf) {
            Ok(0) => {
                // Closed without the last chunk: the broker stopped, or the connection broke.
                self.ended = true;
                if self.decode(out)? {
                    return Ok(Read::End);
                }
                bail!("the broker closed the stream before its end");
            }
            Ok(n) => {
                self.raw.extend_from_slice(&buf[..n]);
                if self.decode(out)? {
                    self.ended = true;
                    return Ok(Read::End);
                }
                Ok(Read::Data)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                Ok(Read::Data)
            }
            Err(e) => Err(e).context("reading the stream"),
        }
    }
}

#[cfg(test)]
mod stream_tests {
    use super::*;

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            target(
                "/capture",
                &[("port", "ids 1/a".into()), ("count", "5".into())]
            ),
            "/capture?port=ids%201%2Fa&count=5"
        );
        assert_eq!(
            target("/capture", &[("outcome", "malformed:vxlan_no_vni".into())]),
            "/capture?outcome=malformed:vxlan_no_vni"
        );
        assert_eq!(target("/trace", &[]), "/trace");
    }

    #[test]
    fn reads_a_chunked_stream_and_a_refusal() {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            for body in [
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
                "HTTP/1.1 409 Conflict\r\nContent-Length: 9\r\n\r\nbusy now\n",
            ] {
                let (mut s, _) = listener.accept().unwrap();
                let mut request = [0u8; 1024];
                let _ = s.read(&mut request).unwrap();
                s.write_all(body.as_bytes()).unwrap();
                if body.contains("chunked") {
                    std::thread::sleep(Duration::from_millis(300));
                    s.write_all(b"7;x=1\r\n, world\r\n0\r\n\r\n").unwrap();
                }
            }
        });
        let mut reader = StreamReader::open(address, "/x").unwrap();
        let mut out = Vec::new();
        let mut reads = 0;
        while reader.read(&mut out).unwrap() == Read::Data {
            reads += 1;
            assert!(reads < 100);
        }
        assert_eq!(out, b"hello, world");
        let err = StreamReader::open(address, "/x").unwrap_err().to_string();
        assert!(err.contains("409") && err.contains("busy now"), "{err}");
        server.join().unwrap();
    }
}
