//! The first gRPC message of every link (its hello) held to `max_hello`
//! before any of it is buffered.
//!
//! tonic checks a message's declared length against one limit per service,
//! and a link's later frames need `max_frame` (4 MiB by default). Without
//! this layer a peer that has not authenticated yet could make the node
//! buffer a `max_frame`-sized "hello" on each of its streams before the
//! handshake saw its size. [`HelloLimit`] wraps the remote service and
//! reads the 5-byte gRPC prefix of the first message on each request body
//! (compression flag, then the length, big-endian): a declared length
//! above `max_hello` ends the stream there, with nothing buffered.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use http_body::Frame;
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::http;
use tonic::server::NamedService;
use tower::Service;

use crate::refusals::Refusals;

/// The gRPC message prefix: one flag byte and a 4-byte length.
const PREFIX: usize = 5;

/// What the `Frame` around a hello adds to it: a field tag and a length of
/// at most five bytes.
pub(crate) const FRAME_OVERHEAD: usize = 6;

/// Wraps a gRPC service so that the first message of each request body is
/// at most `max` bytes long.
#[derive(Clone)]
pub(crate) struct HelloLimit<S> {
    inner: S,
    max: usize,
    refusals: Arc<Refusals>,
}

impl<S> HelloLimit<S> {
    pub(crate) fn new(inner: S, max: usize, refusals: Arc<Refusals>) -> Self {
        Self {
            inner,
            max,
            refusals,
        }
    }
}

impl<S: NamedService> NamedService for HelloLimit<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for HelloLimit<S>
where
    S: Service<http::Request<Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let (parts, body) = request.into_parts();
        let body = Body::new(FirstMessage::new(
            body,
            self.max,
            Arc::clone(&self.refusals),
        ));
        self.inner.call(http::Request::from_parts(parts, body))
    }
}

/// A request body whose first gRPC message may declare at most `max`
/// bytes; everything passes through unchanged.
struct FirstMessage {
    inner: Body,
    max: usize,
    refusals: Arc<Refusals>,
    prefix: [u8; PREFIX],
    /// How much of the first prefix has been seen (`PREFIX` once checked).
    seen: usize,
}

impl FirstMessage {
    fn new(inner: Body, max: usize, refusals: Arc<Refusals>) -> Self {
        Self {
            inner,
            max,
            refusals,
            prefix: [0; PREFIX],
            seen: 0,
        }
    }

    /// Takes prefix bytes from `data`; the declared length once the whole
    /// prefix has been seen.
    fn observe(&mut self, data: &Bytes) -> Option<usize> {
        let mut data = data.clone();
        while self.seen < PREFIX && data.has_remaining() {
            self.prefix[self.seen] = data.get_u8();
            self.seen += 1;
        }
        (self.seen == PREFIX).then(|| {
            let [_, a, b, c, d] = self.prefix;
            u32::from_be_bytes([a, b, c, d]) as usize
        })
    }
}

impl http_body::Body for FirstMessage {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        if this.seen < PREFIX
            && let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
            && let Some(len) = this.observe(data)
            && len > this.max
        {
            this.refusals.refused(
                None,
                &format!("a hello of {len} bytes (max_hello = {})", this.max),
            );
            return Poll::Ready(Some(Err(Status::invalid_argument("hello too large"))));
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> FirstMessage {
        FirstMessage::new(Body::empty(), 1024, Arc::new(Refusals::new()))
    }

    #[test]
    fn the_prefix_is_read_across_data_frames() {
        let mut first = body();
        assert_eq!(first.observe(&Bytes::from_static(&[0, 0])), None);
        assert_eq!(first.observe(&Bytes::from_static(&[0])), None);
        assert_eq!(
            first.observe(&Bytes::from_static(&[4, 1, 9, 9, 9])),
            Some(0x0401)
        );
        // Later bytes are not a prefix.
        assert_eq!(
            first.observe(&Bytes::from_static(&[1, 2, 3, 4, 5])),
            Some(0x0401)
        );
    }
}
