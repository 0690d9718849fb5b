//! How many of a blob's connections work at once: one, then two, then
//! all of them, as long as the step before made the bytes arrive faster.
//!
//! A CDN that caps each connection doubles its rate with a second one; a
//! server that does not (loopback, a link one connection fills) does not,
//! and there more connections only cost: requests, the read-back of bytes
//! that land ahead of the hash, threads on the same cores. So the first
//! connection's rate is measured alone, then the rates of the first two
//! together while the second fetches a trial piece ([`SKIP`] + [`TRIAL`]
//! bytes, the first of them not measured); all
//! connections go when each of the two is at least [`EACH`] times as fast
//! as the one was alone, else the first goes on alone and the second stops
//! where its trial ended: on a finished response, not dropped with bytes in
//! flight.
//!
//! Each of the two, not their sum: a link that caps each connection gives
//! the second a rate of its own and leaves the first's as it was, while on
//! a link one connection fills, the two share it, and over a few
//! milliseconds one of them often reads a burst out of its socket buffer
//! while the other waits. On loopback the sum of two such rates came out
//! above one and a half times the one in a third of the runs, and going
//! wide then cost a fifth of the time; the slower of the two did not.
//!
//! A connection's rate counts only the time it is inside a response, from
//! one chunk to the next: not a request's round trip (a new connection's
//! connect, or the first's next piece starting during the trial, would
//! otherwise read as a link that does not get faster). Measured on the
//! bytes themselves: no threshold of speed that some link would be on the
//! wrong side of.

use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use tokio::sync::watch;

/// Bytes of a new connection let by before it is measured: its first
/// round trips (TCP's slow start) are slower than the link. The same for
/// the first connection alone and for the second in its trial, so that
/// the two are measured over the same stretch of a connection's life.
const SKIP: u64 = 1 << 20;
/// Bytes measured for the first connection's rate, at least.
const WINDOW: u64 = 4 << 20;
/// Time the first connection's rate is measured over, at least: on a fast
/// link [`WINDOW`] passes in a few milliseconds, as long as a scheduling
/// hiccup, and the rate read from it was anywhere between half and twice
/// the link's. Nearly free: one connection is working anyway (it asks
/// piece by piece meanwhile, and the others wait holding their places in
/// the host's budget).
const WINDOW_SECS: f64 = 0.025;
/// ... unless this many bytes were measured first.
const LONGEST_WINDOW: u64 = 8 * WINDOW;
/// Bytes the second connection is measured on while the two run together
/// (its trial piece is [`SKIP`] more): about as many again arrive over the
/// first meanwhile.
const TRIAL: u64 = 4 << 20;
/// How fast each of two connections must be, against one alone, for all
/// to go: two such add up to 1.5 times one.
const EACH: f64 = 0.75;
/// Bytes the first connection must have been measured on during the
/// trial; if not (it was between pieces all along: a busy machine, a far
/// server), the trial goes on by another [`TRIAL`].
const OVERLAP: u64 = 1 << 20;
/// The longest trial: then the decision is taken on what was seen.
const LONGEST_TRIAL: u64 = SKIP + 4 * TRIAL;

pub struct Ramp {
    connections: usize,
    state: Mutex<State>,
    /// How many connections may work (the first counted), and whether
    /// that is final.
    allowed: watch::Sender<(usize, bool)>,
}

/// One connection's bytes over the time it spent inside responses.
#[derive(Debug, Default, Clone, Copy)]
struct Meter {
    bytes: u64,
    secs: f64,
    last: Option<Instant>,
}

impl Meter {
    /// A chunk of `len` bytes came at `now`; `fresh`: the first of its
    /// response, whose wait was the request's, not the link's.
    fn add(&mut self, len: u64, now: Instant, fresh: bool) {
        if let Some(last) = self.last.filter(|_| !fresh) {
            self.bytes += len;
            self.secs += now.duration_since(last).as_secs_f64();
        }
        self.last = Some(now);
    }

    /// Bytes a second; 0 with nothing measured.
    fn rate(&self) -> f64 {
        match self.secs > 0.0 {
            true => self.bytes as f64 / self.secs,
            false => 0.0,
        }
    }
}

