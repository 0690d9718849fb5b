//! Progress of one transfer, reported at most every 100 ms while bytes
//! arrive and once more, with done == total, when it has succeeded.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where reports go: `(done, total)`, total 0 while unknown.
pub type ProgressFn = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// The least time between two reports.
pub const EVERY: Duration = Duration::from_millis(100);

pub struct Progress {
    report: Option<ProgressFn>,
    total: u64,
    last: Option<Instant>,
}

impl Progress {
    pub fn new(report: Option<ProgressFn>) -> Progress {
        Progress {
            report,
            total: 0,
            last: None,
        }
    }

    /// The size, once known (from the descriptor or Content-Length).
    pub fn set_total(&mut self, total: u64) {
        self.total = total;
    }

    /// `done` bytes so far; reported unless the last report is recent.
    pub fn update(&mut self, done: u64) {
        let Some(report) = &self.report else { return };
        let now = Instant::now();
        if self.last.is_some_and(|t| now - t < EVERY) {
            return;
        }
        self.last = Some(now);
        report(done, self.total);
    }

    /// The final report of a successful transfer.
    pub fn finish(&mut self, total: u64) {
        if let Some(report) = &self.report {
            report(total, total);
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
        let mut p = Progress::new(Some(Arc::new(move |d, t| {
            sink.lock().unwrap().push((d, t))
        })));
        p.update(1);
        p.update(2);
        p.set_total(10);
        std::thread::sleep(EVERY);
        p.update(5);
        p.finish(10);
        assert_eq!(*seen.lock().unwrap(), [(1, 0), (5, 10), (10, 10)]);
    }
}
