//! Per-request cancellation that wakes a blocked socket read at once.
//!
//! ureq's `Agent::shutdown()` stops every request of an agent; we need to stop
//! one. ureq's TCP connector hands each new socket's shutdown handle to
//! `register_shutdown`; our connector wraps that callback to keep the handle
//! with the transport, and the transport attaches it to whichever request is
//! running on the current thread every time it reads or writes (a pooled
//! connection may serve many requests). `CancelToken::cancel` then shuts the
//! socket down, which makes the blocked read return immediately.

use std::cell::RefCell;
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
        if let Some(handle) = self.socket.lock().as_ref().and_then(Weak::upgrade) {
            handle.shutdown();
        }
        let _guard = self.wake_lock.lock();
        self.wake.notify_all();
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

fn attach_current(handle: &Weak<dyn ShutdownHandle>) {
    CURRENT.with(|c| {
        if let Some(token) = c.borrow().as_ref() {
            token.attach(handle);
        }
    });
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
        let handle = captured.lock().take();
        if let Some(handle) = &handle {
            attach_current(handle);
        }
        Ok(Some(Either::B(CancellableTransport {
            inner: transport,
            handle,
        })))
    }
}

/// A TCP transport that re-attaches its socket to the current request on
/// every read and write.
pub struct CancellableTransport {
    inner: Box<dyn Transport>,
    handle: Option<Weak<dyn ShutdownHandle>>,
}

impl fmt::Debug for CancellableTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancellableTransport")
            .finish_non_exhaustive()
    }
}

impl CancellableTransport {
    fn attach(&self) {
        if let Some(handle) = &self.handle {
            attach_current(handle);
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

    #[test]
    fn sleep_after_cancel_returns_at_once() {
        let token = CancelToken::default();
        token.cancel();
        assert!(token.sleep(Duration::from_secs(30)));
    }
}
