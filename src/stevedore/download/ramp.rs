//! How many of a blob's connections work at once: one, then two, then
//! all of them, as long as the step before made the bytes arrive faster.
//!
//! A CDN that caps each connection doubles its rate with a second one; a
//! server that does not (loopback, a link one connection fills) does not,
//! and there more connections only cost: requests, the read-back of bytes
//! that land ahead of the hash, threads on the same cores. So the first
//! connection's rate is measured alone, then the rate of the first two
//! together while the second fetches a trial piece of [`TRIAL`] bytes, from
//! its first bytes to its last (its connect and request are not the link's
//! fault); all connections go when the two did at least [`GAIN`] times
//! better, else the first goes on alone and the second stops where its
//! trial ended: on a finished response, not dropped with bytes in flight.
//! Measured on the bytes themselves: no threshold of speed that some link
//! would be on the wrong side of.

use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use tokio::sync::watch;

/// Bytes let by before the first measure: a new connection's first
/// round trips are slower than the link.
const SKIP: u64 = 1 << 20;
/// Bytes measured for the first connection's rate.
const WINDOW: u64 = 4 << 20;
/// Bytes the second connection fetches while the two are measured
/// together: about as many again arrive over the first meanwhile.
const TRIAL: u64 = 4 << 20;
/// How much faster two connections must be than one for all to go.
const GAIN: f64 = 1.5;

pub struct Ramp {
    connections: usize,
    state: Mutex<State>,
    /// How many connections may work (the first counted), and whether
    /// that is final.
    allowed: watch::Sender<(usize, bool)>,
}

enum State {
    /// The first connection alone; measuring from `(when, received)`.
    Alone {
        from: Option<(Instant, u64)>,
    },
    /// Two at once; measuring from when the second's first bytes came,
    /// until it has fetched its trial (`second` bytes so far).
    Two {
        alone: f64,
        from: Option<(Instant, u64)>,
        second: u64,
    },
    Decided,
}

impl Ramp {
    pub fn new(connections: usize) -> Ramp {
        let connections = connections.max(1);
        let (allowed, _) = watch::channel((1, connections == 1));
        Ramp {
            connections,
            state: Mutex::new(State::Alone { from: None }),
            allowed,
        }
    }

    /// `len` bytes arrived over connection `by`, `received` over all of
    /// them so far.
    pub fn observe(&self, by: usize, received: u64, len: u64) {
        self.observe_at(by, received, len, Instant::now());
    }

