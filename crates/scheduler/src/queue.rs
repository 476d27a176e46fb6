//! The scheduling queue, as upstream's `PriorityQueue`: an active queue
//! (highest priority first, then FIFO), a back-off queue (1 s doubling to
//! 10 s per failed attempt) and an unschedulable set that cluster events
//! move back (only events that could help the plugins that rejected the
//! pod), flushed after 60 s in any case.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::podinfo::PodInfo;

pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
pub const MAX_UNSCHEDULABLE: Duration = Duration::from_secs(60);

/// A cluster change that may make unschedulable pods fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    NodeAdd,
    NodeUpdate,
    PodAdd,
    PodUpdate,
    PodDelete,
    VolumeChange,
    NamespaceChange,
}

/// Which events can turn a rejection by `plugin` into a fit.
fn helps(plugin: &str, ev: Event) -> bool {
    use Event::*;
    match plugin {
        "NodeResourcesFit" | "NodePorts" => {
            matches!(ev, NodeAdd | NodeUpdate | PodDelete | PodUpdate)
        }
        "NodeUnschedulable" | "NodeAffinity" | "TaintToleration" | "NodeName" => {
            matches!(ev, NodeAdd | NodeUpdate)
        }
        "PodTopologySpread" | "InterPodAffinity" => {
            matches!(
                ev,
                NodeAdd | NodeUpdate | PodAdd | PodUpdate | PodDelete | NamespaceChange
            )
        }
        "VolumeBinding" => matches!(ev, NodeAdd | NodeUpdate | VolumeChange),
        _ => true,
    }
}

pub struct QueuedPod {
    pub info: Arc<PodInfo>,
    pub attempts: u32,
    /// When the pod first entered the queue (for FIFO and metrics).
    pub added: Instant,
    /// Plugins that rejected it last time.
    pub rejected_by: Vec<&'static str>,
}

enum Where {
    Active(u64),
    Backoff(Instant),
    Unschedulable(Instant),
    /// Popped; being scheduled.
    InFlight,
}

struct Slot {
    pod: QueuedPod,
    at: Where,
}

#[derive(PartialEq, Eq)]
struct ActiveKey {
    priority: i32,
    seq: u64,
    uid: String,
}

impl Ord for ActiveKey {
    fn cmp(&self, o: &Self) -> Ordering {
        self.priority
            .cmp(&o.priority)
            .then_with(|| o.seq.cmp(&self.seq))
    }
}

impl PartialOrd for ActiveKey {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

#[derive(Default)]
struct Inner {
    slots: HashMap<String, Slot>,
    active: BinaryHeap<ActiveKey>,
    backoff: BinaryHeap<Reverse<(Instant, String)>>,
    seq: u64,
    /// Bumped on every move event; a pod that fails after an event
    /// arrived during its attempt goes to back-off, not unschedulable
    /// (the event might have helped it).
    move_cycle: u64,
    popped_at: HashMap<String, u64>,
    /// Slots in `Where::Unschedulable`, so the many events of a busy
    /// cluster cost nothing when no pod waits for one.
    unschedulable: usize,
    closed: bool,
}

#[derive(Default)]
pub struct Queue {
    inner: Mutex<Inner>,
    notify: Notify,
}

pub fn backoff_for(attempts: u32) -> Duration {
    let mut d = INITIAL_BACKOFF;
    for _ in 1..attempts {
        d = (d * 2).min(MAX_BACKOFF);
    }
    d
}

impl Inner {
    /// Moves a slot, keeping the unschedulable count.
    fn set_at(&mut self, uid: &str, at: Where) {
        if let Some(s) = self.slots.get_mut(uid) {
            if matches!(s.at, Where::Unschedulable(_)) {
                self.unschedulable -= 1;
            }
            if matches!(at, Where::Unschedulable(_)) {
                self.unschedulable += 1;
            }
            s.at = at;
        }
    }

    fn push_active(&mut self, uid: &str, priority: i32) {
        self.seq += 1;
        let seq = self.seq;
        self.active.push(ActiveKey {
            priority,
            seq,
            uid: uid.to_string(),
        });
        self.set_at(uid, Where::Active(seq));
    }

