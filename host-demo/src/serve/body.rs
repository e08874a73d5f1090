//! Reading a request body within three bounds: its own size (whatever its
//! transfer encoding), a deadline, and a budget of body bytes shared by all
//! connections, so many large uploads at once are refused rather than
//! buffered.

use std::sync::Arc;
use std::time::Duration;

use bytes::Buf;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a request body was not read.
#[derive(Debug, PartialEq)]
pub enum BodyError {
    /// Longer than the limit.
    TooLarge,
    /// Not all there before the deadline.
    TooSlow,
    /// The bodies being read at once already hold the shared budget.
    Busy,
    /// Malformed framing, or the client went away.
    Broken,
}

/// Body bytes all connections may hold at once, one permit per byte.
#[derive(Clone)]
pub struct Budget(Arc<Semaphore>);

impl Budget {
    pub fn new(bytes: usize) -> Budget {
        Budget(Arc::new(Semaphore::new(bytes)))
    }

    /// Bytes still free.
    #[cfg(test)]
    pub fn free(&self) -> usize {
        self.0.available_permits()
    }
}

/// A body read whole, and its share of the budget, given back on drop.
pub struct ReadBody {
    pub bytes: Vec<u8>,
    _held: Option<OwnedSemaphorePermit>,
}

/// The whole body, refused as soon as it passes `limit` bytes (a declared
/// length over it before a byte is read, chunks as they come) or the budget
/// runs out.
pub async fn read_body(
    body: Incoming,
    limit: usize,
    deadline: Duration,
    budget: &Budget,
) -> Result<ReadBody, BodyError> {
    read_within(body, limit, deadline, budget).await
}

async fn read_within<B>(
    mut body: B,
    limit: usize,
    deadline: Duration,
    budget: &Budget,
) -> Result<ReadBody, BodyError>
where
    B: hyper::body::Body + Unpin,
    B::Data: Buf,
{
    let declared = body.size_hint().exact();
    if body.size_hint().lower() > limit as u64 {
        return Err(BodyError::TooLarge);
    }
    let mut read = ReadBody {
        bytes: Vec::with_capacity(declared.map_or(0, |n| n as usize)),
        _held: None,
    };
    let collect = async {
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame.map_err(|_| BodyError::Broken)?.into_data() else {
                continue; // trailers
            };
            let mut data = data;
            while data.has_remaining() {
                let piece = data.chunk();
                let len = piece.len();
                if read.bytes.len() + len > limit {
                    return Err(BodyError::TooLarge);
                }
                let permits = u32::try_from(len).map_err(|_| BodyError::TooLarge)?;
                let more = budget
                    .0
                    .clone()
                    .try_acquire_many_owned(permits)
                    .map_err(|_| BodyError::Busy)?;
                match &mut read._held {
                    Some(held) => held.merge(more),
                    None => read._held = Some(more),
                }
                read.bytes.extend_from_slice(piece);
                data.advance(len);
            }
        }
        Ok(())
    };
    match tokio::time::timeout(deadline, collect).await {
        Err(_) => Err(BodyError::TooSlow),
        Ok(Err(e)) => Err(e),
        Ok(Ok(())) => Ok(read),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::Full;
    use hyper::body::Frame;

    use crate::serve::on_test_runtime as run;

    /// A body of these frames, with no declared length (as chunked).
    struct Chunked(std::collections::VecDeque<&'static [u8]>);

    impl hyper::body::Body for Chunked {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            let next = self.0.pop_front();
            std::task::Poll::Ready(next.map(|f| Ok(Frame::data(Bytes::from_static(f)))))
        }
    }

    fn chunked(frames: Vec<&'static [u8]>) -> Chunked {
        Chunked(frames.into())
    }

    const LONG: Duration = Duration::from_secs(5);

    #[test]
    fn limits_hold_for_every_framing_and_the_budget_comes_back() {
        let budget = Budget::new(10);
        run(async {
            let read = read_within(Full::new(Bytes::from_static(b"12345")), 5, LONG, &budget)
                .await
                .unwrap();
            assert_eq!(read.bytes, b"12345");
            assert_eq!(budget.free(), 5);
            drop(read);
            assert_eq!(budget.free(), 10);

            let declared = Full::new(Bytes::from_static(b"123456"));
            assert_eq!(
                read_within(declared, 5, LONG, &budget).await.err(),
                Some(BodyError::TooLarge)
            );
            let chunks = chunked(vec![b"123", b"456"]);
            assert_eq!(
                read_within(chunks, 5, LONG, &budget).await.err(),
                Some(BodyError::TooLarge)
            );
            assert_eq!(budget.free(), 10, "a refused body gives its share back");

            let held = read_within(chunked(vec![b"1234", b"5678"]), 9, LONG, &budget)
                .await
                .unwrap();
            assert_eq!(
                read_within(chunked(vec![b"12", b"34"]), 9, LONG, &budget)
                    .await
                    .err(),
                Some(BodyError::Busy)
            );
            drop(held);
            assert_eq!(budget.free(), 10);
        });
    }
}
