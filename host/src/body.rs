//! The request body as a component sees it. The host reads a small body completely *before* it
//! takes an instance from the pool, under the request deadline: a client that trickles its body
//! then holds a connection and a few bytes, not a wasm instance, and is cut off at the deadline.
//! A body declared larger than [`BUFFER_LIMIT`] is handed over unread (the component refuses it
//! by its `Content-Length`); an undeclared one longer than that is handed over as the buffered
//! part followed by the rest of the stream.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame, Incoming, SizeHint};

/// Bodies up to this size are read by the host before the component runs. The components
/// accept at most 64 KiB; ChatGPT sends less than 100,000 characters.
pub const BUFFER_LIMIT: usize = 64 * 1024;

use gpt_user_core::api::{LINGER_BYTES, LINGER_MS};

pub struct GuestBody {
    buffered: Option<Bytes>,
    rest: Option<Incoming>,
    /// Set once the client has sent the whole body.
    complete: Arc<AtomicBool>,
}

impl GuestBody {
    /// [`GuestBody::read`] before `deadline`, or the host's own answer: `400` for a body that
    /// cannot be read, `408` for one not in by then. Both runtimes (wasm, native) read a body so.
    pub async fn read_by(body: Incoming, deadline: tokio::time::Instant) -> Result<Self, hyper::Response<crate::runtime::Body>> {
        match tokio::time::timeout_at(deadline, Self::read(body)).await {
            Ok(Ok(body)) => Ok(body),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "request body unreadable");
                Err(crate::reply::bad_request())
            }
            Err(_) => Err(crate::reply::request_timeout()),
        }
    }

    /// Reads the body up to [`BUFFER_LIMIT`]. Trailers are dropped: no component reads them.
    pub async fn read(mut body: Incoming) -> Result<Self, hyper::Error> {
        if body.size_hint().lower() > BUFFER_LIMIT as u64 {
            return Ok(Self::new(Bytes::new(), Some(body)));
        }
        let mut buf = BytesMut::new();
        while !body.is_end_stream() {
            match body.frame().await {
                None => break,
                Some(frame) => {
                    if let Ok(data) = frame?.into_data() {
                        buf.extend_from_slice(&data);
                        if buf.len() > BUFFER_LIMIT {
                            return Ok(Self::new(buf.freeze(), Some(body)));
                        }
                    }
                }
            }
        }
        Ok(Self::new(buf.freeze(), None))
    }

    fn new(buffered: Bytes, rest: Option<Incoming>) -> Self {
        let rest = rest.filter(|r| !r.is_end_stream());
        let complete = Arc::new(AtomicBool::new(rest.is_none()));
        Self { buffered: Some(buffered).filter(|b| !b.is_empty()), rest, complete }
    }

    /// Whether the client has sent the whole body (readable after the body moved on).
    pub fn completion(&self) -> Arc<AtomicBool> {
        self.complete.clone()
    }
}

/// A body dropped unread (the host's own answers, a component that stopped reading) lingers:
/// [`LINGER_MS`].
impl Drop for GuestBody {
    fn drop(&mut self) {
        let Some(mut rest) = self.rest.take() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        runtime.spawn(async move {
            let discard = async {
                let mut seen = 0u64;
                while seen < LINGER_BYTES {
                    match rest.frame().await {
                        Some(Ok(frame)) => seen += frame.data_ref().map_or(0, |d| d.len() as u64),
                        None | Some(Err(_)) => break,
                    }
                }
            };
            // Past the bound the body is dropped, and hyper closes the connection.
            let _ = tokio::time::timeout(std::time::Duration::from_millis(LINGER_MS), discard).await;
        });
    }
}

impl Body for GuestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        if let Some(data) = this.buffered.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        let Some(rest) = this.rest.as_mut() else { return Poll::Ready(None) };
        let polled = Pin::new(&mut *rest).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || rest.is_end_stream() {
            this.rest = None;
            this.complete.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.buffered.is_none() && self.rest.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        let buffered = self.buffered.as_ref().map_or(0, |b| b.len() as u64);
        let mut hint = self.rest.as_ref().map(Body::size_hint).unwrap_or_else(|| SizeHint::with_exact(0));
        // Upper first: `set_lower` refuses a lower bound above the upper one.
        if let Some(upper) = hint.upper() {
            hint.set_upper(upper + buffered);
        }
        hint.set_lower(hint.lower() + buffered);
        hint
    }
}