enum State {
    /// The first connection alone: `seen` bytes so far, measured past
    /// [`SKIP`].
    Alone {
        seen: u64,
        meter: Meter,
    },
    /// Two at once: the second has fetched `trial` bytes of `until`;
    /// each measured from when the second is past [`SKIP`].
    Two {
        alone: f64,
        trial: u64,
        until: u64,
        first: Meter,
        second: Meter,
    },
    Decided,
}

impl Ramp {
    pub fn new(connections: usize) -> Ramp {
        let connections = connections.max(1);
        let (allowed, _) = watch::channel((1, connections == 1));
        Ramp {
            connections,
            state: Mutex::new(State::Alone {
                seen: 0,
                meter: Meter::default(),
            }),
            allowed,
        }
    }

    /// `len` bytes arrived over connection `by`; `fresh`: the first of a
    /// response.
    pub fn observe(&self, by: usize, len: u64, fresh: bool) {
        self.observe_at(by, len, fresh, Instant::now());
    }

    fn observe_at(&self, by: usize, len: u64, fresh: bool, now: Instant) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match &mut *state {
            State::Alone { seen, meter } if by == 0 => {
                *seen += len;
                if *seen < SKIP {
                    return;
                }
                meter.add(len, now, fresh);
                let long_enough = meter.secs >= WINDOW_SECS || meter.bytes >= LONGEST_WINDOW;
                if meter.bytes >= WINDOW && long_enough {
                    *state = State::Two {
                        alone: meter.rate(),
                        trial: 0,
                        until: SKIP + TRIAL,
                        first: Meter::default(),
                        second: Meter::default(),
                    };
                    self.allow(2, false);
                }
            }
            // The first is measured only from when the second is.
            State::Two { trial, .. } if by == 0 && *trial <= SKIP => {}
            State::Two { first, .. } if by == 0 => first.add(len, now, fresh),
            State::Two {
                alone,
                trial,
                until,
                first,
                second,
            } if by == 1 => {
                *trial += len;
                // Until past SKIP a chunk only times the next one.
                second.add(len, now, fresh || *trial <= SKIP);
                if *trial < *until {
                    return;
                }
                if first.bytes < OVERLAP && *until < LONGEST_TRIAL {
                    *until += TRIAL;
                    return;
                }
                let faster = *alone > 0.0 && first.rate().min(second.rate()) >= EACH * *alone;
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
            State::Two { trial, until, .. } if k == 1 => {
                Some(until.saturating_sub(trial)).filter(|&left| left > 0)
            }
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

    /// Chunks of 256 KiB fed to a ramp on a clock of its own.
    struct Feed<'r> {
        ramp: &'r Ramp,
        t: Instant,
    }

    impl Feed<'_> {
        fn new(ramp: &Ramp) -> Feed<'_> {
            Feed {
                ramp,
                t: Instant::now(),
            }
        }

        /// One chunk over connection `by`, `secs` after the one before.
        fn chunk(&mut self, by: usize, secs: f64, fresh: bool) {
            self.t += Duration::from_secs_f64(secs);
            self.ramp.observe_at(by, CHUNK, fresh, self.t);
        }

        /// `bytes` over connection 0 alone at `rate` MiB/s, one response.
        fn alone(&mut self, bytes: u64, rate: u64) {
            for _ in 0..bytes / CHUNK {
                self.chunk(0, per_chunk(rate), false);
            }
        }

        /// Chunks over connections 0 and 1 in turn, at `rate` MiB/s for
        /// the two together, until connection 1 has delivered `second`
        /// bytes; `fresh`: connection 1's first is its response's first.
        fn both(&mut self, second: u64, rate: u64, fresh: bool) {
            for k in 0..second / CHUNK {
                self.chunk(0, per_chunk(rate), false);
                self.chunk(1, per_chunk(rate), fresh && k == 0);
            }
        }

        /// A whole trial piece over connection 1, its first [`SKIP`] at
        /// `start` MiB/s and the rest at `second`, while connection 0
        /// delivers at `first` (its chunks between the second's).
        fn trial(&mut self, first: f64, start: f64, second: f64) {
            let every = |rate: f64| CHUNK as f64 / (rate * MIB as f64);
            let mut at = Vec::new();
            let mut t = 0.0;
            for k in 0..(SKIP + TRIAL) / CHUNK {
                t += every(if k * CHUNK < SKIP { start } else { second });
                at.push((t, 1, k == 0));
            }
            let span = t;
            at.extend(
                (0..)
                    .map(|k| ((k as f64 + 0.5) * every(first), 0, false))
                    .take_while(|&(t, _, _)| t < span),
            );
            self.play(at);
        }