    fn observe_at(&self, by: usize, received: u64, len: u64, now: Instant) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let rate = |(t, b): (Instant, u64)| {
            (received - b) as f64 / now.duration_since(t).as_secs_f64().max(1e-6)
        };
        match &mut *state {
            State::Alone { from: None } if received >= SKIP => {
                *state = State::Alone {
                    from: Some((now, received)),
                }
            }
            State::Alone { from: Some(from) } if received - from.1 >= WINDOW => {
                let alone = rate(*from);
                *state = State::Two {
                    alone,
                    from: None,
                    second: 0,
                };
                self.allow(2, false);
            }
            State::Two {
                alone,
                from,
                second,
            } if by > 0 => {
                *second += len;
                if *second < TRIAL {
                    from.get_or_insert((now, received));
                    return;
                }
                // A trial over in one chunk measured nothing: one stream.
                let faster = from.is_some_and(|from| rate(from) >= GAIN * *alone);
                *state = State::Decided;
                self.allow(if faster { self.connections } else { 1 }, true);
            }
            _ => {}
        }
    }

    /// How much more connection `k` is to fetch for the trial, while one
    /// runs: its next piece is no longer, so that the trial ends where a
    /// response does.
    pub fn trial_left(&self, k: usize) -> Option<u64> {
        match *self.state.lock().unwrap_or_else(PoisonError::into_inner) {
            State::Two { second, .. } if k == 1 => Some(TRIAL.saturating_sub(second)),
            _ => None,
        }
    }

    fn allow(&self, connections: usize, last: bool) {
        let connections = connections.min(self.connections);
        self.allowed.send_replace((connections, last));
    }

    /// No more pieces to hand out: connections still waiting to start
    /// never will.
    pub fn close(&self) {
        let (now, _) = *self.allowed.borrow();
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = State::Decided;
        self.allow(now, true);
    }

    /// Waits until connection `k` (0 is the first) may work; `false`: it
    /// never will.
    pub async fn admitted(&self, k: usize) -> bool {
        let mut allowed = self.allowed.subscribe();
        loop {
            let (n, last) = *allowed.borrow_and_update();
            if k < n {
                return true;
            }
            if last || allowed.changed().await.is_err() {
                return false;
            }
        }
    }

    /// Whether it is decided that the first connection works alone.
    pub fn alone(&self) -> bool {
        *self.allowed.borrow() == (1, true)
    }

    /// Whether connection `k` may take another piece.
    pub fn may_go_on(&self, k: usize) -> bool {
        k < self.allowed.borrow().0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const MIB: u64 = 1 << 20;

    const CHUNK: u64 = 256 << 10;

    /// A clock of its own and the bytes received so far.
    struct Feed<'r> {
        ramp: &'r Ramp,
        at: u64,
        t: Instant,
    }

    impl Feed<'_> {
        /// `bytes` over connection 0 alone at `rate` MiB/s, in 256 KiB
        /// chunks.
        fn alone(&mut self, bytes: u64, rate: u64) {
            for _ in 0..bytes / CHUNK {
                self.chunk(0, rate);
            }
        }

        /// Chunks over connections 0 and 1 in turn, at `rate` MiB/s for
        /// the two, until connection 1 has delivered `second` bytes.
        fn both(&mut self, second: u64, rate: u64) {
            for _ in 0..second / CHUNK {
                self.chunk(0, rate);
                self.chunk(1, rate);
            }
        }

        fn chunk(&mut self, by: usize, rate: u64) {
            self.at += CHUNK;
            self.t += Duration::from_secs_f64(CHUNK as f64 / (rate * MIB) as f64);
            self.ramp.observe_at(by, self.at, CHUNK, self.t);
        }
    }

    #[tokio::test]
    async fn all_go_when_two_were_faster_than_one() {
        let ramp = Ramp::new(4);
        let mut feed = Feed {
            ramp: &ramp,
            at: 0,
            t: Instant::now(),
        };
        assert!(ramp.may_go_on(0) && !ramp.may_go_on(1));
        assert_eq!(ramp.trial_left(1), None);
        feed.alone(SKIP + WINDOW, 64);
        assert!(
            ramp.admitted(1).await,
            "a second connection once one is measured"
        );
        assert!(!ramp.may_go_on(2));
        assert_eq!(ramp.trial_left(1), Some(TRIAL));
        // Before the second delivers nothing is measured.
        feed.alone(3 * WINDOW, 64);
        assert!(!ramp.may_go_on(2));
        // Two at about twice the rate; decided on the trial's last byte.
        feed.both(TRIAL - CHUNK, 128);
        assert_eq!(ramp.trial_left(1), Some(CHUNK));
        assert!(!ramp.may_go_on(2));
        feed.both(CHUNK, 128);
        assert_eq!(ramp.trial_left(1), None);
        assert!(ramp.admitted(3).await);
        assert!(ramp.may_go_on(1) && ramp.may_go_on(3));
    }

    #[tokio::test]
    async fn one_goes_on_alone_when_two_were_not_faster() {
        let ramp = Ramp::new(4);
        let mut feed = Feed {
            ramp: &ramp,
            at: 0,
            t: Instant::now(),
        };
        feed.alone(SKIP + WINDOW, 256);
        assert!(ramp.admitted(1).await);
        // A little better, not enough.
        feed.both(TRIAL, 300);
        assert!(!ramp.admitted(2).await, "the others never start");
        assert!(!ramp.may_go_on(1), "the second stops after its trial");
        assert!(ramp.alone() && ramp.may_go_on(0));
    }

    #[tokio::test]
    async fn waiting_connections_are_let_go_when_nothing_is_left() {
        let ramp = Ramp::new(4);
        ramp.close();
        assert!(!ramp.admitted(1).await);
        assert!(ramp.may_go_on(0));
        assert!(Ramp::new(1).may_go_on(0));
        assert!(!Ramp::new(1).may_go_on(1));
    }
}
