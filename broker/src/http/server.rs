//! A small, bounded HTTP/1.1 server: what the endpoint and the health listener run on.
//!
//! # Design
//! One event-loop thread (`mio`) accepts connections and reads their requests, without blocking
//! on any of them: a request head must arrive within [`Limits::head_timeout`] and fit
//! [`Limits::max_head_bytes`], its body within [`Limits::body_timeout`] and
//! [`Limits::max_body_bytes`]; a connection that fails either is answered (408, 413, 431, 400)
//! or closed, and counts for nothing after. Only complete requests are handed to a fixed pool
//! of [`Limits::workers`] threads, which answer them through the [`Service`] and write the
//! answer with a write timeout; each connection carries one request (`Connection: close`).
//! At most [`Limits::max_connections`] connections are read at once; a new connection beyond
//! that takes the place of the oldest one still waiting for its request (closed and counted):
//! a client that sends its request when it connects, as Prometheus and the CLI do, is answered
//! however many silent connections someone holds open. So the threads are the event loop and the
//! pool whatever clients do, a thousand half-open connections cost at most
//! `max_connections` sockets, not a thousand threads, and `/metrics` keeps answering.
//!
//! **Streams.** A service may answer with a [`Stream`] instead of a [`Reply`] (a live capture, a
//! packet trace): the answering thread sends it chunked (`Transfer-Encoding: chunked`) part by
//! part as the body produces them, for as long as the body lasts — no request timeout applies
//! any more, the request having been read. Each write is bounded by the write timeout (a client
//! that stops reading is dropped), and between parts the thread looks at the connection: a
//! client that closed its side asks the body to end ([`StreamBody::finish`], the body then writes
//! its proper end), a client gone ends the stream at once (the body is dropped). A stream
//! counts against [`Limits::max_connections`] like a connection being read, and holds one
//! answering thread: the services that stream allow one stream of each kind at a time.
//!
//! # Limitations
//! No keep-alive, no chunked request bodies (`411` without a `Content-Length` on a body), no
//! TLS: the endpoint serves loopback or a management network and short requests.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use mio::net::{TcpListener as MioListener, TcpStream as MioStream};
use mio::{Events, Interest, Poll, Token, Waker};
use tracing::warn;

/// How a server protects itself from its clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections read at once; more are refused (`503`).
    pub max_connections: usize,
    /// Threads answering complete requests.
    pub workers: usize,
    /// From accept to the end of the request head.
    pub head_timeout: Duration,
    /// From the end of the head to the end of the body.
    pub body_timeout: Duration,
    /// Writing the answer (a client that does not read is dropped after this).
    pub write_timeout: Duration,
    /// Request line and headers.
    pub max_head_bytes: usize,
    pub max_body_bytes: usize,
}

impl Limits {
    /// The endpoint's limits: enough for Prometheus, `broker status`, `broker reload` and a few
    /// people with curl; far below what would cost the control core anything.
    pub const ENDPOINT: Limits = Limits {
        max_connections: 256,
        workers: 4,
        head_timeout: Duration::from_secs(5),
        body_timeout: Duration::from_secs(5),
        write_timeout: Duration::from_secs(10),
        max_head_bytes: 8 * 1024,
        max_body_bytes: 64 * 1024,
    };
}

/// Request methods the broker answers; anything else is kept by name (for the `405`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Other(String),
}

impl Method {
    fn parse(text: &str) -> Method {
        match text {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            other => Method::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Other(other) => other,
        }
    }
}

/// A complete request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The path, without the query.
    pub path: String,
    /// What follows `?`, if anything.
    pub query: Option<String>,
    pub body: Vec<u8>,
}

/// An answer, before it goes on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// The `Allow` header of a 405.
    pub allow: Option<String>,
}

impl Reply {
    pub fn text(code: u16, body: impl Into<String>) -> Reply {
        Reply {
            code,
            content_type: "text/plain; charset=utf-8",
            body: body.into().into_bytes(),
            allow: None,
        }
    }

