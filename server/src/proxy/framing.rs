//! Message framing as the client sent it: a watcher on each client connection that reads the same
//! bytes hyper reads, finds where each request head starts and ends (skipping bodies by their
//! `Content-Length` or chunked framing), and records for each head whether its framing is one the
//! proxy accepts.
//!
//! hyper follows RFC 9112 when a request carries both `Content-Length` and `Transfer-Encoding`:
//! the chunked encoding wins and the length header is dropped before the request is handed on, so
//! the pipeline cannot see that the client sent both. A front end that framed the same bytes by
//! the length would disagree about where the request ends; the proxy therefore refuses such a
//! request (400) and closes the connection, which it can only do from the raw head. The watcher
//! is that view; it never changes the bytes.
//!
//! Verdicts are queued in order; HTTP/1.1 serves a connection's requests one after another, so
//! the n-th request the pipeline sees takes the n-th verdict. A head the watcher cannot place
//! (bytes it failed to frame) poisons the connection: every later request on it is refused.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Why the framing of a request is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// Both `Content-Length` and `Transfer-Encoding`.
    #[error("a request with both Content-Length and Transfer-Encoding is not accepted")]
    LengthAndChunked,
    /// The watcher could not frame the connection's bytes (a malformed earlier message).
    #[error("the request cannot be framed unambiguously")]
    Unframed,
}

impl FramingError {
    /// A short stable name for logs, metrics and JSON bodies.
    pub fn code(self) -> &'static str {
        match self {
            FramingError::LengthAndChunked => "content_length_with_transfer_encoding",
            FramingError::Unframed => "invalid_framing",
        }
    }
}

/// The verdicts of one connection's request heads, shared by the watcher and the pipeline.
#[derive(Debug, Default)]
pub struct Verdicts {
    inner: Mutex<VerdictQueue>,
}

#[derive(Debug, Default)]
struct VerdictQueue {
    heads: VecDeque<Option<FramingError>>,
    poisoned: bool,
}

impl Verdicts {
    /// The verdict on the next request head: `Ok` when its framing is accepted.
    pub fn next(&self) -> Result<(), FramingError> {
        let Ok(mut queue) = self.inner.lock() else {
            return Err(FramingError::Unframed);
        };
        match queue.heads.pop_front() {
            Some(None) => Ok(()),
            Some(Some(error)) => Err(error),
            None => Err(FramingError::Unframed),
        }
    }

    fn push(&self, verdict: Option<FramingError>) {
        if let Ok(mut queue) = self.inner.lock() {
            let verdict = if queue.poisoned {
                Some(FramingError::Unframed)
            } else {
                verdict
            };
            queue.heads.push_back(verdict);
        }
    }

    fn poison(&self) {
        if let Ok(mut queue) = self.inner.lock() {
            queue.poisoned = true;
        }
    }
}

/// Where the watcher is in the byte stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading a request head.
    Head,
    /// Skipping this many bytes of a body framed by `Content-Length`.
    Fixed(u64),
    /// Reading a chunk-size line.
    ChunkSize,
    /// Skipping this many bytes of chunk data.
    ChunkData(u64),
    /// Reading the line break after chunk data.
    ChunkEnd,
    /// Reading trailer lines after the last chunk.
    Trailers,
    /// Lost: every later head is refused.
    Lost,
}

/// The longest chunk-size or trailer line the watcher follows.
const MAX_LINE: usize = 8 * 1024;
/// The most header fields in a head (hyper's limit is 100).
const MAX_HEADERS: usize = 128;

/// Follows a connection's bytes; see the module documentation.
#[derive(Debug)]
struct Tracker {
    state: State,
    /// The partial head or line not yet complete.
    pending: Vec<u8>,
    max_head: usize,
    verdicts: Arc<Verdicts>,
}

