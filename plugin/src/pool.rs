//! The instance's own threads: bounded in number and in queued work.
//!
//! Threads start lazily (none at load or create time), at most
//! `max_threads`; at most `max_queue` jobs wait for one. Beyond that,
//! `submit` refuses at once so a host sees backpressure instead of a pile-up.
//! `shutdown` lets the workers finish every queued job, then joins them.
//!
//! A job that has only its report left to make (the host's `on_done`) calls
//! `job_finishing`: its thread then counts as about to be free, so a request
//! the host submits from that report, or right after it, is queued behind it
//! instead of being refused while the thread unwinds back to the pool.
//!
//! A queued job whose request is cancelled must not wait minutes for a free
//! thread to report it: `Ticket::expedite` takes it out of the queue and runs
//! it at once on a short-lived thread of its own (a cancelled job ends
//! without touching the network), which `shutdown` joins like the workers.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// Why a job was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    Busy,
    ShuttingDown,
}

struct State {
    /// Queued jobs with the id of their ticket.
    jobs: VecDeque<(u64, Job)>,
    next_id: u64,
    /// Threads running an expedited job; joined by `shutdown`.
    expedited: Vec<JoinHandle<()>>,
    idle: usize,
    /// Jobs a worker has taken and not finished.
    running: usize,
    /// Running jobs that called `job_finishing`.
    finishing: usize,
    threads: usize,
    shutting_down: bool,
}

struct Shared {
    state: Mutex<State>,
    work: Condvar,
}

pub struct Pool {
    shared: Arc<Shared>,
    handles: Mutex<Vec<JoinHandle<()>>>,
    max_threads: usize,
    max_queue: usize,
    /// Each worker's stack; see `with_stack_size`.
    stack_bytes: Option<usize>,
}

impl Pool {
    pub fn new(max_threads: usize, max_queue: usize) -> Pool {
        Pool {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    jobs: VecDeque::new(),
                    next_id: 0,
                    expedited: Vec::new(),
                    idle: 0,
                    running: 0,
                    finishing: 0,
                    threads: 0,
                    shutting_down: false,
                }),
                work: Condvar::new(),
            }),
            handles: Mutex::new(Vec::new()),
            max_threads: max_threads.max(1),
            max_queue,
            stack_bytes: None,
        }
    }

    /// Workers get stacks of `bytes` instead of std's 2 MiB default (see
    /// `config::DEFAULT_WORKER_STACK_KIB` for what a request needs).
    pub fn with_stack_size(mut self, bytes: usize) -> Pool {
        self.stack_bytes = Some(bytes);
        self
    }

    /// Queues `job`; the ticket can later expedite it while it waits.
    pub fn submit(&self, job: Job) -> Result<Ticket, Refused> {
        let mut state = self.shared.state.lock();
        if state.shutting_down {
            return Err(Refused::ShuttingDown);
        }
        // Room for max_threads running jobs and max_queue waiting ones. A job
        // that is only reporting no longer counts; a job queued for a thread
        // that is still starting counts as waiting, not as refused.
        let taken = state.running - state.finishing + state.jobs.len();
        if taken >= self.max_threads + self.max_queue {
            return Err(Refused::Busy);
        }
        state.next_id += 1;
        let id = state.next_id;
        state.jobs.push_back((id, job));
        if state.idle > state.jobs.len() - 1 {
            self.shared.work.notify_one();
        } else if state.threads < self.max_threads {
            state.threads += 1;
            let shared = self.shared.clone();
            let name = format!("moonshot-worker-{}", state.threads);
            let mut builder = std::thread::Builder::new().name(name);
            if let Some(bytes) = self.stack_bytes {
                builder = builder.stack_size(bytes);
            }
            match builder.spawn(move || worker(shared)) {
                Ok(handle) => self.handles.lock().push(handle),
                Err(_) => {
                    state.threads -= 1;
                    state.jobs.pop_back();
                    return Err(Refused::Busy);
                }
            }
        }
        Ok(Ticket {
            shared: Arc::downgrade(&self.shared),
            id,
        })
    }

    /// Threads started so far and still running.
    #[cfg(test)]
    fn threads(&self) -> usize {
        self.shared.state.lock().threads
    }

    /// Refuses every later `submit`; queued jobs still run. Idempotent.
    pub fn close(&self) {
        self.shared.state.lock().shutting_down = true;
        self.shared.work.notify_all();
    }

    /// Runs every queued job, then joins every thread. Idempotent.
    pub fn shutdown(&self) {
        self.close();
        join_all(std::mem::take(&mut *self.handles.lock()));
        // Once the workers are gone the queue is empty: nothing more can be
        // expedited, so the expedited threads are collected after them.
        join_all(std::mem::take(&mut self.shared.state.lock().expedited));
    }
}

