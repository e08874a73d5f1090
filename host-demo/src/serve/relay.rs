//! A plugin request as seen from the async server: its events on a tokio
//! channel, and a guard that cancels it when whoever waits for it goes
//! away. hyper drops a connection's request future and response body as
//! soon as it sees the client's socket close (even while nothing is being
//! written), so dropping is how a vanished client cancels its request.

use std::pin::Pin;
use std::sync::mpsc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use host_demo::plugin::{Event, Request};
use hyper::body::Frame;
use moonshot_abi as abi;
use serde_json::json;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use super::driver::error_line;
use super::http;

/// How long the host waits for the plugin's next word. The plugin's own
/// timeouts (first byte, idle, total) end a request long before this.
const EVENT_WAIT: Duration = Duration::from_secs(3600);

/// A running plugin request: cancelled when dropped before its end.
pub struct Inflight {
    cancel: Box<dyn Fn() + Send>,
    events: UnboundedReceiver<Event>,
    finished: bool,
}

impl Inflight {
    /// Takes over a started plugin request (released when this is dropped).
    pub fn start(request: Request, plugin_events: mpsc::Receiver<Event>) -> Inflight {
        Inflight::over(plugin_events, move || request.cancel())
    }

    /// A request known by its events and how to cancel it. A blocking
    /// thread carries the events from the plugin's channel to an async one;
    /// it ends with the request.
    pub fn over(
        plugin_events: mpsc::Receiver<Event>,
        cancel: impl Fn() + Send + 'static,
    ) -> Inflight {
        let (tx, events) = unbounded_channel();
        tokio::task::spawn_blocking(move || loop {
            let event = plugin_events.recv_timeout(EVENT_WAIT).unwrap_or_else(|_| {
                let details =
                    json!({"code": "response_timeout", "message": "the plugin did not finish"});
                Event::Done(abi::MOONSHOT_ERR_TIMEOUT, details.to_string())
            });
            let last = matches!(event, Event::Done(..));
            if tx.send(event).is_err() || last {
                return;
            }
        });
        Inflight {
            cancel: Box::new(cancel),
            events,
            finished: false,
        }
    }

    /// The next event; the end is the last.
    pub async fn next(&mut self) -> Event {
        let event = self.events.recv().await.unwrap_or_else(|| {
            Event::Done(
                abi::MOONSHOT_ERR_INTERNAL,
                "the plugin's events stopped".into(),
            )
        });
        self.finished |= matches!(event, Event::Done(..));
        event
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Event> {
        let event = ready!(self.events.poll_recv(cx)).unwrap_or_else(|| {
            Event::Done(
                abi::MOONSHOT_ERR_INTERNAL,
                "the plugin's events stopped".into(),
            )
        });
        self.finished |= matches!(event, Event::Done(..));
        Poll::Ready(event)
    }
}

impl Drop for Inflight {
    fn drop(&mut self) {
        if !self.finished {
            (self.cancel)();
            eprintln!("host-demo: the client went away: its request is cancelled");
        }
    }
}

/// A streamed answer's body: one NDJSON line per plugin part, then either
/// the end or one error line. Dropping it (the client went away) cancels
/// the request.
pub struct NdjsonLines {
    first: Option<Event>,
    inflight: Inflight,
    ended: bool,
}

impl NdjsonLines {
    /// `first` is the event already taken to decide the answer's status.
    pub fn new(first: Event, inflight: Inflight) -> NdjsonLines {
        NdjsonLines {
            first: Some(first),
            inflight,
            ended: false,
        }
    }
}

impl hyper::body::Body for NdjsonLines {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        let event = match this.first.take() {
            Some(event) => event,
            None => ready!(this.inflight.poll_next(cx)),
        };
        let line = match event {
            Event::Part(part) => part,
            Event::Done(abi::MOONSHOT_OK, _) => {
                this.ended = true;
                return Poll::Ready(None);
            }
            Event::Done(_, details) => {
                this.ended = true;
                error_line(&details)
            }
        };
        Poll::Ready(Some(Ok(Frame::data(http::line(&line)))))
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }
}