    /// The bytes on the wire; a `HEAD` request gets the headers of the answer without its body.
    fn encode(&self, head_only: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.code,
            reason_phrase(self.code),
            self.content_type,
            self.body.len()
        );
        if let Some(allow) = &self.allow {
            out.push_str(&format!("Allow: {allow}\r\n"));
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        if !head_only {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }
}

fn reason_phrase(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// A streamed answer: `200`, a content type, and a body sent chunked while it lasts.
pub struct Stream {
    pub content_type: &'static str,
    pub body: Box<dyn StreamBody>,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}

/// The body of a [`Stream`], produced part by part. Dropping it ends what it streams.
pub trait StreamBody: Send {
    /// Appends the next part to `out`, waiting at most `wait` for something to send (nothing is
    /// fine: the server looks at the connection and asks again). Returns `false` once the body
    /// has ended (`out` then holds its last part).
    fn next(&mut self, out: &mut Vec<u8>, wait: Duration) -> bool;

    /// The client asked for the end: the next call of [`StreamBody::next`] writes the body's
    /// end and returns `false`.
    fn finish(&mut self);
}

/// How a service answers: at once, or streaming.
#[derive(Debug)]
pub enum Answer {
    Reply(Reply),
    Stream(Stream),
}

impl From<Reply> for Answer {
    fn from(reply: Reply) -> Answer {
        Answer::Reply(reply)
    }
}

/// What answers a server's requests.
pub trait Service: Send + Sync + 'static {
    fn answer(&self, request: &Request) -> Answer;
}

/// How long a stream's body may wait for its next part before the server looks at the
/// connection again: how soon a client that went away is noticed.
const STREAM_POLL: Duration = Duration::from_millis(100);

/// Counts of what a server refused: the `broker_http_refused_connections_total` series.
#[derive(Debug, Default)]
pub struct Refusals {
    /// Connections from an address the allowlist does not hold, closed at once.
    pub not_allowed: AtomicUsize,
    /// Connections closed unanswered to make room (`max_connections` were open), or answered
    /// `503` because every answering thread was busy.
    pub over_capacity: AtomicUsize,
    /// Requests that did not arrive in time.
    pub timed_out: AtomicUsize,
    /// Requests over a size limit or not HTTP.
    pub malformed: AtomicUsize,
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    address: SocketAddr,
    waker: Arc<Waker>,
    threads: Vec<JoinHandle<()>>,
    refusals: Arc<Refusals>,
    /// Streams being sent: they count against `max_connections`.
    #[cfg(test)]
    streams: Arc<AtomicUsize>,
}

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const FIRST_CONNECTION: usize = 2;

/// A connection whose request is being read.
struct Reading {
    stream: MioStream,
    buffer: Vec<u8>,
    deadline: Instant,
    /// The head's length and the body's, once the head is complete.
    head: Option<(usize, usize)>,
}

/// Where a connection's reading stands after new bytes.
enum Progress {
    More,
    Done(Request),
    Refuse(Reply),
}

impl Server {
    /// Serves `listener` with `service` on new threads (call it from the control thread: the
    /// threads inherit its CPU affinity).
    pub fn serve(
        listener: TcpListener,
        service: Arc<dyn Service>,
        limits: Limits,
        allow: Option<Vec<IpNet>>,
        name: &str,
    ) -> io::Result<Server> {
        let address = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let refusals = Arc::new(Refusals::default());
        let (jobs, queue) = mpsc::sync_channel::<(MioStream, Request)>(limits.workers * 4);
        let queue = Arc::new(std::sync::Mutex::new(queue));
        let streams = Arc::new(AtomicUsize::new(0));
        let mut threads = Vec::with_capacity(limits.workers + 1);
        for i in 0..limits.workers {
            let (queue, service, streams) = (queue.clone(), service.clone(), streams.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("{name}-{i}"))
                    .spawn(move || answer_jobs(&queue, service.as_ref(), limits, &streams))?,
            );
        }
        let event_loop = EventLoop {
            poll,
            listener: MioListener::from_std(listener),
            connections: Vec::new(),
            limits,
            allow,
            jobs,
            refusals: refusals.clone(),
            streams: streams.clone(),
        };
        threads.insert(
            0,
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(move || event_loop.run())?,
        );
        Ok(Server {
            address,
            waker,
            threads,
            refusals,
            #[cfg(test)]
            streams,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn refusals(&self) -> &Arc<Refusals> {
        &self.refusals
    }

    /// Streams being sent now.
    #[cfg(test)]
    pub fn streams(&self) -> usize {
        self.streams.load(Ordering::Relaxed)
    }

    /// The threads of the server (the event loop first).
    #[cfg(test)]
    pub fn threads(&self) -> impl Iterator<Item = &std::thread::Thread> {
        self.threads.iter().map(JoinHandle::thread)
    }

    /// Stops accepting, lets the pool finish what it holds, and waits for every thread.
    pub fn stop(self) {
        if let Err(e) = self.waker.wake() {
            warn!("stopping the HTTP server: {e}");
        }
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// Takes complete requests off the queue and answers them, until the queue closes.
fn answer_jobs(
    queue: &std::sync::Mutex<Receiver<(MioStream, Request)>>,
    service: &dyn Service,
    limits: Limits,
    streams: &AtomicUsize,
) {
    loop {
        // The lock is held only to take one job: a poisoned lock means another pool thread
        // panicked between two jobs, and the queue itself is intact.
        let job = queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .recv();
        let Ok((stream, request)) = job else {
            return;
        };
        let reply = match service.answer(&request) {
            Answer::Reply(reply) => reply,
            Answer::Stream(body) => {
                streams.fetch_add(1, Ordering::Relaxed);
                send_stream(std::net::TcpStream::from(stream), body, limits);
                streams.fetch_sub(1, Ordering::Relaxed);
                continue;
            }
        };
        let bytes = reply.encode(request.method == Method::Head);
        let mut stream = std::net::TcpStream::from(stream);
        // The connection was read non-blocking; the answer is written blocking, bounded.
        let written = stream
            .set_nonblocking(false)
            .and_then(|()| stream.set_write_timeout(Some(limits.write_timeout)))
            .and_then(|()| stream.write_all(&bytes));
        if written.is_ok() {
            let _ = stream.shutdown(std::net::Shutdown::Write);
        }
    }
}

/// Where a streaming client stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Peer {
    /// Still there, still listening.
    Open,
    /// It closed its side: it wants the end of the stream.
    Closed,
    /// Gone (reset, or the socket broke).
    Gone,
}

/// Looks at a streaming connection without waiting: has the client closed its side?
fn peer(stream: &mut std::net::TcpStream) -> Peer {
    if stream.set_nonblocking(true).is_err() {
        return Peer::Gone;
    }
    let mut scratch = [0u8; 512];
    let state = loop {
        match stream.peek(&mut scratch[..1]) {
            Ok(0) => break Peer::Closed,
            // The client sent something more: not for us, read and drop it.
            Ok(_) => {
                if matches!(stream.read(&mut scratch), Ok(0) | Err(_)) {
                    break Peer::Gone;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Peer::Open,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break Peer::Gone,
        }
    };
    if stream.set_nonblocking(false).is_err() {
        return Peer::Gone;
    }
    state
}

/// Sends `answer` on `stream`, chunked, until its body ends or the client goes.
fn send_stream(mut stream: std::net::TcpStream, answer: Stream, limits: Limits) {
    let Stream {
        content_type,
        mut body,
    } = answer;
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
    );
    let started = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_write_timeout(Some(limits.write_timeout)))
        .and_then(|()| stream.write_all(head.as_bytes()));
    if started.is_err() {
        return;
    }
    let mut part = Vec::with_capacity(64 * 1024);
    let mut finishing = false;
    loop {
        if !finishing {
            match peer(&mut stream) {
                Peer::Open => {}
                Peer::Closed => {
                    body.finish();
                    finishing = true;
                }
                // Dropping the body ends what it streams.
                Peer::Gone => return,
            }
        }
        part.clear();
        let more = body.next(&mut part, STREAM_POLL);
        if !part.is_empty() {
            let mut chunk = format!("{:X}\r\n", part.len()).into_bytes();
            chunk.extend_from_slice(&part);
            chunk.extend_from_slice(b"\r\n");
            if stream.write_all(&chunk).is_err() {
                return;
            }
        }
        if !more {
            if stream.write_all(b"0\r\n\r\n").is_ok() {
                let _ = stream.shutdown(std::net::Shutdown::Write);
            }
            return;
        }
    }
}

struct EventLoop {
    poll: Poll,
    listener: MioListener,
    /// By token − [`FIRST_CONNECTION`]; `None`: a free slot.
    connections: Vec<Option<Reading>>,
    limits: Limits,
    /// Peer networks that may connect; `None`: any.
    allow: Option<Vec<IpNet>>,
    jobs: SyncSender<(MioStream, Request)>,
    refusals: Arc<Refusals>,
    streams: Arc<AtomicUsize>,
}

impl EventLoop {
    fn run(mut self) {
        if let Err(e) =
            self.poll
                .registry()
                .register(&mut self.listener, LISTENER, Interest::READABLE)
        {
            warn!("HTTP server: cannot watch the listener: {e}");
            return;
        }
        let mut events = Events::with_capacity(256);
        loop {
            let timeout = self.next_deadline().map(|d| {
                d.saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1))
            });
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                warn!("HTTP server: poll failed, stopping: {e}");
                return;
            }
            for event in &events {
                match event.token() {
                    WAKER => return,
                    LISTENER => self.accept(),
                    Token(t) => self.read(t - FIRST_CONNECTION),
                }
            }
            self.expire();
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.connections.iter().flatten().map(|c| c.deadline).min()
    }

    /// Connections being read, and streams being sent.
    fn open(&self) -> usize {
        self.connections.iter().flatten().count() + self.streams.load(Ordering::Relaxed)
    }

    fn accept(&mut self) {
        loop {
            let (mut stream, peer) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of file descriptors, say: the pending connection stays in the backlog.
                    warn!("HTTP server: accept failed: {e}");
                    return;
                }
            };
            if let Some(allow) = &self.allow {
                // An IPv4 client of a dual-stack socket shows as ::ffff:a.b.c.d.
                let ip = peer.ip().to_canonical();
                if !allow.iter().any(|net| net.contains(&ip)) {
                    self.refusals.not_allowed.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            }
            if self.open() >= self.limits.max_connections {
                self.evict_oldest();
            }
            let slot = match self.connections.iter().position(Option::is_none) {
                Some(slot) => slot,
                None => {
                    self.connections.push(None);
                    self.connections.len() - 1
                }
            };
            if self
                .poll
                .registry()
                .register(
                    &mut stream,
                    Token(slot + FIRST_CONNECTION),
                    Interest::READABLE,
                )
                .is_err()
            {
                continue;
            }
            self.connections[slot] = Some(Reading {
                stream,
                buffer: Vec::new(),
                deadline: Instant::now() + self.limits.head_timeout,
                head: None,
            });
        }
    }

