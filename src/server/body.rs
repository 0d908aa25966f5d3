//! The HTTP body of an answer: a sequence of shared byte pieces with an exact length (so
//! hyper sends `Content-Length` as for any whole body), written out in chunks of at most
//! [`CHUNK`] bytes. A 10,000-VM pool answer (11 MB) is thus never one contiguous buffer:
//! it is the VMs' cached entries, copied chunk by chunk as the socket takes them.

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;

/// Small pieces are gathered into frames of up to this size: one write per chunk, not per VM.
const CHUNK: usize = 128 * 1024;

/// Answers of at least this size count as large (see [`LargeAnswers`]).
const LARGE: u64 = 1 << 20;

/// Large answers being sent now, and how many have started so far. Their piece lists and
/// chunk buffers come and go in bursts (64 concurrent 10,000-VM listings use some 30 MB at
/// once); glibc keeps what is freed in the middle of its heaps, so once large answers have
/// stopped for [`QUIET`] the free memory is handed back to the system. Not after every
/// answer: one listing after another would each fault the pages of the previous one back in.
static LARGE_ANSWERS: AtomicUsize = AtomicUsize::new(0);
static LARGE_STARTED: AtomicUsize = AtomicUsize::new(0);

/// How long large answers must have stopped before the free heap is given back.
const QUIET: Duration = Duration::from_millis(500);

/// Wakes the thread that gives the free heap back (started with the first large answer).
static TRIM_REQUESTS: OnceLock<SyncSender<()>> = OnceLock::new();

fn large_answer_started() {
    LARGE_STARTED.fetch_add(1, Ordering::AcqRel);
    LARGE_ANSWERS.fetch_add(1, Ordering::AcqRel);
}

fn large_answer_done() {
    if LARGE_ANSWERS.fetch_sub(1, Ordering::AcqRel) == 1 {
        let requests = TRIM_REQUESTS.get_or_init(|| {
            let (tx, rx) = sync_channel::<()>(1);
            let spawned = std::thread::Builder::new()
                .name("heap-trim".into())
                .spawn(move || give_back_when_quiet(&rx));
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start the heap-trim thread");
            }
            tx
        });
        // A request already pending covers this one.
        let _ = requests.try_send(());
    }
}

/// Gives the free heap back after each burst of large answers, once none has started or
/// been in flight for [`QUIET`].
fn give_back_when_quiet(requests: &Receiver<()>) {
    while requests.recv().is_ok() {
        loop {
            let started = LARGE_STARTED.load(Ordering::Acquire);
            std::thread::sleep(QUIET);
            if LARGE_STARTED.load(Ordering::Acquire) == started
                && LARGE_ANSWERS.load(Ordering::Acquire) == 0
            {
                break;
            }
        }
        // Requests made during the wait are answered by this trim.
        while requests.try_recv().is_ok() {}
        crate::memory::give_back_free_memory();
    }
}

#[derive(Debug)]
pub struct AnswerBody {
    pieces: std::vec::IntoIter<Bytes>,
    remaining: u64,
    large: bool,
}

impl AnswerBody {
    pub fn from_pieces(pieces: Vec<Bytes>) -> AnswerBody {
        let remaining: u64 = pieces.iter().map(|p| p.len() as u64).sum();
        let large = remaining >= LARGE;
        if large {
            large_answer_started();
        }
        AnswerBody {
            pieces: pieces.into_iter(),
            remaining,
            large,
        }
    }

    pub fn whole(bytes: impl Into<Bytes>) -> AnswerBody {
        AnswerBody::from_pieces(vec![bytes.into()])
    }

    /// All of it in one buffer (for callers that want the answer as a string).
    pub fn into_bytes(mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.remaining as usize);
        for p in self.pieces.by_ref() {
            out.extend_from_slice(&p);
        }
        out
    }

    fn next_frame(&mut self) -> Option<Bytes> {
        let first = self.pieces.next()?;
        // A large piece, or the last one, goes out as it is, without a copy.
        let frame = if first.len() >= CHUNK || self.pieces.as_slice().is_empty() {
            first
        } else {
            // The pieces that fit in one chunk with the first, in a buffer of their size.
            let mut size = first.len();
            let mut count = 0;
            for next in self.pieces.as_slice() {
                if size + next.len() > CHUNK {
                    break;
                }
                size += next.len();
                count += 1;
            }
            if count == 0 {
                first
            } else {
                let mut buf = BytesMut::with_capacity(size);
                buf.extend_from_slice(&first);
                for next in self.pieces.by_ref().take(count) {
                    buf.extend_from_slice(&next);
                }
                buf.freeze()
            }
        };
        self.remaining -= frame.len() as u64;
        Some(frame)
    }
}

impl Drop for AnswerBody {
    fn drop(&mut self) {
        if self.large {
            // The pieces go first, so that their memory is free when it is given back.
            self.pieces = Vec::new().into_iter();
            large_answer_done();
        }
    }
}

impl Body for AnswerBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        loop {
            match this.next_frame() {
                None => return Poll::Ready(None),
                // Empty pieces are skipped: an empty data frame would mean nothing.
                Some(frame) if frame.is_empty() => continue,
                Some(frame) => return Poll::Ready(Some(Ok(Frame::data(frame)))),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(mut body: AnswerBody) -> Vec<Bytes> {
        let mut out = Vec::new();
        while let Some(f) = body.next_frame() {
            out.push(f);
        }
        assert_eq!(body.remaining, 0);
        out
    }

    #[test]
    fn small_pieces_are_gathered_large_ones_pass_as_they_are() {
        let small = Bytes::from(vec![b'a'; 1000]);
        let large = Bytes::from(vec![b'b'; CHUNK + 1]);
        let mut pieces = vec![small.clone(); 300];
        pieces.push(large.clone());
        pieces.push(small.clone());
        let body = AnswerBody::from_pieces(pieces.clone());
        assert_eq!(
            body.size_hint().exact(),
            Some(300 * 1000 + CHUNK as u64 + 1 + 1000)
        );
        let out = frames(body);
        assert!(out.iter().all(|f| f.len() <= CHUNK + 1));
        let joined: Vec<u8> = out.iter().flat_map(|f| f.iter().copied()).collect();
        let expected: Vec<u8> = pieces.iter().flat_map(|f| f.iter().copied()).collect();
        assert_eq!(joined, expected);
        // 300 KB of small pieces fill three chunks at most, then the large one, then the last.
        assert!(out.len() <= 5, "{} frames", out.len());
    }

    #[test]
    fn a_large_answer_is_counted_until_it_is_dropped() {
        let before = LARGE_ANSWERS.load(Ordering::Acquire);
        let body = AnswerBody::from_pieces(vec![Bytes::from(vec![b'x'; LARGE as usize])]);
        assert_eq!(LARGE_ANSWERS.load(Ordering::Acquire), before + 1);
        assert_eq!(frames(body).len(), 1);
        assert_eq!(LARGE_ANSWERS.load(Ordering::Acquire), before);
        drop(AnswerBody::whole("small"));
        assert_eq!(LARGE_ANSWERS.load(Ordering::Acquire), before);
    }

    #[test]
    fn a_whole_body_is_one_frame() {
        let out = frames(AnswerBody::whole("<x/>"));
        assert_eq!(out, vec![Bytes::from_static(b"<x/>")]);
        assert!(AnswerBody::whole("").is_end_stream());
    }
}
