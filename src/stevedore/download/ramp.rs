//! How many of a blob's connections work at once: one, then two, then
//! all of them, as long as the step before made the bytes arrive faster.
//!
//! A CDN that caps each connection doubles its rate with a second one; a
//! server that does not (loopback, a link one connection fills) does not,
//! and there more connections only cost: requests, the read-back of bytes
//! that land ahead of the hash, threads on the same cores. So the first
//! connection's rate is measured alone, then the rate of the first two
//! together, from the moment the second delivers (its connect and request
//! are not the link's fault); all connections go when the two did at least
//! [`GAIN`] times better, else the first goes on alone once the second has
//! finished its piece. Measured on the bytes themselves: no threshold of
//! speed that some link would be on the wrong side of.

use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use tokio::sync::watch;

/// Bytes let by before the first measure: a new connection's first
/// round trips are slower than the link.
const SKIP: u64 = 1 << 20;
/// Bytes measured for the first connection's rate; twice as many for the
/// two together.
const WINDOW: u64 = 4 << 20;
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
    /// Two at once; measuring from when the second's first bytes came.
    Two {
        alone: f64,
        from: Option<(Instant, u64)>,
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

    /// `received` bytes have arrived over all connections so far, the
    /// last of them over connection `by`.
    pub fn observe(&self, by: usize, received: u64) {
        self.observe_at(by, received, Instant::now());
    }

    fn observe_at(&self, by: usize, received: u64, now: Instant) {
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
                *state = State::Two { alone, from: None };
                self.allow(2, false);
            }
            State::Two { alone, from: None } if by > 0 => {
                *state = State::Two {
                    alone: *alone,
                    from: Some((now, received)),
                }
            }
            State::Two {
                alone,
                from: Some(from),
            } if received - from.1 >= 2 * WINDOW => {
                let faster = rate(*from) >= GAIN * *alone;
                *state = State::Decided;
                self.allow(if faster { self.connections } else { 1 }, true);
            }
            _ => {}
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

    /// Feeds `ramp` `bytes` at `rate` MiB/s from `at` (bytes) and `t`
    /// (a clock of its own), in 256 KiB chunks over connection `by`;
    /// returns where it got to.
    fn feed(ramp: &Ramp, by: usize, at: &mut u64, t: &mut Instant, bytes: u64, rate: u64) {
        let chunk = 256 << 10;
        let end = *at + bytes;
        while *at < end {
            *at += chunk;
            *t += Duration::from_secs_f64(chunk as f64 / (rate * MIB) as f64);
            ramp.observe_at(by, *at, *t);
        }
    }

    #[tokio::test]
    async fn all_go_when_two_were_faster_than_one() {
        let ramp = Ramp::new(4);
        let (mut at, mut t) = (0, Instant::now());
        assert!(ramp.may_go_on(0) && !ramp.may_go_on(1));
        feed(&ramp, 0, &mut at, &mut t, SKIP + WINDOW, 64);
        assert!(
            ramp.admitted(1).await,
            "a second connection once one is measured"
        );
        assert!(!ramp.may_go_on(2));
        // Before the second delivers nothing is measured.
        feed(&ramp, 0, &mut at, &mut t, 3 * WINDOW, 64);
        assert!(!ramp.may_go_on(2));
        // Two at about twice the rate.
        feed(&ramp, 1, &mut at, &mut t, 2 * WINDOW + MIB, 128);
        assert!(ramp.admitted(3).await);
        assert!(ramp.may_go_on(3));
    }

    #[tokio::test]
    async fn one_goes_on_alone_when_two_were_not_faster() {
        let ramp = Ramp::new(4);
        let (mut at, mut t) = (0, Instant::now());
        feed(&ramp, 0, &mut at, &mut t, SKIP + WINDOW, 256);
        assert!(ramp.admitted(1).await);
        // A little better, not enough.
        feed(&ramp, 1, &mut at, &mut t, 2 * WINDOW + MIB, 300);
        assert!(!ramp.admitted(2).await, "the others never start");
        assert!(!ramp.may_go_on(1), "the second stops after its piece");
        assert!(ramp.may_go_on(0));
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