    /// Reads what connection `slot` has; hands a complete request to the pool.
    fn read(&mut self, slot: usize) {
        let Some(Some(reading)) = self.connections.get_mut(slot) else {
            return;
        };
        let mut chunk = [0u8; 4096];
        let progress = loop {
            match reading.stream.read(&mut chunk) {
                Ok(0) => break None,
                Ok(n) => {
                    reading.buffer.extend_from_slice(&chunk[..n]);
                    match reading.progress(&self.limits) {
                        Progress::More => continue,
                        done => break Some(done),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break None,
            }
        };
        let Some(mut reading) = self.connections[slot].take() else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut reading.stream);
        match progress {
            // The client closed or broke the connection before its request was complete.
            None => {}
            Some(Progress::Done(request)) => match self.jobs.try_send((reading.stream, request)) {
                Ok(()) => {}
                Err(TrySendError::Full((mut stream, _))) => {
                    self.refusals.over_capacity.fetch_add(1, Ordering::Relaxed);
                    let busy = Reply::text(503, "busy: every answering thread is busy\n");
                    let _ = stream.write(&busy.encode(false));
                }
                Err(TrySendError::Disconnected(_)) => {}
            },
            Some(Progress::Refuse(reply)) => {
                self.refusals.malformed.fetch_add(1, Ordering::Relaxed);
                let _ = reading.stream.write(&reply.encode(false));
            }
            Some(Progress::More) => {}
        }
    }

    /// Closes the connection that has waited longest for its request, to make room.
    fn evict_oldest(&mut self) {
        let oldest = self
            .connections
            .iter()
            .enumerate()
            .filter_map(|(slot, c)| c.as_ref().map(|c| (c.deadline, slot)))
            .min();
        if let Some((_, slot)) = oldest {
            if let Some(mut reading) = self.connections[slot].take() {
                self.refusals.over_capacity.fetch_add(1, Ordering::Relaxed);
                let _ = self.poll.registry().deregister(&mut reading.stream);
            }
        }
    }

    /// Closes the connections whose time is up, with a `408` where a request had begun.
    fn expire(&mut self) {
        let now = Instant::now();
        for slot in self.connections.iter_mut() {
            if slot.as_ref().is_some_and(|c| c.deadline <= now) {
                if let Some(mut reading) = slot.take() {
                    self.refusals.timed_out.fetch_add(1, Ordering::Relaxed);
                    let _ = self.poll.registry().deregister(&mut reading.stream);
                    if !reading.buffer.is_empty() {
                        let late = Reply::text(408, "the request did not arrive in time\n");
                        let _ = reading.stream.write(&late.encode(false));
                    }
                }
            }
        }
    }
}

impl Reading {
    /// Whether the buffer now holds a complete request, is still short of one, or breaks a
    /// limit or HTTP.
    fn progress(&mut self, limits: &Limits) -> Progress {
        if self.head.is_none() {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut parsed = httparse::Request::new(&mut headers);
            let head_len = match parsed.parse(&self.buffer) {
                Ok(httparse::Status::Complete(len)) => len,
                Ok(httparse::Status::Partial) => {
                    return if self.buffer.len() > limits.max_head_bytes {
                        Progress::Refuse(Reply::text(431, "request head too large\n"))
                    } else {
                        Progress::More
                    };
                }
                Err(httparse::Error::TooManyHeaders) => {
                    return Progress::Refuse(Reply::text(431, "too many headers\n"));
                }
                Err(e) => return Progress::Refuse(Reply::text(400, format!("{e}\n"))),
            };
            if head_len > limits.max_head_bytes {
                return Progress::Refuse(Reply::text(431, "request head too large\n"));
            }
            let header = |name: &str| {
                parsed
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .map(|h| String::from_utf8_lossy(h.value).trim().to_owned())
            };
            if header("transfer-encoding").is_some() {
                return Progress::Refuse(Reply::text(411, "send the body with a Content-Length\n"));
            }
            let body_len = match header("content-length").map(|v| v.parse::<usize>()) {
                None => 0,
                Some(Ok(len)) if len <= limits.max_body_bytes => len,
                Some(Ok(_)) => return Progress::Refuse(Reply::text(413, "body too large\n")),
                Some(Err(_)) => {
                    return Progress::Refuse(Reply::text(400, "bad Content-Length\n"));
                }
            };
            self.head = Some((head_len, body_len));
            self.deadline = Instant::now() + limits.body_timeout;
        }
        let Some((head_len, body_len)) = self.head else {
            return Progress::More;
        };
        if self.buffer.len() < head_len + body_len {
            return Progress::More;
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Request::new(&mut headers);
        if parsed.parse(&self.buffer).is_err() {
            return Progress::Refuse(Reply::text(400, "bad request\n"));
        }
        let target = parsed.path.unwrap_or("/");
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query.to_owned())),
            None => (target, None),
        };
        let path = path.split('#').next().unwrap_or_default().to_owned();
        Progress::Done(Request {
            method: Method::parse(parsed.method.unwrap_or_default()),
            path,
            query,
            body: self.buffer[head_len..head_len + body_len].to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    struct Echo;

    impl Service for Echo {
        fn answer(&self, request: &Request) -> Answer {
            if request.path == "/count" {
                return Answer::Stream(Stream {
                    content_type: "text/plain",
                    body: Box::new(Counting {
                        next: 0,
                        last: request.query.as_deref().and_then(|q| q.parse().ok()),
                        finishing: false,
                    }),
                });
            }
            Reply::text(
                200,
                format!(
                    "{} {} {:?} {}",
                    request.method.as_str(),
                    request.path,
                    request.query,
                    String::from_utf8_lossy(&request.body)
                ),
            )
            .into()
        }
    }

    /// A stream of lines `0`, `1`, …, one every 20 ms, up to `last` (or until asked to
    /// finish), then `end`.
    struct Counting {
        next: u32,
        last: Option<u32>,
        finishing: bool,
    }

    impl StreamBody for Counting {
        fn next(&mut self, out: &mut Vec<u8>, wait: Duration) -> bool {
            if self.finishing || self.last.is_some_and(|l| self.next > l) {
                out.extend_from_slice(b"end\n");
                return false;
            }
            std::thread::sleep(wait.min(Duration::from_millis(20)));
            out.extend_from_slice(format!("{}\n", self.next).as_bytes());
            self.next += 1;
            true
        }

        fn finish(&mut self) {
            self.finishing = true;
        }
    }

    fn limits() -> Limits {
        Limits {
            max_connections: 8,
            workers: 2,
            head_timeout: Duration::from_millis(300),
            body_timeout: Duration::from_millis(300),
            write_timeout: Duration::from_secs(2),
            max_head_bytes: 512,
            max_body_bytes: 16,
        }
    }

    fn server() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        Server::serve(listener, Arc::new(Echo), limits(), None, "test-http").unwrap()
    }

    fn exchange(address: SocketAddr, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.write_all(request).unwrap();
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        text
    }

    #[test]
    fn answers_whole_requests_with_their_body_and_head_without_it() {
        let server = server();
        let a = server.address();
        let text = exchange(a, b"GET /x?y=1 HTTP/1.1\r\nHost: t\r\n\r\n");
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.ends_with("GET /x Some(\"y=1\") "), "{text}");
        let text = exchange(a, b"POST /p HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc");
        assert!(text.ends_with("POST /p None abc"), "{text}");
        let text = exchange(a, b"HEAD /h HTTP/1.1\r\n\r\n");
        assert!(text.contains("Content-Length: 13\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\n"), "no body: {text}");
        server.stop();
    }

