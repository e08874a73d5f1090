//! Per-request control of the socket a request uses: cancellation that wakes
//! a blocked read at once, and the split between the first-byte and idle
//! clocks.
//!
//! Cancellation. ureq's `Agent::shutdown()` stops every request of an agent;
//! we need to stop one. ureq's TCP connector hands each new socket's shutdown
//! handle to `register_shutdown`; our connector wraps that callback to keep
//! the handle with the transport, and the transport attaches it to whichever
//! request is running on the current thread every time it reads or writes.
//! `CancelToken::cancel` then shuts the socket down, which makes the blocked
//! read return immediately. A pooled connection serves many requests in
//! turn: when another request starts using it, the transport detaches it
//! from the previous one, and a finished request lets go of it
//! (`CancelToken::release_socket`), so cancelling a request never touches a
//! socket another request is using.
//!
//! Clocks. ureq's per-read timeout caps every read, the wait for the
//! response's first byte included, so an idle timeout shorter than the
//! first-byte one would cut a slow first byte short (and be reported as the
//! wrong clock). The outermost transport (`FirstByteTransport`, above TLS)
//! lifts the per-read cap from the moment a request is written until the
//! first byte of its answer arrives: that wait is governed by the first-byte
//! (and total) clocks alone, every later read by the idle clock.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, NextTimeout, ShutdownHandle, TcpConnector,
    Transport,
};

/// The cancel state of one request, shared by its handle and its job.
#[derive(Default)]
pub struct CancelToken {
    cancelled: AtomicBool,
    socket: Mutex<Option<Weak<dyn ShutdownHandle>>>,
    /// Wakes a backoff sleep when cancelled.
    wake: Condvar,
    wake_lock: Mutex<()>,
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl CancelToken {
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Marks the request cancelled and shuts its current socket down.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        {
            // Shut down under the lock: a transport moving this socket to
            // another request detaches it under the same lock first.
            let slot = self.socket.lock();
            if let Some(handle) = slot.as_ref().and_then(Weak::upgrade) {
                handle.shutdown();
            }
        }
        let _guard = self.wake_lock.lock();
        self.wake.notify_all();
    }

    /// The request is done with its socket (which may now serve another
    /// request from the agent's pool): a later `cancel` leaves it alone.
    pub fn release_socket(&self) {
        *self.socket.lock() = None;
    }

    /// Forgets `handle` if it is this request's socket.
    fn detach(&self, handle: &Weak<dyn ShutdownHandle>) {
        let mut slot = self.socket.lock();
        if slot
            .as_ref()
            .is_some_and(|current| Weak::ptr_eq(current, handle))
        {
            *slot = None;
        }
    }

    /// Sleeps up to `duration`; returns early (true) when cancelled.
    pub fn sleep(&self, duration: Duration) -> bool {
        let mut guard = self.wake_lock.lock();
        if !self.is_cancelled() {
            self.wake.wait_for(&mut guard, duration);
        }
        self.is_cancelled()
    }

    fn attach(&self, handle: &Weak<dyn ShutdownHandle>) {
        let mut slot = self.socket.lock();
        let same = slot
            .as_ref()
            .is_some_and(|current| Weak::ptr_eq(current, handle));
        if !same {
            *slot = Some(handle.clone());
        }
        drop(slot);
        // A cancel that raced ahead of the attach must still stop this socket.
        if self.is_cancelled() {
            if let Some(handle) = handle.upgrade() {
                handle.shutdown();
            }
        }
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<CancelToken>>> = const { RefCell::new(None) };
}

thread_local! {
    /// Whether the current attempt has handed a byte of its HTTP request to
    /// the connection (set by `FirstByteTransport`, above TLS and any proxy
    /// tunnel): from then on a failure may come after the upstream read it.
    static REQUEST_WRITTEN: Cell<bool> = const { Cell::new(false) };
}

/// Starts an attempt on this thread: nothing of it is written yet.
pub fn begin_attempt() {
    REQUEST_WRITTEN.set(false);
}

/// Whether this thread's current attempt has written any of its request.
pub fn request_written() -> bool {
    REQUEST_WRITTEN.get()
}

/// Makes `token` the current thread's request until the guard drops.
pub fn enter(token: Arc<CancelToken>) -> CurrentGuard {
    CURRENT.with(|c| *c.borrow_mut() = Some(token));
    CurrentGuard(())
}

pub struct CurrentGuard(());

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| *c.borrow_mut() = None);
    }
}