    fn requeue_after_backoff(&mut self, uid: &str, now: Instant) {
        let Some(s) = self.slots.get(uid) else { return };
        let expiry = s.last_failure_expiry();
        let prio = s.pod.info.priority;
        if expiry > now {
            self.backoff.push(Reverse((expiry, uid.to_string())));
            self.set_at(uid, Where::Backoff(expiry));
        } else {
            self.push_active(uid, prio);
        }
    }
}

impl Slot {
    fn last_failure_expiry(&self) -> Instant {
        match self.at {
            Where::Unschedulable(since) => since + backoff_for(self.pod.attempts),
            Where::Backoff(t) => t,
            _ => Instant::now(),
        }
    }
}

impl Queue {
    /// A new or updated pending pod. An update to a pod waiting as
    /// unschedulable sends it back to try again (its spec may fit now).
    pub fn add_or_update(&self, info: Arc<PodInfo>) {
        let mut q = self.inner.lock();
        let uid = info.uid.clone();
        match q.slots.get_mut(&uid) {
            Some(s) => {
                let spec_changed = !Arc::ptr_eq(&s.pod.info.pod, &info.pod)
                    && s.pod.info.pod.spec != info.pod.spec;
                let labels_changed = s.pod.info.labels != info.labels;
                s.pod.info = info;
                if matches!(s.at, Where::Unschedulable(_)) && (spec_changed || labels_changed) {
                    q.requeue_after_backoff(&uid, Instant::now());
                    drop(q);
                    self.notify.notify_one();
                }
            }
            None => {
                let prio = info.priority;
                q.slots.insert(
                    uid.clone(),
                    Slot {
                        pod: QueuedPod {
                            info,
                            attempts: 0,
                            added: Instant::now(),
                            rejected_by: vec![],
                        },
                        at: Where::InFlight,
                    },
                );
                q.push_active(&uid, prio);
                drop(q);
                self.notify.notify_one();
            }
        }
    }

    /// The pod is gone, bound elsewhere, or no longer ours.
    pub fn delete(&self, uid: &str) {
        let mut q = self.inner.lock();
        q.set_at(uid, Where::InFlight);
        q.slots.remove(uid);
        q.popped_at.remove(uid);
    }

    pub fn contains(&self, uid: &str) -> bool {
        self.inner.lock().slots.contains_key(uid)
    }

    /// Waits for the next pod to schedule; `None` once closed.
    pub async fn pop(&self) -> Option<(Arc<PodInfo>, u32)> {
        loop {
            let wait = {
                let mut q = self.inner.lock();
                if q.closed {
                    return None;
                }
                let now = Instant::now();
                while let Some(Reverse((t, _))) = q.backoff.peek() {
                    if *t > now {
                        break;
                    }
                    let Some(Reverse((t, uid))) = q.backoff.pop() else {
                        break;
                    };
                    let current = q.slots.get(&uid).and_then(|s| match s.at {
                        Where::Backoff(x) if x == t => Some(s.pod.info.priority),
                        _ => None,
                    });
                    if let Some(prio) = current {
                        q.push_active(&uid, prio);
                    }
                }
                while let Some(k) = q.active.pop() {
                    let cycle = q.move_cycle;
                    let live = q
                        .slots
                        .get_mut(&k.uid)
                        .is_some_and(|s| matches!(s.at, Where::Active(seq) if seq == k.seq));
                    if !live {
                        continue;
                    }
                    let Some(s) = q.slots.get_mut(&k.uid) else {
                        continue;
                    };
                    s.at = Where::InFlight;
                    s.pod.attempts += 1;
                    let out = (s.pod.info.clone(), s.pod.attempts);
                    q.popped_at.insert(k.uid, cycle);
                    return Some(out);
                }
                q.backoff.peek().map(|Reverse((t, _))| *t)
            };
            let notified = self.notify.notified();
            match wait {
                Some(t) => {
                    let _ = tokio::time::timeout_at(t.into(), notified).await;
                }
                None => notified.await,
            }
        }
    }

    /// A failed attempt: back to back-off if an event came in meanwhile,
    /// else unschedulable until an event helps (or the flush).
    pub fn requeue_unschedulable(&self, uid: &str, rejected_by: Vec<&'static str>) {
        let mut q = self.inner.lock();
        let moved = q.popped_at.remove(uid).is_some_and(|c| c < q.move_cycle);
        let now = Instant::now();
        let Some(s) = q.slots.get_mut(uid) else {
            return;
        };
        s.pod.rejected_by = rejected_by;
        q.set_at(uid, Where::Unschedulable(now));
        if moved {
            q.requeue_after_backoff(uid, now);
            drop(q);
            self.notify.notify_one();
        }
    }

    /// An error (API failure, binding conflict): retry after back-off.
    pub fn requeue_backoff(&self, uid: &str) {
        let mut q = self.inner.lock();
        q.popped_at.remove(uid);
        let now = Instant::now();
        if !q.slots.contains_key(uid) {
            return;
        }
        q.set_at(uid, Where::Unschedulable(now));
        q.requeue_after_backoff(uid, now);
        drop(q);
        self.notify.notify_one();
    }

