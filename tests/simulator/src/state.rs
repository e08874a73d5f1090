//! State shared by the simulator handle, the accept thread and the connection threads.

use std::collections::{HashMap, VecDeque};
use std::net::TcpStream;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::kimi::Kimi;
use crate::script::Reply;
use crate::RecordedRequest;

/// Open connections: a clone of each socket (to close it on shutdown) and the thread handles.
#[derive(Default)]
pub(crate) struct Connections {
    next_id: u64,
    open: HashMap<u64, TcpStream>,
    threads: Vec<JoinHandle<()>>,
}

/// Everything the threads share.
#[derive(Default)]
pub(crate) struct Shared {
    stopping: Mutex<bool>,
    stop_signal: Condvar,
    script: Mutex<VecDeque<Reply>>,
    log: Mutex<Vec<RecordedRequest>>,
    log_signal: Condvar,
    connections: Mutex<Connections>,
    /// State of the default behaviour.
    pub(crate) kimi: Kimi,
    /// When set, every route answers 401 unless `Authorization: Bearer <key>`.
    pub(crate) required_key: Mutex<Option<String>>,
}

impl Shared {
    /// Whether shutdown has begun.
    pub(crate) fn is_stopping(&self) -> bool {
        *self.stopping.lock()
    }

    /// Marks shutdown and wakes every interruptible pause.
    pub(crate) fn begin_stop(&self) {
        *self.stopping.lock() = true;
        self.stop_signal.notify_all();
    }

    /// Waits `d` unless shutdown begins first; returns true when the full pause elapsed.
    pub(crate) fn pause(&self, d: Duration) -> bool {
        let deadline = Instant::now().checked_add(d);
        let mut stopping = self.stopping.lock();
        while !*stopping {
            match deadline {
                Some(deadline) => {
                    if self
                        .stop_signal
                        .wait_until(&mut stopping, deadline)
                        .timed_out()
                    {
                        break;
                    }
                }
                None => self.stop_signal.wait(&mut stopping),
            }
        }
        !*stopping
    }

    /// Appends a scripted reply.
    pub(crate) fn push(&self, reply: Reply) {
        self.script.lock().push_back(reply);
    }

    /// Takes the oldest scripted reply, if any.
    pub(crate) fn pop(&self) -> Option<Reply> {
        self.script.lock().pop_front()
    }

    /// Records a request and wakes waiters.
    pub(crate) fn record(&self, request: RecordedRequest) {
        self.log.lock().push(request);
        self.log_signal.notify_all();
    }

    /// A copy of the request log.
    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.log.lock().clone()
    }

    /// Blocks until the log holds `n` requests or `timeout` passes.
    pub(crate) fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut log = self.log.lock();
        while log.len() < n {
            match deadline {
                Some(deadline) => {
                    if self.log_signal.wait_until(&mut log, deadline).timed_out() {
                        return log.len() >= n;
                    }
                }
                None => self.log_signal.wait(&mut log),
            }
        }
        true
    }

    /// Number of connections currently open.
    pub(crate) fn open_connections(&self) -> usize {
        self.connections.lock().open.len()
    }

    /// Registers an accepted socket (keeping `closer`, a clone of it) and returns its id.
    /// Also drops the handles of finished connection threads.
    pub(crate) fn register(&self, closer: TcpStream) -> u64 {
        let mut conns = self.connections.lock();
        conns.threads.retain(|t| !t.is_finished());
        conns.next_id += 1;
        let id = conns.next_id;
        conns.open.insert(id, closer);
        id
    }

    /// Keeps a connection thread's handle so shutdown can join it.
    pub(crate) fn add_thread(&self, thread: JoinHandle<()>) {
        self.connections.lock().threads.push(thread);
    }

    /// Forgets a finished connection.
    pub(crate) fn unregister(&self, id: u64) {
        self.connections.lock().open.remove(&id);
    }

    /// Closes every open socket and joins every connection thread.
    pub(crate) fn close_all(&self) {
        let threads = {
            let mut conns = self.connections.lock();
            for stream in conns.open.values() {
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
            std::mem::take(&mut conns.threads)
        };
        for thread in threads {
            let _ = thread.join();
        }
    }
}