impl Tracker {
    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.state {
                State::Lost => return,
                State::Head => {
                    let consumed = if self.pending.is_empty() {
                        match self.head(bytes) {
                            Some(consumed) => consumed,
                            None => {
                                self.pending.extend_from_slice(bytes);
                                bytes.len()
                            }
                        }
                    } else {
                        let before = self.pending.len();
                        self.pending.extend_from_slice(bytes);
                        let pending = std::mem::take(&mut self.pending);
                        match self.head(&pending) {
                            Some(consumed) => consumed.saturating_sub(before),
                            None => {
                                self.pending = pending;
                                bytes.len()
                            }
                        }
                    };
                    if self.pending.len() > self.max_head {
                        self.lose();
                    }
                    bytes = bytes.get(consumed..).unwrap_or_default();
                }
                State::Fixed(remaining) => {
                    let take = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len());
                    let left = remaining - take as u64;
                    self.state = if left == 0 {
                        State::Head
                    } else {
                        State::Fixed(left)
                    };
                    bytes = bytes.get(take..).unwrap_or_default();
                }
                State::ChunkData(remaining) => {
                    let take = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len());
                    let left = remaining - take as u64;
                    self.state = if left == 0 {
                        State::ChunkEnd
                    } else {
                        State::ChunkData(left)
                    };
                    bytes = bytes.get(take..).unwrap_or_default();
                }
                State::ChunkSize | State::ChunkEnd | State::Trailers => {
                    let Some(end) = bytes.iter().position(|&byte| byte == b'\n') else {
                        self.pending.extend_from_slice(bytes);
                        if self.pending.len() > MAX_LINE {
                            self.lose();
                        }
                        return;
                    };
                    let (line_part, rest) = bytes.split_at(end + 1);
                    self.pending.extend_from_slice(line_part);
                    let line = std::mem::take(&mut self.pending);
                    self.line(&line);
                    bytes = rest;
                }
            }
        }
    }

    /// Parses a complete head at the start of `bytes`: its length once complete, `None` while
    /// it is partial. Records the head's verdict and the framing of its body.
    fn head(&mut self, bytes: &[u8]) -> Option<usize> {
        // Most heads (every GET) name neither framing header: they end at their first empty
        // line and carry no body, which a scan of line starts tells without a full parse.
        if let Some(length) = plain_head(bytes) {
            self.verdicts.push(None);
            self.state = State::Head;
            return Some(length);
        }
        // Uninitialized fields: this runs for every request, and zeroing 128 fields costs more
        // than parsing a small head.
        let mut fields =
            [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut []);
        let length = match request.parse_with_uninit_headers(bytes, &mut fields) {
            Ok(httparse::Status::Complete(length)) => length,
            Ok(httparse::Status::Partial) => return None,
            Err(_) => {
                // hyper refuses the same head and closes the connection.
                self.lose();
                return Some(bytes.len());
            }
        };
        let mut content_length: Option<u64> = None;
        let mut length_seen = false;
        let mut chunked: Option<bool> = None;
        let mut lost = false;
        for field in request.headers.iter() {
            if field.name.eq_ignore_ascii_case("content-length") {
                length_seen = true;
                match std::str::from_utf8(field.value)
                    .ok()
                    .and_then(|text| text.trim().parse::<u64>().ok())
                {
                    Some(value) if content_length.is_none_or(|seen| seen == value) => {
                        content_length = Some(value);
                    }
                    _ => lost = true,
                }
            } else if field.name.eq_ignore_ascii_case("transfer-encoding") {
                let last = field
                    .value
                    .rsplit(|&byte| byte == b',')
                    .next()
                    .map(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"));
                chunked = Some(last == Some(true));
            }
        }
        let verdict = (length_seen && chunked.is_some()).then_some(FramingError::LengthAndChunked);
        self.verdicts.push(verdict);
        self.state = match (chunked, content_length) {
            (Some(true), _) => State::ChunkSize,
            (Some(false), _) => State::Lost,
            (None, Some(0) | None) => State::Head,
            (None, Some(length)) => State::Fixed(length),
        };
        if lost || self.state == State::Lost {
            self.lose();
        }
        Some(length)
    }

    /// A complete line of the chunked body (with its `\n`).
    fn line(&mut self, line: &[u8]) {
        let text = line
            .strip_suffix(b"\n")
            .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
            .unwrap_or(line);
        self.state = match self.state {
            State::ChunkEnd if text.is_empty() => State::ChunkSize,
            State::Trailers if text.is_empty() => State::Head,
            State::Trailers => State::Trailers,
            State::ChunkSize => {
                let size = text
                    .split(|&byte| byte == b';')
                    .next()
                    .map(<[u8]>::trim_ascii)
                    .filter(|digits| {
                        !digits.is_empty()
                            && digits.len() <= 16
                            && digits.iter().all(u8::is_ascii_hexdigit)
                    })
                    .and_then(|digits| std::str::from_utf8(digits).ok())
                    .and_then(|digits| u64::from_str_radix(digits, 16).ok());
                match size {
                    Some(0) => State::Trailers,
                    Some(size) => State::ChunkData(size),
                    None => State::Lost,
                }
            }
            _ => State::Lost,
        };
        if self.state == State::Lost {
            self.lose();
        }
    }

    fn lose(&mut self) {
        self.state = State::Lost;
        self.pending = Vec::new();
        self.verdicts.poison();
    }
}

