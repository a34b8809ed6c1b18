//! Where each request on a served connection begins and ends, read off the
//! bytes as they arrive.
//!
//! The served connection's deadlines ([`super::net`]) depend on what the
//! client is in the middle of: a request head must arrive within the head
//! timeout of its first byte, a request body within the body timeout of the
//! end of its head. hyper parses the bytes for the stacks, but it does not say
//! where it is in a request, so [`Framing`] follows the same HTTP/1.1 framing
//! (RFC 9112 §6: `Transfer-Encoding: chunked`, else `Content-Length`, else no
//! body) just far enough to tell the phases apart. It never judges the bytes:
//! when they are malformed hyper answers 400 or closes; `Framing` only stops
//! following ([`Phase::Lost`]) and the idle timeout still applies.

/// What the client is sending now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Between requests (or before the first).
    Between,
    /// A request head has begun and has not ended.
    Head,
    /// A request head has ended and its body has not.
    Body,
    /// The bytes did not frame as HTTP/1.1; only the idle timeout applies.
    Lost,
}

/// The longest head `Framing` keeps to read its framing headers from; hyper's
/// own limit is far below a longer one, and rejects it.
const MAX_HEAD: usize = 64 * 1024;

/// Follows the request framing of one connection's inbound bytes.
#[derive(Debug, Default)]
pub struct Framing {
    state: State,
    heads: u64,
}

#[derive(Debug, Default)]
enum State {
    #[default]
    Between,
    /// The head so far.
    Head(Vec<u8>),
    /// `Content-Length` bytes still to come.
    Fixed(u64),
    /// Inside a chunked body.
    Chunked(Chunk),
    Lost,
}

#[derive(Debug)]
enum Chunk {
    /// The chunk-size line: the size so far, and whether past it (in the
    /// extensions). A CR is skipped: the LF ends the line.
    Size { size: u64, ext: bool },
    /// Chunk data still to come.
    Data(u64),
    /// The CRLF after chunk data: how many of its bytes are still to come.
    DataEnd(u8),
    /// The trailer section: the length of the current line (CR skipped).
    Trailer { line: usize },
}

impl Framing {
    /// The phase after the bytes fed so far.
    pub fn phase(&self) -> Phase {
        match self.state {
            State::Between => Phase::Between,
            State::Head(_) => Phase::Head,
            State::Fixed(_) | State::Chunked(_) => Phase::Body,
            State::Lost => Phase::Lost,
        }
    }

    /// How many request heads have begun.
    pub fn heads(&self) -> u64 {
        self.heads
    }

    /// Follow `bytes`, the next the client sent.
    pub fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.byte(b);
        }
    }

    fn byte(&mut self, b: u8) {
        let next = match std::mem::take(&mut self.state) {
            // Empty lines before a request line are allowed (RFC 9112 §2.2).
            State::Between if b == b'\r' || b == b'\n' => State::Between,
            State::Between => {
                self.heads += 1;
                State::Head(vec![b])
            }
            State::Head(mut head) => {
                head.push(b);
                if head.ends_with(b"\r\n\r\n") || head.ends_with(b"\n\n") {
                    body_after(&head)
                } else if head.len() > MAX_HEAD {
                    State::Lost
                } else {
                    State::Head(head)
                }
            }
            State::Fixed(n) => match n - 1 {
                0 => State::Between,
                n => State::Fixed(n),
            },
            State::Chunked(c) => chunk(c, b),
            State::Lost => State::Lost,
        };
        self.state = next;
    }
}

/// Where a request whose head is `head` goes next (RFC 9112 §6.3).
fn body_after(head: &[u8]) -> State {
    let Ok(text) = std::str::from_utf8(head) else {
        return State::Lost;
    };
    let mut chunked = false;
    let mut length = None;
    for line in text.lines().skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("content-length") {
            match value.parse::<u64>() {
                Ok(n) => length = Some(n),
                Err(_) => return State::Lost,
            }
        }
    }
    match (chunked, length) {
        (true, _) => State::Chunked(Chunk::Size {
            size: 0,
            ext: false,
        }),
        (false, Some(n)) if n > 0 => State::Fixed(n),
        _ => State::Between,
    }
}

fn chunk(c: Chunk, b: u8) -> State {
    let c = match c {
        Chunk::Size { size, ext } => match b {
            b'\n' => {
                if size == 0 {
                    Chunk::Trailer { line: 0 }
                } else {
                    Chunk::Data(size)
                }
            }
            b'\r' => Chunk::Size { size, ext },
            _ if ext => Chunk::Size { size, ext },
            b';' | b' ' | b'\t' => Chunk::Size { size, ext: true },
            _ => match (b as char).to_digit(16) {
                Some(d) => match size.checked_mul(16).and_then(|s| s.checked_add(d.into())) {
                    Some(size) => Chunk::Size { size, ext: false },
                    None => return State::Lost,
                },
                None => return State::Lost,
            },
        },
        Chunk::Data(n) => match n - 1 {
            0 => Chunk::DataEnd(2),
            n => Chunk::Data(n),
        },
        Chunk::DataEnd(left) => match (left, b) {
            (2, b'\r') => Chunk::DataEnd(1),
            (2 | 1, b'\n') => Chunk::Size {
                size: 0,
                ext: false,
            },
            _ => return State::Lost,
        },
        Chunk::Trailer { line } => match b {
            b'\n' if line == 0 => return State::Between,
            b'\n' => Chunk::Trailer { line: 0 },
            b'\r' => Chunk::Trailer { line },
            _ => Chunk::Trailer { line: line + 1 },
        },
    };
    State::Chunked(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(bytes: &[u8]) -> Phase {
        let mut f = Framing::default();
        f.feed(bytes);
        f.phase()
    }

    #[test]
    fn phases_of_a_fixed_length_request() {
        let req = b"POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(after(b""), Phase::Between);
        assert_eq!(after(&req[..10]), Phase::Head);
        assert_eq!(after(&req[..req.len() - 5]), Phase::Body);
        assert_eq!(after(&req[..req.len() - 1]), Phase::Body);
        assert_eq!(after(req), Phase::Between);
    }

    #[test]
    fn a_request_without_a_body_ends_with_its_head() {
        assert_eq!(
            after(b"GET /mcp HTTP/1.1\r\nHost: x\r\n\r\n"),
            Phase::Between
        );
        assert_eq!(
            after(b"\r\nDELETE /mcp HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
            Phase::Between
        );
    }

    #[test]
    fn phases_of_a_chunked_request_with_extensions_and_trailers() {
        let head = b"POST /mcp HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".to_vec();
        let body = b"3;x=y\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n";
        let mut f = Framing::default();
        f.feed(&head);
        for (i, b) in body.iter().enumerate() {
            assert_eq!(f.phase(), Phase::Body, "before byte {i}");
            f.feed(&[*b]);
        }
        assert_eq!(f.phase(), Phase::Between);
    }

    #[test]
    fn pipelined_requests_are_followed_one_after_another() {
        let one = b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";
        let two = b"GET / HTTP/1.1\r\n";
        let mut f = Framing::default();
        f.feed(one);
        f.feed(two);
        assert_eq!(f.phase(), Phase::Head);
    }

    #[test]
    fn malformed_framing_is_lost_not_judged() {
        assert_eq!(
            after(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            Phase::Lost
        );
        assert_eq!(
            after(b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
            Phase::Lost
        );
        assert_eq!(
            after(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX"),
            Phase::Lost
        );
    }
}