    /// A pod whose binding failed: back in, after its back-off.
    pub fn readd_after_error(&self, info: Arc<PodInfo>, attempts: u32) {
        let mut q = self.inner.lock();
        let uid = info.uid.clone();
        q.slots.insert(
            uid.clone(),
            Slot {
                pod: QueuedPod {
                    info,
                    attempts,
                    added: Instant::now(),
                    rejected_by: vec![],
                },
                at: Where::InFlight,
            },
        );
        let now = Instant::now();
        q.set_at(&uid, Where::Unschedulable(now));
        q.requeue_after_backoff(&uid, now);
        drop(q);
        self.notify.notify_one();
    }

    /// Scheduled (assumed): out of the queue; the informer confirms.
    pub fn done(&self, uid: &str) {
        self.delete(uid);
    }

    /// Moves unschedulable pods an event may help back to active/back-off.
    pub fn on_event(&self, ev: Event) {
        let mut q = self.inner.lock();
        q.move_cycle += 1;
        if q.unschedulable == 0 {
            return;
        }
        let now = Instant::now();
        let uids: Vec<String> = q
            .slots
            .iter()
            .filter(|(_, s)| {
                matches!(s.at, Where::Unschedulable(_))
                    && (s.pod.rejected_by.is_empty()
                        || s.pod.rejected_by.iter().any(|p| helps(p, ev)))
            })
            .map(|(u, _)| u.clone())
            .collect();
        if uids.is_empty() {
            return;
        }
        for u in &uids {
            q.requeue_after_backoff(u, now);
        }
        drop(q);
        self.notify.notify_one();
    }

    /// Pods unschedulable for longer than [`MAX_UNSCHEDULABLE`] try again.
    pub fn flush_unschedulable(&self) {
        let mut q = self.inner.lock();
        let now = Instant::now();
        let uids: Vec<String> = q
            .slots
            .iter()
            .filter(
                |(_, s)| matches!(s.at, Where::Unschedulable(t) if now - t >= MAX_UNSCHEDULABLE),
            )
            .map(|(u, _)| u.clone())
            .collect();
        for u in &uids {
            q.requeue_after_backoff(u, now);
        }
        drop(q);
        if !uids.is_empty() {
            self.notify.notify_one();
        }
    }

    pub fn close(&self) {
        self.inner.lock().closed = true;
        self.notify.notify_waiters();
        self.notify.notify_one();
    }

    pub fn len(&self) -> usize {
        self.inner.lock().slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::pod;
    use serde_json::json;

    fn prio(name: &str, p: i32) -> Arc<PodInfo> {
        pod(
            json!({"metadata": {"name": name}, "spec": {"priority": p, "containers": [{"name": "c"}]}}),
        )
    }

    #[test]
    fn backoff_doubles_to_ten_seconds() {
        assert_eq!(backoff_for(1), Duration::from_secs(1));
        assert_eq!(backoff_for(2), Duration::from_secs(2));
        assert_eq!(backoff_for(4), Duration::from_secs(8));
        assert_eq!(backoff_for(9), Duration::from_secs(10));
    }

    #[tokio::test]
    async fn priority_then_fifo() {
        let q = Queue::default();
        q.add_or_update(prio("a", 0));
        q.add_or_update(prio("b", 10));
        q.add_or_update(prio("c", 0));
        let order: Vec<String> = [q.pop().await, q.pop().await, q.pop().await]
            .into_iter()
            .map(|p| p.unwrap().0.name.clone())
            .collect();
        assert_eq!(order, vec!["b", "a", "c"]);
    }

    #[tokio::test]
    async fn unschedulable_waits_for_a_helpful_event_then_backs_off() {
        let q = Queue::default();
        q.add_or_update(prio("a", 0));
        let (p, _) = q.pop().await.unwrap();
        q.requeue_unschedulable(&p.uid, vec!["NodeResourcesFit"]);
        // An unrelated event does not move it.
        q.on_event(Event::PodAdd);
        assert!(
            tokio::time::timeout(Duration::from_millis(200), q.pop())
                .await
                .is_err()
        );
        q.on_event(Event::NodeAdd);
        let start = Instant::now();
        let (again, attempts) = q.pop().await.unwrap();
        assert_eq!(again.name, "a");
        assert_eq!(attempts, 2);
        // It waited out the rest of its 1 s back-off, no more.
        assert!(start.elapsed() > Duration::from_millis(500));
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}