fn current() -> Option<Arc<CancelToken>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// TCP connector whose transports attach their socket to the running request.
#[derive(Debug, Default)]
pub struct CancellableTcpConnector {
    tcp: TcpConnector,
}

impl<In: Transport> Connector<In> for CancellableTcpConnector {
    type Out = Either<In, CancellableTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        if let Some(chained) = chained {
            return Ok(Some(Either::A(chained)));
        }
        let captured: Arc<Mutex<Option<Weak<dyn ShutdownHandle>>>> = Arc::default();
        let agent_register = details.register_shutdown.clone();
        let keep = captured.clone();
        let ours = ConnectionDetails {
            uri: details.uri,
            addrs: details.addrs.clone(),
            config: details.config,
            request_level: details.request_level,
            resolver: details.resolver,
            now: details.now,
            timeout: details.timeout,
            current_time: details.current_time.clone(),
            run_connector: details.run_connector.clone(),
            register_shutdown: Arc::new(move |handle: Weak<dyn ShutdownHandle>| {
                *keep.lock() = Some(handle.clone());
                agent_register(handle)
            }),
        };
        let transport = match <TcpConnector as Connector<()>>::connect(&self.tcp, &ours, None)? {
            Some(Either::B(tcp)) => tcp.boxed(),
            _ => return Ok(None),
        };
        let mut transport = CancellableTransport {
            inner: transport,
            handle: captured.lock().take(),
            owner: Weak::new(),
        };
        transport.attach();
        Ok(Some(Either::B(transport)))
    }
}

/// A TCP transport that re-attaches its socket to the current request on
/// every read and write.
pub struct CancellableTransport {
    inner: Box<dyn Transport>,
    handle: Option<Weak<dyn ShutdownHandle>>,
    /// The request the socket was last attached to.
    owner: Weak<CancelToken>,
}

impl fmt::Debug for CancellableTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancellableTransport")
            .finish_non_exhaustive()
    }
}

impl CancellableTransport {
    /// Attaches the socket to the current thread's request, detaching it
    /// from the request it served before (a pooled connection moves on).
    fn attach(&mut self) {
        let Some(handle) = &self.handle else { return };
        let current = current();
        let previous = self.owner.upgrade();
        let same = match (&current, &previous) {
            (Some(current), Some(previous)) => Arc::ptr_eq(current, previous),
            (None, None) => true,
            _ => false,
        };
        if !same {
            if let Some(previous) = previous {
                previous.detach(handle);
            }
            self.owner = current.as_ref().map(Arc::downgrade).unwrap_or_default();
        }
        if let Some(token) = current {
            token.attach(handle);
        }
    }
}

impl Transport for CancellableTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.attach();
        self.inner.transmit_output(amount, timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.attach();
        self.inner.await_input(timeout)
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }
}

/// The outermost connector: wraps whatever transport the chain built (TLS
/// or plain TCP) in a `FirstByteTransport`.
#[derive(Debug, Default)]
pub struct FirstByteConnector;

impl<In: Transport> Connector<In> for FirstByteConnector {
    type Out = FirstByteTransport<In>;

    fn connect(
        &self,
        _details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        Ok(chained.map(|inner| FirstByteTransport {
            inner,
            awaiting_first_byte: false,
        }))
    }
}

/// Lifts the per-read (idle) cap while a written request awaits the first
/// byte of its answer; see the module documentation.
#[derive(Debug)]
pub struct FirstByteTransport<T> {
    inner: T,
    awaiting_first_byte: bool,
}

