//! Upstream's crash-loop and image-pull back-off: 10 s, doubling, capped at
//! 5 minutes, forgotten after the thing has behaved for twice the cap.

use std::time::{Duration, Instant};

pub const INITIAL: Duration = Duration::from_secs(10);
pub const MAX: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Default)]
pub struct Backoff {
    /// The current delay and when it was last bumped.
    state: Option<(Duration, Instant)>,
}

impl Backoff {
    /// Records a failure at `now` and returns the delay before the next try.
    pub fn next(&mut self, now: Instant) -> Duration {
        let delay = match self.state {
            Some((d, at)) if now.duration_since(at) < 2 * MAX => (d * 2).min(MAX),
            _ => INITIAL,
        };
        self.state = Some((delay, now));
        delay
    }

    /// The current delay, if in back-off.
    pub fn current(&self) -> Option<Duration> {
        self.state.map(|(d, _)| d)
    }

    pub fn reset(&mut self) {
        self.state = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_and_resets_after_quiet() {
        let mut b = Backoff::default();
        let t = Instant::now();
        let seq: Vec<u64> = (0..7).map(|_| b.next(t).as_secs()).collect();
        assert_eq!(seq, [10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(b.next(t + 2 * MAX + Duration::from_secs(1)), INITIAL);
    }
}
