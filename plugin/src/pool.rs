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

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};
use std::sync::Arc;

pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// Why a job was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    Busy,
    ShuttingDown,
}

struct State {
    jobs: VecDeque<Job>,
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

    pub fn submit(&self, job: Job) -> Result<(), Refused> {
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
        state.jobs.push_back(job);
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
        Ok(())
    }

    /// Threads started so far and still running.
    pub fn threads(&self) -> usize {
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
        let handles = std::mem::take(&mut *self.handles.lock());
        let me = std::thread::current().id();
        for handle in handles {
            // A host that destroys its instance from inside a callback runs
            // this on one of our threads: joining itself would fail, so that
            // one is left to finish its job and exit on its own.
            if handle.thread().id() != me {
                let _ = handle.join();
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
    WORKER_OF.with(|w| *w.borrow_mut() = Some(shared.clone()));
    let mut state = shared.state.lock();
    loop {
        if let Some(job) = state.jobs.pop_front() {
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

    #[test]
    fn refuses_beyond_threads_plus_queue() {
        let pool = Pool::new(1, 1);
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel::<()>();
        pool.submit(Box::new(move || {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
        }))
        .unwrap();
        started_rx.recv().unwrap();
        pool.submit(Box::new(|| {})).unwrap(); // queued
        assert_eq!(pool.submit(Box::new(|| {})), Err(Refused::Busy));
        release_tx.send(()).unwrap();
        pool.shutdown();
        assert_eq!(pool.submit(Box::new(|| {})), Err(Refused::ShuttingDown));
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
        assert_eq!(pool.submit(Box::new(|| {})), Err(Refused::Busy));
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
        assert_eq!(pool.submit(Box::new(|| {})), Err(Refused::Busy));
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