impl<T: Transport> Transport for FirstByteTransport<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        // A request (or more of its body) went out: its answer is awaited,
        // and from here the upstream may have read it.
        self.awaiting_first_byte = true;
        REQUEST_WRITTEN.set(true);
        self.inner.transmit_output(amount, timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        if !self.awaiting_first_byte {
            return self.inner.await_input(timeout);
        }
        // Deliberately not passed unchanged (as ureq asks of forwarding
        // transports): the first byte is the first-byte clock's business.
        let progressed = self.inner.await_input(NextTimeout {
            per_read: None,
            ..timeout
        })?;
        if progressed {
            self.awaiting_first_byte = false;
        }
        Ok(progressed)
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn sleep_wakes_on_cancel() {
        let token = Arc::new(CancelToken::default());
        let other = token.clone();
        let t = std::thread::spawn(move || {
            let start = Instant::now();
            let cancelled = other.sleep(Duration::from_secs(30));
            (cancelled, start.elapsed())
        });
        token.cancel();
        let (cancelled, elapsed) = t.join().unwrap();
        assert!(cancelled);
        assert!(elapsed < Duration::from_secs(30));
    }

    /// Records the per-read limit of each read; reads `script` in turn
    /// (true: a byte arrived).
    #[derive(Debug)]
    struct Recording {
        buffers: ureq::unversioned::transport::LazyBuffers,
        seen: Vec<Option<Duration>>,
        script: Vec<bool>,
    }

    impl Transport for Recording {
        fn buffers(&mut self) -> &mut dyn Buffers {
            &mut self.buffers
        }
        fn transmit_output(&mut self, _: usize, _: NextTimeout) -> Result<(), ureq::Error> {
            Ok(())
        }
        fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
            self.seen.push(timeout.per_read.map(|d| *d));
            Ok(self.script.remove(0))
        }
        fn is_open(&mut self) -> bool {
            true
        }
    }

    #[test]
    fn the_idle_cap_is_lifted_until_the_first_byte_of_each_answer() {
        let idle = Duration::from_millis(7);
        let timeout = NextTimeout {
            per_read: Some(idle.into()),
            ..NextTimeout::default()
        };
        let mut transport = FirstByteTransport {
            inner: Recording {
                buffers: ureq::unversioned::transport::LazyBuffers::new(8, 8),
                seen: Vec::new(),
                script: vec![false, true, true, true, true],
            },
            awaiting_first_byte: false,
        };
        transport.transmit_output(0, timeout).unwrap();
        transport.await_input(timeout).unwrap(); // nothing yet
        transport.await_input(timeout).unwrap(); // the first byte
        transport.await_input(timeout).unwrap(); // the rest: idle applies
        transport.transmit_output(0, timeout).unwrap(); // the next request
        transport.await_input(timeout).unwrap();
        transport.await_input(timeout).unwrap();
        assert_eq!(
            transport.inner.seen,
            vec![None, None, Some(idle), None, Some(idle)]
        );
    }

    #[test]
    fn a_socket_moving_to_another_request_leaves_the_previous_one() {
        #[derive(Debug)]
        struct Counted(std::sync::atomic::AtomicUsize);
        impl ShutdownHandle for Counted {
            fn shutdown(&self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let socket: Arc<Counted> = Arc::new(Counted(0.into()));
        let weak: Weak<dyn ShutdownHandle> = Arc::downgrade(&socket) as Weak<dyn ShutdownHandle>;
        let inner = Recording {
            buffers: ureq::unversioned::transport::LazyBuffers::new(8, 8),
            seen: Vec::new(),
            script: Vec::new(),
        };
        let mut transport = CancellableTransport {
            inner: Box::new(inner),
            handle: Some(weak),
            owner: Weak::new(),
        };
        let first = Arc::new(CancelToken::default());
        let second = Arc::new(CancelToken::default());
        {
            let _current = enter(first.clone());
            transport.attach();
        }
        {
            let _current = enter(second.clone());
            transport.attach();
        }
        first.cancel();
        assert_eq!(
            socket.0.load(Ordering::SeqCst),
            0,
            "the first request's cancel hit the second's socket"
        );
        second.cancel();
        assert_eq!(socket.0.load(Ordering::SeqCst), 1);

        let third = Arc::new(CancelToken::default());
        {
            let _current = enter(third.clone());
            transport.attach();
        }
        third.release_socket();
        third.cancel();
        assert_eq!(
            socket.0.load(Ordering::SeqCst),
            1,
            "a released socket was shut down"
        );
    }

    #[test]
    fn sleep_after_cancel_returns_at_once() {
        let token = CancelToken::default();
        token.cancel();
        assert!(token.sleep(Duration::from_secs(30)));
    }
}
