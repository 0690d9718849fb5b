//! Progress of one transfer, and the one rule every report to a caller
//! keeps: at most every 100 ms while bytes arrive, and once more, with
//! done == total, when the transfer has succeeded.
//!
//! Reports are made here, spaced by [`Spacing`], and a caller's function
//! (the Elixir NIF's messages) may be called straight from here. Counts
//! that stay inside tank (a pull adding its blobs up) are not reports: they
//! go to a [`Sink::Count`] unspaced, and only the sum is spaced, where it
//! is reported. The runtime, which hands each report over to the thread
//! that made the C call, keeps the same [`Spacing`] across that hop: a
//! thread woken late for one report and promptly for the next must not
//! put them closer than they were made.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where a caller's reports go: `(done, total)`, total 0 while unknown.
pub type ProgressFn = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// A count kept inside tank: bytes done of one transfer, every update.
pub type CountFn = Arc<dyn Fn(u64) + Send + Sync>;

/// Where one transfer's progress goes.
#[derive(Clone)]
pub enum Sink {
    /// The caller's function: reports pass the throttle.
    Caller(ProgressFn),
    /// A count inside tank that adds transfers up and throttles the sum
    /// itself (a pull's tally of its blobs).
    Count(CountFn),
}

impl From<ProgressFn> for Sink {
    fn from(report: ProgressFn) -> Sink {
        Sink::Caller(report)
    }
}

/// The least time between two reports.
pub const EVERY: Duration = Duration::from_millis(100);

/// Reports at most every [`EVERY`]: when the last one went, timed from
/// when it had gone (its function returned), so that however long a
/// caller's function takes, the next report comes EVERY after it.
#[derive(Default)]
pub struct Spacing {
    last: Option<Instant>,
}

impl Spacing {
    /// When the next report may go; `None`: at once.
    pub fn due(&self) -> Option<Instant> {
        self.last.map(|t| t + EVERY)
    }

    /// Whether a report may go now.
    pub fn ready(&self) -> bool {
        self.due().map_or(true, |due| Instant::now() >= due)
    }

    /// A report goes now.
    pub fn went(&mut self) {
        self.last = Some(Instant::now());
    }
}

pub struct Progress {
    sink: Option<Sink>,
    total: u64,
    spacing: Spacing,
}

impl Progress {
    pub fn new(sink: Option<impl Into<Sink>>) -> Progress {
        Progress {
            sink: sink.map(Into::into),
            total: 0,
            spacing: Spacing::default(),
        }
    }

    /// The size, once known (from the descriptor or Content-Length).
    pub fn set_total(&mut self, total: u64) {
        self.total = total;
    }

    /// `done` bytes so far; reported unless the last report is recent.
    pub fn update(&mut self, done: u64) {
        match &self.sink {
            Some(Sink::Count(count)) => count(done),
            Some(Sink::Caller(report)) if self.spacing.ready() => {
                // Stamped first: a slow callback does not push the next
                // report further out.
                self.spacing.went();
                report(done, self.total);
            }
            _ => {}
        }
    }

    /// The final report of a successful transfer, however soon.
    pub fn finish(&mut self, total: u64) {
        match &self.sink {
            None => {}
            Some(Sink::Count(count)) => count(total),
            Some(Sink::Caller(report)) => report(total, total),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn reports_are_spaced_and_the_last_one_is_complete() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let report: ProgressFn = Arc::new(move |d, t| sink.lock().unwrap().push((d, t)));
        let mut p = Progress::new(Some(report));
        p.update(1);
        p.update(2);
        p.set_total(10);
        std::thread::sleep(EVERY);
        p.update(5);
        p.finish(10);
        assert_eq!(*seen.lock().unwrap(), [(1, 0), (5, 10), (10, 10)]);
    }

    #[test]
    fn a_count_gets_every_update() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let count: CountFn = Arc::new(move |d| sink.lock().unwrap().push(d));
        let mut p = Progress::new(Some(Sink::Count(count)));
        p.set_total(10);
        p.update(1);
        p.update(2);
        p.finish(10);
        assert_eq!(*seen.lock().unwrap(), [1, 2, 10]);
    }
}
