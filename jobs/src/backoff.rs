//! `Backoff`: the one policy for waiting between attempts to reach something that did
//! not answer — Redis, RabbitMQ (the connection, control, consume and publish loops),
//! Slack's Web API, a shipper's HTTP ends.
//!
//! Pauses double from a first step up to a ceiling. Each pause is half its step plus a
//! random share of the other half ("equal jitter"): attempts still slow down as an outage
//! lasts, but a hundred workers that lost the same broker in the same millisecond come
//! back spread over the second half of each step instead of all at once.

use std::time::Duration;

/// Growing, jittered pauses between attempts. `reset` after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    ceiling: Duration,
    step: Duration,
}

impl Backoff {
    /// Pauses from about `first` (at least half of it), doubling up to `ceiling`.
    pub fn new(first: Duration, ceiling: Duration) -> Self {
        Backoff {
            first,
            ceiling: ceiling.max(first),
            step: first,
        }
    }

    /// The pause before the next attempt; each call moves one step up.
    pub fn next_pause(&mut self) -> Duration {
        let step = self.step;
        self.step = (self.step * 2).min(self.ceiling);
        let half = step / 2;
        half + half.mul_f64(rand::random::<f64>())
    }

    /// Back to the first step, after a success.
    pub fn reset(&mut self) {
        self.step = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_to_the_ceiling_each_within_its_step() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let steps = [100, 200, 400, 800, 1000, 1000];
        for ms in steps {
            let step = Duration::from_millis(ms);
            let pause = b.next_pause();
            assert!(
                pause >= step / 2 && pause <= step,
                "{pause:?} outside {step:?}"
            );
        }
        b.reset();
        assert!(b.next_pause() <= Duration::from_millis(100));
    }

    #[test]
    fn pauses_of_many_processes_spread_out() {
        let pauses: std::collections::BTreeSet<_> = (0..100)
            .map(|_| Backoff::new(Duration::from_secs(1), Duration::from_secs(1)).next_pause())
            .collect();
        // A hundred processes with the same step do not all wait the same time.
        assert!(pauses.len() > 50, "only {} distinct pauses", pauses.len());
    }
}