/// The length of a complete head at the start of `bytes` that has no `Content-Length` or
/// `Transfer-Encoding` line (so no body), or `None` when the head is partial, names either
/// header, or starts with empty lines (which the full parser skips).
fn plain_head(bytes: &[u8]) -> Option<usize> {
    if matches!(bytes.first(), None | Some(b'\r' | b'\n')) {
        return None;
    }
    let mut start = 0;
    loop {
        let end = start + bytes.get(start..)?.iter().position(|&byte| byte == b'\n')?;
        let line = bytes.get(start..end)?;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return Some(end + 1);
        }
        let names = |name: &[u8]| {
            line.len() >= name.len()
                && line
                    .iter()
                    .zip(name)
                    .all(|(byte, expected)| byte.to_ascii_lowercase() == *expected)
        };
        if names(b"content-length") || names(b"transfer-encoding") {
            return None;
        }
        start = end + 1;
    }
}

/// A client connection watched by a [`Tracker`]; reads and writes pass through unchanged.
#[derive(Debug)]
pub struct Watched<IO> {
    inner: IO,
    tracker: Tracker,
}

impl<IO> Watched<IO> {
    /// Watches `inner`; heads longer than `max_head` bytes are not followed (hyper refuses
    /// them). The pipeline reads the verdicts from the returned [`Verdicts`].
    pub fn new(inner: IO, max_head: usize) -> (Watched<IO>, Arc<Verdicts>) {
        let verdicts = Arc::new(Verdicts::default());
        let watched = Watched {
            inner,
            tracker: Tracker {
                state: State::Head,
                pending: Vec::new(),
                max_head,
                verdicts: verdicts.clone(),
            },
        };
        (watched, verdicts)
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            if let Some(new) = buf.filled().get(before..) {
                this.tracker.feed(new);
            }
        }
        result
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes and returns the verdicts in order.
    fn verdicts(input: &[u8], step: usize) -> Vec<Result<(), FramingError>> {
        let (mut watched, verdicts) = Watched::new((), 64 * 1024);
        for piece in input.chunks(step) {
            watched.tracker.feed(piece);
        }
        let count = verdicts.inner.lock().unwrap().heads.len();
        (0..count).map(|_| verdicts.next()).collect()
    }

    #[test]
    fn heads_are_found_past_bodies_in_any_piece_size() {
        let input = b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nGET /x\
POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;ext\r\nGET\r\n0\r\nX-T: 1\r\n\r\n\
GET /c HTTP/1.1\r\nHost: h\r\n\r\n";
        for step in [1, 2, 7, 64, input.len()] {
            assert_eq!(
                verdicts(input, step),
                vec![Ok(()), Ok(()), Ok(())],
                "step {step}"
            );
        }
    }

    #[test]
    fn plain_heads_are_measured_without_a_full_parse() {
        let head = b"GET /a HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\nGET /b";
        assert_eq!(plain_head(head), Some(head.len() - 6));
        assert_eq!(plain_head(b"GET /a HTTP/1.1\nHost: h\n\n"), Some(25));
        assert_eq!(plain_head(b"GET /a HTTP/1.1\r\nHost: h\r\n"), None);
        assert_eq!(plain_head(b"\r\nGET /a HTTP/1.1\r\n\r\n"), None);
        for framed in [
            &b"POST /a HTTP/1.1\r\ncontent-LENGTH: 3\r\n\r\nabc"[..],
            &b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
        ] {
            assert_eq!(plain_head(framed), None);
        }
    }

    #[test]
    fn length_with_chunked_is_refused_in_either_order() {
        for head in [
            &b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"[..],
            &b"POST /a HTTP/1.1\r\nHost: h\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n0\r\n\r\n"[..],
        ] {
            assert_eq!(verdicts(head, 5), vec![Err(FramingError::LengthAndChunked)]);
        }
    }

    #[test]
    fn a_malformed_chunk_poisons_the_rest_of_the_connection() {
        let input = b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n\
GET /admin HTTP/1.1\r\nHost: h\r\n\r\n";
        let found = verdicts(input, 3);
        assert_eq!(found.first(), Some(&Ok(())));
        assert!(found.iter().skip(1).all(Result::is_err));
        let (_, verdicts) = Watched::new((), 1024);
        assert_eq!(verdicts.next(), Err(FramingError::Unframed), "no head seen");
    }
}