        /// Chunks at the given times (seconds from now), in order.
        fn play(&mut self, mut at: Vec<(f64, usize, bool)>) {
            at.sort_by(|a, b| a.0.total_cmp(&b.0));
            let base = self.t;
            for (secs, by, fresh) in at {
                self.t = base + Duration::from_secs_f64(secs);
                self.ramp.observe_at(by, CHUNK, fresh, self.t);
            }
        }
    }

    fn per_chunk(rate: u64) -> f64 {
        CHUNK as f64 / (rate * MIB) as f64
    }

    /// Past the first connection's measure: the second is let in.
    const MEASURED_ALONE: u64 = SKIP + WINDOW + CHUNK;

    #[tokio::test]
    async fn all_go_when_two_were_faster_than_one() {
        let ramp = Ramp::new(4);
        let mut feed = Feed::new(&ramp);
        assert!(ramp.may_go_on(0) && !ramp.may_go_on(1));
        assert_eq!(ramp.trial_left(1), None);
        feed.alone(MEASURED_ALONE, 64);
        assert!(
            ramp.admitted(1).await,
            "a second connection once one is measured"
        );
        assert!(!ramp.may_go_on(2));
        assert_eq!(ramp.trial_left(1), Some(SKIP + TRIAL));
        // Before the second delivers nothing is measured (slowed down
        // here, it would weigh the first's rate down).
        feed.alone(3 * WINDOW, 8);
        assert!(!ramp.may_go_on(2));
        // Two at about twice the rate; decided on the trial's last byte.
        feed.both(SKIP + TRIAL - CHUNK, 128, true);
        assert_eq!(ramp.trial_left(1), Some(CHUNK));
        assert!(!ramp.may_go_on(2));
        feed.both(CHUNK, 128, false);
        assert_eq!(ramp.trial_left(1), None);
        assert!(ramp.admitted(3).await);
        assert!(ramp.may_go_on(1) && ramp.may_go_on(3));
    }

    #[tokio::test]
    async fn one_goes_on_alone_when_two_were_not_faster() {
        let ramp = Ramp::new(4);
        let mut feed = Feed::new(&ramp);
        feed.alone(SKIP + 2 * WINDOW, 256);
        assert!(ramp.admitted(1).await);
        // A little better, not enough.
        feed.both(SKIP + TRIAL, 300, true);
        assert!(!ramp.admitted(2).await, "the others never start");
        assert!(!ramp.may_go_on(1), "the second stops after its trial");
        assert!(ramp.alone() && ramp.may_go_on(0));
    }

    /// A capped CDN far away: the first connection's piece ends during the
    /// trial and its next one starts 35 ms later. That time is the
    /// request's, not the link's: all go. (Counted as the link's, the
    /// first would read under 0.75 times its rate alone.)
    #[tokio::test]
    async fn a_round_trip_between_pieces_is_not_taken_for_a_slow_link() {
        let ramp = Ramp::new(4);
        let mut feed = Feed::new(&ramp);
        feed.alone(MEASURED_ALONE, 64);
        assert!(ramp.admitted(1).await);
        let every = per_chunk(64);
        let trial = ((SKIP + TRIAL) / CHUNK) as usize;
        // The second's chunks at 64 MiB/s after its connect.
        let mut at: Vec<(f64, usize, bool)> = (0..trial)
            .map(|k| (0.2 + k as f64 * every, 1, k == 0))
            .collect();
        // The first: 2 chunks once the second is measured, then its piece
        // ends; the next starts 35 ms later.
        let first = |k: usize| 0.2 + k as f64 * every + every / 2.0;
        let lead = (SKIP / CHUNK) as usize + 2;
        at.extend((0..lead).map(|k| (first(k), 0, false)));
        at.extend((0..trial).map(|k| (first(lead - 1) + 0.035 + k as f64 * every, 0, k == 0)));
        feed.play(at);
        assert_eq!(ramp.trial_left(1), None, "decided");
        assert!(ramp.admitted(3).await);
    }

    /// The first connection between pieces for the whole trial (its next
    /// request slow to go out on a busy machine): nothing says what two do
    /// together, so the trial goes on until it does.
    #[tokio::test]
    async fn a_trial_the_first_sat_out_goes_on() {
        let ramp = Ramp::new(4);
        let mut feed = Feed::new(&ramp);
        feed.alone(MEASURED_ALONE, 64);
        assert!(ramp.admitted(1).await);
        for k in 0..(SKIP + TRIAL) / CHUNK {
            feed.chunk(1, per_chunk(64), k == 0);
        }
        assert_eq!(ramp.trial_left(1), Some(TRIAL), "another trial piece");
        assert!(!ramp.may_go_on(2));
        feed.chunk(0, 0.0, true);
        feed.both(TRIAL, 128, true);
        assert!(ramp.admitted(3).await, "two at twice the rate");

        // A first connection that never comes back: decided all the same.
        let ramp = Ramp::new(4);
        let mut feed = Feed::new(&ramp);
        feed.alone(MEASURED_ALONE, 64);
        for k in 0..LONGEST_TRIAL / CHUNK {
            feed.chunk(1, per_chunk(64), k == 0);
        }
        assert_eq!(ramp.trial_left(1), None);
        assert!(ramp.alone());
    }

    /// Loopback: the first reads a burst out of its socket buffer while
    /// the second crawls; their sum is over 1.5 times the one, but the
    /// second took its bytes from the first's share, not from a cap of
    /// its own.
    #[tokio::test]
    async fn one_connection_reading_a_burst_is_not_two_links() {
        let ramp = Ramp::new(4);
        let mut feed = Feed::new(&ramp);
        feed.alone(SKIP + 4 * WINDOW, 450);
        assert!(ramp.admitted(1).await);
        feed.trial(600.0, 130.0, 130.0);
        assert_eq!(ramp.trial_left(1), None, "decided");
        assert!(ramp.alone(), "600 + 130 is not two links of 450");
    }

    /// All go only when each of the two was at least 0.75 times as fast as
    /// the first alone, whichever of them fell short.
    #[tokio::test]
    async fn each_of_the_two_must_keep_up() {
        for (first, second, all) in [
            (80.0, 80.0, true),
            (70.0, 70.0, false),
            (60.0, 120.0, false),
            (120.0, 60.0, false),
        ] {
            let ramp = Ramp::new(4);
            let mut feed = Feed::new(&ramp);
            feed.alone(MEASURED_ALONE, 100);
            assert!(ramp.admitted(1).await);
            feed.trial(first, second, second);
            assert_eq!(ramp.trial_left(1), None, "decided");
            assert_eq!(ramp.may_go_on(3), all, "{first} and {second} against 100");
        }
    }

    /// A far, capped CDN: the second connection's first megabyte crawls in
    /// TCP's slow start, as the first's did before it was measured.
    #[tokio::test]
    async fn a_second_connection_is_measured_past_its_slow_start() {
        let ramp = Ramp::new(4);
        let mut feed = Feed::new(&ramp);
        feed.alone(MEASURED_ALONE, 64);
        assert!(ramp.admitted(1).await);
        feed.trial(64.0, 12.8, 64.0);
        assert!(ramp.admitted(3).await, "all go");
    }

    /// A fast link: its first [`WINDOW`] bytes pass in a couple of
    /// milliseconds, too short to read a rate from; the measure goes on
    /// for [`WINDOW_SECS`], and ends after [`LONGEST_WINDOW`] whatever.
    #[test]
    fn a_fast_link_is_measured_alone_for_long_enough() {
        let ramp = Ramp::new(4);
        let mut feed = Feed::new(&ramp);
        // 512 MiB/s: 4 MiB in 8 ms, 25 ms in 12.5 MiB.
        feed.alone(SKIP + WINDOW + CHUNK, 512);
        assert!(!ramp.may_go_on(1), "measured for 8 ms only");
        feed.alone(8 * MIB, 512);
        assert!(!ramp.may_go_on(1), "measured for 24 ms only");
        feed.alone(MIB, 512);
        assert!(ramp.may_go_on(1), "25 ms");

        let ramp = Ramp::new(4);
        let mut feed = Feed::new(&ramp);
        feed.alone(SKIP + LONGEST_WINDOW - CHUNK, 1 << 20);
        assert!(!ramp.may_go_on(1));
        feed.alone(2 * CHUNK, 1 << 20);
        assert!(ramp.may_go_on(1), "decided on the longest window");
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
