//! Connection slots: at most `max` connections at once. When all are taken,
//! a newcomer gets the place of the connection that has waited longest for
//! a request head (an idle keep-alive connection, or a slow head), never
//! one in the middle of a request: slow clients cannot lock others out.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// How long a newcomer waits for an evicted connection to give its place.
const HANDOVER: Duration = Duration::from_secs(1);

pub struct Slots {
    max: usize,
    open: Mutex<HashMap<u64, Arc<Conn>>>,
    next_id: AtomicUsize,
    freed: Notify,
}

/// One connection's state, as the slots see it.
pub struct Conn {
    /// Requests in progress (from the head's arrival to the answer's end).
    active: AtomicUsize,
    /// Since when it has had no request in progress.
    idle_since: Mutex<Instant>,
    /// Told when the connection must close to make room.
    pub evicted: Notify,
}

/// A taken slot; given back on drop.
pub struct Slot {
    slots: Arc<Slots>,
    id: u64,
    pub conn: Arc<Conn>,
}

impl Slots {
    pub fn new(max: usize) -> Arc<Slots> {
        Arc::new(Slots {
            max,
            open: Mutex::new(HashMap::new()),
            next_id: AtomicUsize::new(0),
            freed: Notify::new(),
        })
    }

    fn try_take(self: &Arc<Slots>) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.len() >= self.max {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) as u64;
        let conn = Arc::new(Conn {
            active: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
            evicted: Notify::new(),
        });
        open.insert(id, conn.clone());
        Some(Slot {
            slots: self.clone(),
            id,
            conn,
        })
    }

    /// Asks the connection waiting longest for a head to close; false when
    /// every connection is in a request.
    fn evict_one(&self) -> bool {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let victim = open
            .values()
            .filter(|c| c.active.load(Ordering::Acquire) == 0)
            .min_by_key(|c| *c.idle_since.lock().unwrap_or_else(|e| e.into_inner()));
        match victim {
            Some(conn) => {
                conn.evicted.notify_one();
                true
            }
            None => false,
        }
    }

    /// A slot, at once or in place of a connection waiting for a head;
    /// None when all are busy with requests.
    pub async fn take(self: &Arc<Slots>) -> Option<Slot> {
        let deadline = tokio::time::Instant::now() + HANDOVER;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(slot) = self.try_take() {
                return Some(slot);
            }
            if !self.evict_one() {
                return None;
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return self.try_take();
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|e| e.into_inner());
        open.remove(&self.id);
        drop(open);
        self.slots.freed.notify_waiters();
    }
}

impl Conn {
    /// Whether a request is in progress.
    pub fn in_request(&self) -> bool {
        self.active.load(Ordering::Acquire) > 0
    }

    /// Marks a request in progress until the returned guard is dropped.
    pub fn request(self: &Arc<Conn>) -> InRequest {
        self.active.fetch_add(1, Ordering::AcqRel);
        InRequest(self.clone())
    }
}

/// A request in progress on a connection.
pub struct InRequest(Arc<Conn>);

impl Drop for InRequest {
    fn drop(&mut self) {
        *self.0.idle_since.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::serve::on_test_runtime as run;

    #[test]
    fn a_newcomer_takes_the_place_of_the_longest_idle_never_of_a_busy_one() {
        run(async {
            let slots = Slots::new(2);
            let busy = slots.take().await.unwrap();
            let _request = busy.conn.request();
            let idle = slots.take().await.unwrap();
            // The idle one is asked to go; when it does, the newcomer is in.
            let idle_conn = idle.conn.clone();
            let leaving = tokio::spawn(async move {
                idle_conn.evicted.notified().await;
                drop(idle);
            });
            let newcomer = slots.take().await;
            assert!(newcomer.is_some());
            leaving.await.unwrap();
            // Now one busy, one newcomer (idle): the newcomer's turn to go,
            // but it does not, so the next one is refused after the wait.
            let _request2 = newcomer.as_ref().unwrap().conn.request();
            assert!(slots.take().await.is_none(), "both are in requests");
        });
    }
}
