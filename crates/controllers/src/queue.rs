//! A work queue with client-go's guarantees, which level-triggered
//! reconcilers rely on:
//!
//! - a key waits in the queue at most once, however often it is added;
//! - a key is never handed to two workers at once;
//! - a key added while a worker has it is queued again when the worker is
//!   done, so no change is missed;
//! - a key that failed comes back after an exponential backoff, reset by
//!   [`WorkQueue::forget`].

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

/// First retry delay after a failure; doubled on each further failure.
const BACKOFF_BASE: Duration = Duration::from_millis(50);
/// Longest retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(60);

pub struct WorkQueue<K> {
    inner: Mutex<Inner<K>>,
    wake: Notify,
}

struct Inner<K> {
    ready: VecDeque<K>,
    /// Keys waiting in `ready` or to be queued again when done.
    dirty: HashSet<K>,
    processing: HashSet<K>,
    delayed: BinaryHeap<Delayed<K>>,
    failures: HashMap<K, u32>,
    seq: u64,
}

struct Delayed<K> {
    at: Instant,
    seq: u64,
    key: K,
}

impl<K> PartialEq for Delayed<K> {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}
impl<K> Eq for Delayed<K> {}
impl<K> PartialOrd for Delayed<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<K> Ord for Delayed<K> {
    /// Reversed: `BinaryHeap` is a max-heap and we want the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl<K: Hash + Eq + Clone> Default for WorkQueue<K> {
    fn default() -> Self {
        WorkQueue {
            inner: Mutex::new(Inner {
                ready: VecDeque::new(),
                dirty: HashSet::new(),
                processing: HashSet::new(),
                delayed: BinaryHeap::new(),
                failures: HashMap::new(),
                seq: 0,
            }),
            wake: Notify::new(),
        }
    }
}

impl<K: Hash + Eq + Clone> WorkQueue<K> {
    pub fn add(&self, key: K) {
        let mut inner = self.inner.lock();
        if inner.add(key) {
            drop(inner);
            self.wake.notify_one();
        }
    }

    pub fn add_all(&self, keys: impl IntoIterator<Item = K>) {
        let mut inner = self.inner.lock();
        let mut n = 0;
        for k in keys {
            if inner.add(k) {
                n += 1;
            }
        }
        drop(inner);
        for _ in 0..n {
            self.wake.notify_one();
        }
    }

    pub fn add_after(&self, key: K, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        let mut inner = self.inner.lock();
        inner.seq += 1;
        let seq = inner.seq;
        inner.delayed.push(Delayed {
            at: Instant::now() + delay,
            seq,
            key,
        });
        drop(inner);
        // A sleeping worker must recompute its deadline.
        self.wake.notify_one();
    }

    /// Adds `key` again after its backoff, which grows with each call until
    /// [`WorkQueue::forget`].
    pub fn add_rate_limited(&self, key: K) {
        let n = {
            let mut inner = self.inner.lock();
            let n = inner.failures.entry(key.clone()).or_insert(0);
            *n += 1;
            *n
        };
        self.add_after(key, backoff(n));
    }

    /// Resets the backoff of `key` (it succeeded).
    pub fn forget(&self, key: &K) {
        self.inner.lock().failures.remove(key);
    }

    /// Waits for the next key; the caller must call [`WorkQueue::done`]
    /// with it.
    pub async fn next(&self) -> K {
        loop {
            let deadline = {
                let mut inner = self.inner.lock();
                let now = Instant::now();
                while inner.delayed.peek().is_some_and(|d| d.at <= now) {
                    if let Some(d) = inner.delayed.pop() {
                        inner.add(d.key);
                    }
                }
                if let Some(key) = inner.ready.pop_front() {
                    inner.dirty.remove(&key);
                    inner.processing.insert(key.clone());
                    if inner.ready.is_empty() {
                        inner.shrink();
                    } else {
                        // Others may be waiting for what is left.
                        self.wake.notify_one();
                    }
                    return key;
                }
                inner.delayed.peek().map(|d| d.at)
            };
            match deadline {
                Some(at) => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => self.wake.notified().await,
            }
        }
    }

    pub fn done(&self, key: &K) {
        let mut inner = self.inner.lock();
        inner.processing.remove(key);
        if inner.dirty.contains(key) {
            inner.ready.push_back(key.clone());
            drop(inner);
            self.wake.notify_one();
        }
    }

    /// Keys waiting now (not delayed, not being processed).
    #[cfg(test)]
    pub fn ready_len(&self) -> usize {
        self.inner.lock().ready.len()
    }
}

impl<K: Hash + Eq + Clone> Inner<K> {
    /// Gives back the room a burst (a full resync queues every object)
    /// left behind.
    fn shrink(&mut self) {
        const KEEP: usize = 1024;
        if self.ready.capacity() > KEEP {
            self.ready.shrink_to(KEEP);
        }
        if self.dirty.capacity() > KEEP {
            self.dirty.shrink_to(KEEP);
        }
        if self.failures.capacity() > KEEP {
            self.failures.shrink_to(KEEP);
        }
    }

    /// Returns whether the key became ready.
    fn add(&mut self, key: K) -> bool {
        if self.dirty.contains(&key) {
            return false;
        }
        self.dirty.insert(key.clone());
        if self.processing.contains(&key) {
            return false;
        }
        self.ready.push_back(key);
        true
    }
}

fn backoff(failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(20);
    BACKOFF_BASE.saturating_mul(factor).min(BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dedups_and_requeues_keys_added_while_processing() {
        let q = WorkQueue::default();
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.ready_len(), 2);
        let a = q.next().await;
        assert_eq!(a, "a");
        q.add("a"); // changed while being processed
        assert_eq!(q.ready_len(), 1, "not handed out twice");
        assert_eq!(q.next().await, "b");
        q.done(&"b");
        q.done(&a);
        assert_eq!(q.next().await, "a", "re-queued once done");
    }

    #[tokio::test]
    async fn delayed_keys_come_back() {
        let q = WorkQueue::default();
        let start = Instant::now();
        q.add_after("late", Duration::from_millis(50));
        q.add("now");
        assert_eq!(q.next().await, "now");
        assert_eq!(q.next().await, "late");
        assert!(start.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), BACKOFF_BASE);
        assert_eq!(backoff(2), BACKOFF_BASE * 2);
        assert_eq!(backoff(100), BACKOFF_MAX);
    }
}