    #[test]
    fn refuses_what_breaks_a_limit() {
        let server = server();
        let a = server.address();
        let big = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(600));
        assert!(exchange(a, big.as_bytes()).starts_with("HTTP/1.1 431"));
        let text = exchange(a, b"POST /p HTTP/1.1\r\nContent-Length: 17\r\n\r\n");
        assert!(text.starts_with("HTTP/1.1 413"), "{text}");
        let text = exchange(a, b"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert!(text.starts_with("HTTP/1.1 411"), "{text}");
        let text = exchange(a, b"\x00\x01 nonsense\r\n\r\n");
        assert!(text.starts_with("HTTP/1.1 400"), "{text}");
        // Half a request, then nothing: answered 408 once the head's time is up.
        let started = Instant::now();
        let text = exchange(a, b"GET /slow HTTP/1.1\r\nHost:");
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(started.elapsed() >= Duration::from_millis(250));
        assert!(server.refusals().timed_out.load(Ordering::Relaxed) >= 1);
        server.stop();
    }

    #[test]
    fn only_allowed_peers_get_an_answer() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let elsewhere = Some(vec!["10.0.0.0/8".parse().unwrap()]);
        let server = Server::serve(listener, Arc::new(Echo), limits(), elsewhere, "t").unwrap();
        assert_eq!(exchange(server.address(), b"GET / HTTP/1.1\r\n\r\n"), "");
        assert_eq!(server.refusals().not_allowed.load(Ordering::Relaxed), 1);
        server.stop();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let loopback = Some(vec!["127.0.0.0/8".parse().unwrap()]);
        let server = Server::serve(listener, Arc::new(Echo), limits(), loopback, "t").unwrap();
        let text = exchange(server.address(), b"GET / HTTP/1.1\r\n\r\n");
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        server.stop();
    }