/// Joins `handles`, except the calling thread's own.
fn join_all(handles: Vec<JoinHandle<()>>) {
    // Only one of our threads can be among them. `thread::current()` on a
    // host thread would give that thread a std handle (48 bytes) that a
    // main thread ending in exit() never frees: valgrind's "possibly lost".
    let me = on_pool_thread().then(|| std::thread::current().id());
    for handle in handles {
        // A host that destroys its instance from inside a callback runs
        // this on one of our threads: joining itself would fail, so that
        // one is left to finish its job and exit on its own.
        if Some(handle.thread().id()) != me {
            let _ = handle.join();
        }
    }
}

/// A submitted job's claim: lets its request's cancel run it at once.
pub struct Ticket {
    shared: Weak<Shared>,
    id: u64,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ticket({})", self.id)
    }
}

impl Ticket {
    /// If the job still waits in the queue, takes it out and runs it now on
    /// a thread of its own. Does nothing when a worker already took it (or
    /// when no thread can be started: it then runs in its turn).
    pub fn expedite(&self) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let mut state = shared.state.lock();
        let Some(at) = state.jobs.iter().position(|(id, _)| *id == self.id) else {
            return;
        };
        let Some((id, job)) = state.jobs.remove(at) else {
            return;
        };
        // Handed over through a slot, not moved into the closure, so that a
        // failed spawn leaves the job with us (it must still run, once).
        let slot = Arc::new(Mutex::new(Some(job)));
        let handed = slot.clone();
        let spawned = std::thread::Builder::new()
            .name("moonshot-expedite".into())
            .spawn(move || {
                ON_POOL_THREAD.set(true);
                if let Some(job) = handed.lock().take() {
                    let _ = catch_unwind(AssertUnwindSafe(job));
                }
            });
        match spawned {
            Ok(handle) => {
                state.expedited.retain(|h| !h.is_finished());
                // Pushed under the state lock: see `shutdown`.
                state.expedited.push(handle);
            }
            Err(_) => {
                if let Some(job) = slot.lock().take() {
                    state.jobs.insert(at, (id, job));
                }
            }
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

thread_local! {
    /// The pool of the current worker thread, if it is one.
    static WORKER_OF: RefCell<Option<Arc<Shared>>> = const { RefCell::new(None) };
    /// Whether the running job called `job_finishing`.
    static FINISHING: Cell<bool> = const { Cell::new(false) };
    /// Whether this thread is one of a pool's (worker or expedited).
    static ON_POOL_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Whether the calling thread belongs to a pool: blocking there on a request
/// (`wait`) could wait for the very thread it blocks.
pub fn on_pool_thread() -> bool {
    ON_POOL_THREAD.get()
}

/// Called by a running job when all it has left is its report; see the
/// module documentation. Once per job; a no-op outside a pool thread.
pub fn job_finishing() {
    if FINISHING.get() {
        return;
    }
    WORKER_OF.with(|w| {
        if let Some(shared) = w.borrow().as_ref() {
            shared.state.lock().finishing += 1;
            FINISHING.set(true);
        }
    });
}

fn worker(shared: Arc<Shared>) {
    ON_POOL_THREAD.set(true);
    WORKER_OF.with(|w| *w.borrow_mut() = Some(shared.clone()));
    let mut state = shared.state.lock();
    loop {
        if let Some((_, job)) = state.jobs.pop_front() {
            state.running += 1;
            drop(state);
            // Jobs catch their own panics to report them; this is the backstop
            // that keeps the thread alive whatever a job does.
            let _ = catch_unwind(AssertUnwindSafe(job));
            state = shared.state.lock();
            state.running -= 1;
            if FINISHING.replace(false) {
                state.finishing -= 1;
            }
        } else if state.shutting_down {
            state.threads -= 1;
            drop(state);
            WORKER_OF.with(|w| w.borrow_mut().take());
            return;
        } else {
            state.idle += 1;
            shared.work.wait(&mut state);
            state.idle -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn runs_jobs_and_starts_threads_lazily() {
        let pool = Pool::new(2, 4);
        assert_eq!(pool.threads(), 0);
        let (tx, rx) = mpsc::channel();
        for i in 0..3 {
            let tx = tx.clone();
            pool.submit(Box::new(move || tx.send(i).unwrap())).unwrap();
        }
        let mut got: Vec<i32> = (0..3).map(|_| rx.recv().unwrap()).collect();
        got.sort();
        assert_eq!(got, vec![0, 1, 2]);
        assert!(pool.threads() <= 2);
        pool.shutdown();
        assert_eq!(pool.threads(), 0);
    }

    /// Submits a job that holds its thread until the returned sender is
    /// used (or dropped), and returns once the job runs.
    fn occupy_a_thread(pool: &Pool) -> mpsc::Sender<()> {
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel::<()>();
        pool.submit(Box::new(move || {
            started_tx.send(()).unwrap();
            let _ = release_rx.recv();
        }))
        .unwrap();
        started_rx.recv().unwrap();
        release_tx
    }

    #[test]
    fn refuses_beyond_threads_plus_queue() {
        let pool = Pool::new(1, 1);
        let release_tx = occupy_a_thread(&pool);
        pool.submit(Box::new(|| {})).unwrap(); // queued
        assert_eq!(pool.submit(Box::new(|| {})).err(), Some(Refused::Busy));
        release_tx.send(()).unwrap();
        pool.shutdown();
        assert_eq!(
            pool.submit(Box::new(|| {})).err(),
            Some(Refused::ShuttingDown)
        );
    }

    #[test]
    fn a_panicking_job_does_not_kill_the_pool() {
        let pool = Pool::new(1, 2);
        pool.submit(Box::new(|| panic!("job panic"))).unwrap();
        let (tx, rx) = mpsc::channel();
        pool.submit(Box::new(move || tx.send(7).unwrap())).unwrap();
        assert_eq!(rx.recv().unwrap(), 7);
    }

    #[test]
    fn a_finishing_job_makes_room_for_one_more() {
        let pool = Pool::new(1, 0);
        let (finishing_tx, finishing_rx) = mpsc::channel::<()>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        pool.submit(Box::new(move || {
            job_finishing();
            job_finishing(); // counted once
            finishing_tx.send(()).unwrap();
            release_rx.recv().unwrap();
        }))
        .unwrap();
        finishing_rx.recv().unwrap();
        let (tx, rx) = mpsc::channel();
        pool.submit(Box::new(move || tx.send(1).unwrap())).unwrap();
        assert_eq!(pool.submit(Box::new(|| {})).err(), Some(Refused::Busy));
        release_tx.send(()).unwrap();
        assert_eq!(rx.recv().unwrap(), 1);
        pool.shutdown();
        assert_eq!(pool.shared.state.lock().finishing, 0);
    }

    #[test]
    fn capacity_is_threads_plus_queue_even_while_threads_start() {
        // Submitted faster than the thread can start: one will run, five wait.
        let pool = Pool::new(1, 5);
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Arc::new(parking_lot::Mutex::new(release_rx));
        let (done_tx, done_rx) = mpsc::channel();
        for i in 0..6 {
            let (release_rx, done_tx) = (release_rx.clone(), done_tx.clone());
            pool.submit(Box::new(move || {
                release_rx.lock().recv().unwrap();
                done_tx.send(i).unwrap();
            }))
            .unwrap_or_else(|e| panic!("job {i} refused: {e:?}"));
        }
        assert_eq!(pool.submit(Box::new(|| {})).err(), Some(Refused::Busy));
        for _ in 0..6 {
            release_tx.send(()).unwrap();
        }
        let order: Vec<i32> = (0..6).map(|_| done_rx.recv().unwrap()).collect();
        assert_eq!(order, vec![0, 1, 2, 3, 4, 5]);
        pool.shutdown();
    }

    #[test]
    fn job_finishing_outside_a_pool_is_a_no_op() {
        job_finishing();
        assert!(!FINISHING.get());
    }

    #[test]
    fn shutdown_from_a_worker_does_not_join_itself() {
        let pool = Arc::new(Pool::new(1, 1));
        let (tx, rx) = mpsc::channel();
        let inner = pool.clone();
        pool.submit(Box::new(move || {
            inner.shutdown();
            tx.send("returned").unwrap();
        }))
        .unwrap();
        assert_eq!(
            rx.recv_timeout(std::time::Duration::from_secs(10)),
            Ok("returned")
        );
    }

    #[test]
    fn an_expedited_job_runs_while_every_thread_is_busy() {
        let pool = Pool::new(1, 2);
        let release_tx = occupy_a_thread(&pool);
        let (tx, rx) = mpsc::channel();
        let ticket = pool
            .submit(Box::new(move || tx.send(on_pool_thread()).unwrap()))
            .unwrap();
        ticket.expedite();
        // It ran although the only worker is still blocked.
        let ran = rx.recv_timeout(std::time::Duration::from_secs(10));
        assert_eq!(ran, Ok(true));
        ticket.expedite(); // no longer queued: a no-op
        release_tx.send(()).unwrap();
        pool.shutdown();
        assert!(pool.shared.state.lock().expedited.is_empty());
        assert!(!on_pool_thread());
    }

    #[test]
    fn shutdown_drains_the_queue() {
        let pool = Pool::new(1, 8);
        let (tx, rx) = mpsc::channel();
        for i in 0..5 {
            let tx = tx.clone();
            pool.submit(Box::new(move || tx.send(i).unwrap())).unwrap();
        }
        pool.shutdown();
        assert_eq!(rx.try_iter().count(), 5);
    }
}