    /// Reads a chunked body to its end: the decoded bytes.
    fn dechunk(text: &str) -> String {
        let (_, mut rest) = text.split_once("\r\n\r\n").expect("a head");
        let mut body = String::new();
        loop {
            let (size, after) = rest.split_once("\r\n").expect("a chunk size");
            let size = usize::from_str_radix(size, 16).expect("hex size");
            if size == 0 {
                return body;
            }
            body.push_str(&after[..size]);
            rest = &after[size + 2..];
        }
    }

    #[test]
    fn streams_run_past_the_request_timeout_and_count_as_connections() {
        let server = server();
        let a = server.address();
        // 20 lines at 20 ms: longer than the 300 ms head and body timeouts.
        let started = Instant::now();
        let text = exchange(a, b"GET /count?19 HTTP/1.1\r\n\r\n");
        assert!(started.elapsed() >= Duration::from_millis(350));
        assert!(text.contains("Transfer-Encoding: chunked\r\n"), "{text}");
        let lines: Vec<String> = (0..20).map(|i| i.to_string()).collect();
        assert_eq!(dechunk(&text), format!("{}\nend\n", lines.join("\n")));
        assert_eq!(server.refusals().timed_out.load(Ordering::Relaxed), 0);
        // An endless stream: it counts against the cap while it runs.
        let mut endless = TcpStream::connect(a).unwrap();
        endless.write_all(b"GET /count HTTP/1.1\r\n\r\n").unwrap();
        let mut first = [0u8; 64];
        let _ = endless.read(&mut first).unwrap();
        assert_eq!(server.streams(), 1);
        // The client closes its side: the stream ends properly, its end written.
        endless.shutdown(std::net::Shutdown::Write).unwrap();
        endless
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut rest = String::new();
        endless.read_to_string(&mut rest).unwrap();
        assert!(rest.ends_with("end\n\r\n0\r\n\r\n"), "{rest:?}");
        let deadline = Instant::now() + Duration::from_secs(2);
        while server.streams() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(server.streams(), 0);
        // Clients that go away: the threads are free again for other requests.
        for _ in 0..limits().workers + 1 {
            let mut gone = TcpStream::connect(a).unwrap();
            gone.write_all(b"GET /count HTTP/1.1\r\n\r\n").unwrap();
            let _ = gone.read(&mut first).unwrap();
            drop(gone);
        }
        let text = exchange(a, b"GET /ok HTTP/1.1\r\n\r\n");
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        server.stop();
    }

    #[test]
    fn silent_connections_cannot_hold_the_server() {
        let server = server();
        let a = server.address();
        // More silent connections than the server reads at once: the oldest make room.
        let idle: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(a).unwrap()).collect();
        std::thread::sleep(Duration::from_millis(50));
        assert!(server.refusals().over_capacity.load(Ordering::Relaxed) >= 12);
        // A client that sends its request is answered while they are open.
        let text = exchange(a, b"GET /ok HTTP/1.1\r\n\r\n");
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        // The threads are the event loop and the pool, however many connections there are.
        assert_eq!(server.threads().count(), 1 + limits().workers);
        drop(idle);
        server.stop();
    }
}
