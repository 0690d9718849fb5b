//! Which ranges of a blob to fetch, over how many connections, and what
//! to ask again for when one breaks: the planning of ranged downloads,
//! without the network ([`super::ranged`] drives it; [`super::ramp`]
//! decides how many connections work at once).
//!
//! A plan covers only the gaps of what is already in the partial
//! ([`Extents::missing`]): nothing finished is asked for again. Gaps are
//! split evenly until there is one piece per connection, never below a
//! minimum (a request costs a round trip), and are fetched lowest offset
//! first, so the hash's frontier (the partial's contiguous prefix) moves
//! while the rest arrives. A [`Schedule`] hands the pieces to connections,
//! takes back the rest of one that broke (from the byte where it stopped,
//! which the assembly has recorded), and, once none is left, splits the
//! largest rest still running so a fast connection does not sit idle while
//! a slow one finishes alone.
//!
//! Separate connections: the shared client speaks HTTP/2 where the server
//! offers it, and its pool would put every range on one connection as
//! streams, which a per-connection cap throttles as one. Ranged fetches go
//! through a second client built like the shared one (same TLS, proxy and
//! `resolve` settings, see `clients::Http::new`) plus `.http1_only()`: an
//! HTTP/1.1 request in flight holds its connection, so N pieces at once
//! are N TCP connections, and finished ones go back to the pool
//! (`pool_max_idle_per_host`) for the next piece. A per-host semaphore
//! (issue 23's promise 5, default 16) bounds them across a pull's layers.

use std::collections::VecDeque;
use std::ops::Range;

use crate::stevedore::store::extents::Extents;

/// How a call fetches big blobs: a session's setting
/// (`tank_cache_set_connections`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Connections for one blob at most; 1 is the single stream.
    pub connections: usize,
    /// Connections a pull holds to one host at once, its layers' and their
    /// ranges' together: a 50-layer image does not open 200.
    pub per_host: usize,
    /// Blobs smaller than this go over one connection: the ranges'
    /// extra requests cost more than they win.
    pub threshold: u64,
    /// No piece is made smaller than this by splitting.
    pub min_piece: u64,
    /// Nor left larger than this: the hash runs only over the contiguous
    /// prefix, so with one piece per connection, all but the first would
    /// be hashed after the last byte arrived (3/4 of the blob, with 4);
    /// with pieces handed out in order, the frontier follows the
    /// connections at most about a piece per connection behind. Each piece
    /// costs a request's round trip: the bench is to tune it.
    pub max_piece: u64,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            connections: 4,
            per_host: 16,
            threshold: 64 << 20,
            min_piece: 8 << 20,
            max_piece: 32 << 20,
        }
    }
}

/// Pieces a plan makes at most (besides one per gap): a blob of a
/// terabyte is still a few thousand requests, and its plan a few hundred
/// KiB.
const MAX_PIECES: u64 = 4096;

/// What to fetch, and over how many connections at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// In order of offset; empty when the blob is all there.
    pub pieces: Vec<Range<u64>>,
    /// 1: one stream, the pieces one after the other.
    pub connections: usize,
}

/// The plan for a blob of `size` bytes of which `finished` is in the
/// partial already.
pub fn plan(size: u64, finished: &Extents, settings: &Settings) -> Plan {
    let gaps = finished.missing(size);
    if settings.connections <= 1 || size < settings.threshold {
        return Plan {
            pieces: gaps,
            connections: 1,
        };
    }
    let min = settings.min_piece.max(1);
    // A size from a manifest or a server can be anything: past
    // MAX_PIECES × max_piece, pieces grow instead of their number.
    let missing: u64 = gaps.iter().map(|g| g.end - g.start).sum();
    let max = settings
        .max_piece
        .max(min)
        .max(missing.div_ceil(MAX_PIECES));
    let pieces = split(&gaps, settings.connections, min, max);
    let connections = settings.connections.min(pieces.len()).max(1);
    Plan {
        pieces,
        connections,
    }
}

/// `gaps` cut into pieces no larger than `max`, and more until there are
/// `want` or as near as `min` allows: each gap into equal parts (the
/// largest parts are cut first), in order of offset.
fn split(gaps: &[Range<u64>], want: usize, min: u64, max: u64) -> Vec<Range<u64>> {
    let len = |g: &Range<u64>| g.end - g.start;
    let mut parts: Vec<u64> = gaps.iter().map(|g| len(g).div_ceil(max)).collect();
    let mut count = parts.iter().sum::<u64>() as usize;
    while count < want {
        // The gap whose parts are largest, if cutting it once more leaves
        // parts no smaller than `min`.
        let best = (0..gaps.len())
            .filter(|&i| len(&gaps[i]) / (parts[i] + 1) >= min)
            .max_by_key(|&i| len(&gaps[i]) / parts[i]);
        let Some(i) = best else { break };
        parts[i] += 1;
        count += 1;
    }
    let mut pieces = Vec::with_capacity(count);
    for (gap, &n) in gaps.iter().zip(&parts) {
        // The first `extra` parts get one byte more: sizes that do not
        // divide leave no byte out.
        let (each, extra) = (len(gap) / n, len(gap) % n);
        let mut at = gap.start;
        for k in 0..n {
            let end = at + each + u64::from(k < extra);
            pieces.push(at..end);
            at = end;
        }
        debug_assert_eq!(at, gap.end);
    }
    pieces
}

/// The `Range` header value asking for `range`.
pub fn range_header(range: &Range<u64>) -> String {
    format!("bytes={}-{}", range.start, range.end - 1)
}

/// A 206's `Content-Range: bytes FIRST-LAST/SIZE`, as numbers; `SIZE`
/// may be `*` (not known to the server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    pub first: u64,
    pub last: u64,
    pub total: Option<u64>,
}

impl ContentRange {
    pub fn parse(value: &str) -> Option<ContentRange> {
        let rest = value.trim().strip_prefix("bytes ")?;
        let (span, total) = rest.split_once('/')?;
        let (first, last) = span.split_once('-')?;
        let total = match total.trim() {
            "*" => None,
            n => Some(n.parse().ok()?),
        };
        Some(ContentRange {
            first: first.trim().parse().ok()?,
            last: last.trim().parse().ok()?,
            total,
        })
    }

    /// Whether this is the answer to an open-ended request from `from`
    /// of a blob of `size` bytes, when known: the bytes start there, and
    /// go to the end when the server says where that is.
    pub fn answers_from(&self, from: u64, size: Option<u64>) -> bool {
        let to_the_end = self
            .total
            .map_or(true, |t| self.last.checked_add(1) == Some(t));
        let same_size = match (self.total, size) {
            (Some(t), Some(s)) => t == s,
            _ => true,
        };
        self.first == from && to_the_end && same_size
    }
}

/// Whether a 206's `Content-Range` is the answer to a request for
/// `asked` (an open-ended request asks up to the end of the blob) of a
/// blob of `size` bytes, when known: the bytes are exactly those, and the
/// blob is that long, as the server says. Anything else is a server not
/// to take ranges from.
pub fn content_range_matches(value: &str, asked: &Range<u64>, size: Option<u64>) -> bool {
    let Some(ContentRange {
        first,
        last,
        total: Some(total),
    }) = ContentRange::parse(value)
    else {
        return false;
    };
    let end = asked.end.min(total);
    size.map_or(true, |s| s == total) && first == asked.start && last.checked_add(1) == Some(end)
}

/// A piece some connection is fetching.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Running {
    /// The next byte to arrive.
    next: u64,
    /// Its end; moved down when its tail is handed to another connection.
    end: u64,
}

/// Where a connection's task stands.
pub type TaskId = usize;

/// What to do with a chunk that arrived for a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Bytes of the chunk, from its start, that are the task's to write
    /// (at the offset it arrived for); the rest is another task's now.
    pub keep: u64,
    /// The task's piece is whole: stop reading this response.
    pub done: bool,
}

/// The pieces of a plan handed to connections as they become free.
#[derive(Debug)]
pub struct Schedule {
    /// In order of offset: the lowest is handed out first.
    pending: VecDeque<Range<u64>>,
    running: Vec<Option<Running>>,
    min_piece: u64,
}

impl Schedule {
    pub fn new(plan: &Plan, settings: &Settings) -> Schedule {
        Schedule {
            pending: plan.pieces.iter().cloned().collect(),
            running: Vec::new(),
            min_piece: settings.min_piece.max(1),
        }
    }

    /// The next piece for a free connection: the lowest pending one, or
    /// else the back half of the largest rest still running, when both
    /// halves are at least the minimum. `None`: nothing left to start.
    pub fn next(&mut self) -> Option<(TaskId, Range<u64>)> {
        let piece = match self.pending.pop_front() {
            Some(p) => p,
            None => self.steal()?,
        };
        let running = Some(Running {
            next: piece.start,
            end: piece.end,
        });
        let id = match self.running.iter().position(Option::is_none) {
            Some(free) => {
                self.running[free] = running;
                free
            }
            None => {
                self.running.push(running);
                self.running.len() - 1
            }
        };
        Some((id, piece))
    }

    /// As [`Schedule::next`], for a connection that works alone from now
    /// on: the pending pieces that follow the lowest without a gap, as one
    /// (one request for the rest, not a round trip and a drained socket
    /// per piece).
    pub fn next_alone(&mut self) -> Option<(TaskId, Range<u64>)> {
        let mut merged = self.pending.pop_front()?;
        while let Some(p) = self.pending.front().filter(|p| p.start == merged.end) {
            merged.end = p.end;
            self.pending.pop_front();
        }
        self.pending.push_front(merged);
        self.next()
    }

    /// As [`Schedule::next`], but a pending piece longer than `max` is
    /// cut: its first `max` bytes are handed out, the rest stays first in
    /// line. (A trial asks for no more than it needs to measure.)
    pub fn next_up_to(&mut self, max: u64) -> Option<(TaskId, Range<u64>)> {
        let max = max.max(1);
        if self.pending.is_empty() {
            let tail = self.steal()?;
            self.pending.push_back(tail);
        }
        if let Some(front) = self.pending.front_mut() {
            if front.end - front.start > max {
                let cut = front.start + max;
                let head = front.start..cut;
                front.start = cut;
                self.pending.push_front(head);
            }
        }
        self.next()
    }

    fn steal(&mut self) -> Option<Range<u64>> {
        let task = self
            .running
            .iter_mut()
            .flatten()
            .filter(|t| t.end - t.next >= 2 * self.min_piece)
            .max_by_key(|t| t.end - t.next)?;
        let mid = task.next + (task.end - task.next) / 2;
        let tail = mid..task.end;
        task.end = mid;
        Some(tail)
    }

    /// `len` bytes arrived for task `id` at its next byte.
    pub fn received(&mut self, id: TaskId, len: u64) -> Received {
        let Some(task) = self.running.get_mut(id).and_then(Option::as_mut) else {
            return Received {
                keep: 0,
                done: true,
            };
        };
        let keep = len.min(task.end - task.next);
        task.next += keep;
        let done = task.next == task.end;
        if done {
            self.running[id] = None;
        }
        Received { keep, done }
    }

    /// Task `id`'s response ended before its piece did: the rest, from
    /// the byte where it stopped, is pending again, first in line if it is
    /// the lowest.
    pub fn broke(&mut self, id: TaskId) {
        let Some(task) = self.running.get_mut(id).and_then(Option::take) else {
            return;
        };
        if task.next < task.end {
            let at = self.pending.partition_point(|p| p.start < task.next);
            self.pending.insert(at, task.next..task.end);
        }
    }

    /// Nothing pending and nothing running: every piece arrived.
    pub fn is_finished(&self) -> bool {
        self.pending.is_empty() && self.running.iter().all(Option::is_none)
    }
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn covers(pieces: &[Range<u64>], gaps: &[Range<u64>]) {
        let mut all = Extents::new();
        for p in pieces {
            assert!(!p.is_empty());
            all.insert(p.clone());
        }
        assert_eq!(all.ranges(), gaps, "pieces are the gaps, no more, no less");
        let total: u64 = pieces.iter().map(|p| p.end - p.start).sum();
        let gap_total: u64 = gaps.iter().map(|g| g.end - g.start).sum();
        assert_eq!(total, gap_total, "pieces overlap");
        assert!(
            pieces.windows(2).all(|w| w[0].end <= w[1].start),
            "in order"
        );
    }

    #[test]
    fn below_the_threshold_or_one_connection_is_one_stream() {
        let s = Settings::default();
        let p = plan(64 * MIB - 1, &Extents::new(), &s);
        assert_eq!(p.connections, 1);
        assert_eq!(p.pieces, vec![0..64 * MIB - 1]);
        let one = Settings {
            connections: 1,
            ..s
        };
        let p = plan(GIB, &Extents::prefix(100), &one);
        assert_eq!(p.connections, 1);
        assert_eq!(p.pieces, vec![100..GIB], "from where the partial stops");
        assert!(plan(0, &Extents::new(), &s).pieces.is_empty());
    }

    const GIB: u64 = 1 << 30;

    /// One piece per connection at most, for the tests of splitting.
    fn unbounded() -> Settings {
        Settings {
            max_piece: u64::MAX,
            ..Settings::default()
        }
    }

    #[test]
    fn a_size_that_does_not_divide_leaves_no_byte_out() {
        let s = unbounded();
        let size = GIB + 3;
        let p = plan(size, &Extents::new(), &s);
        assert_eq!(p.connections, 4);
        assert_eq!(p.pieces.len(), 4);
        covers(&p.pieces, &[0..size]);
        let lens: Vec<u64> = p.pieces.iter().map(|r| r.end - r.start).collect();
        assert!(lens.iter().max().unwrap() - lens.iter().min().unwrap() <= 1);
    }

    #[test]
    fn a_finished_prefix_and_extents_are_not_asked_for_again() {
        let s = unbounded();
        let mut done = Extents::prefix(GIB / 2);
        done.insert(3 * GIB / 4..3 * GIB / 4 + 10 * MIB);
        let p = plan(GIB, &done, &s);
        covers(&p.pieces, &done.missing(GIB));
        assert_eq!(p.pieces.len(), 4);
        assert_eq!(p.connections, 4);
        assert!(plan(GIB, &Extents::prefix(GIB), &s).pieces.is_empty());
    }

    #[test]
    fn pieces_are_never_cut_below_the_minimum() {
        let s = Settings::default();
        // 70 MiB over 4 connections: 17.5 MiB each, above 8 MiB.
        let p = plan(70 * MIB, &Extents::new(), &s);
        assert_eq!(p.pieces.len(), 4);
        // Only 12 MiB missing: one piece, one connection.
        let p = plan(70 * MIB, &Extents::prefix(58 * MIB), &s);
        assert_eq!(p.pieces, vec![58 * MIB..70 * MIB]);
        assert_eq!(p.connections, 1);
        // 20 MiB missing: two pieces of 10.
        let p = plan(70 * MIB, &Extents::prefix(50 * MIB), &s);
        assert_eq!(p.pieces, vec![50 * MIB..60 * MIB, 60 * MIB..70 * MIB]);
        assert_eq!(p.connections, 2);
        // More gaps than connections: each is a piece, none merged over
        // finished bytes.
        let mut holes = Extents::new();
        for k in 0..10 {
            holes.insert(k * 10 * MIB..k * 10 * MIB + 9 * MIB);
        }
        let p = plan(100 * MIB, &holes, &s);
        assert_eq!(p.pieces.len(), 10);
        assert_eq!(p.connections, 4);
        covers(&p.pieces, &holes.missing(100 * MIB));
    }

    #[test]
    fn big_gaps_are_cut_into_pieces_no_larger_than_the_maximum() {
        let s = Settings::default();
        let p = plan(GIB + 1, &Extents::prefix(1), &s);
        assert_eq!(p.connections, 4);
        assert_eq!(p.pieces.len(), 32);
        covers(&p.pieces, &[1..GIB + 1]);
        assert!(p.pieces.iter().all(|r| r.end - r.start == 32 * MIB));
        let p = plan(GIB - 1, &Extents::new(), &s);
        assert_eq!(p.pieces.len(), 32);
        assert!(p.pieces.iter().all(|r| r.end - r.start <= 32 * MIB));
        covers(&p.pieces, &[0..GIB - 1]);
    }

    #[test]
    fn an_absurd_size_makes_a_bounded_plan() {
        let s = Settings::default();
        let p = plan(1 << 62, &Extents::new(), &s);
        assert!(p.pieces.len() as u64 <= MAX_PIECES, "{}", p.pieces.len());
        covers(&p.pieces, &[0..1 << 62]);
        let p = plan(u64::MAX, &Extents::prefix(1), &s);
        assert!(p.pieces.len() as u64 <= MAX_PIECES + 1);
        covers(&p.pieces, &[1..u64::MAX]);
    }

    #[test]
    fn content_range_must_answer_exactly_what_was_asked() {
        let size = Some(1000);
        assert!(content_range_matches("bytes 0-999/1000", &(0..1000), size));
        assert!(content_range_matches(
            "bytes 100-199/1000",
            &(100..200),
            size
        ));
        // Open-ended: up to the end, whatever the blob's size.
        assert!(content_range_matches(
            "bytes 0-999/1000",
            &(0..u64::MAX),
            None
        ));
        assert!(!content_range_matches(
            "bytes 0-998/1000",
            &(0..u64::MAX),
            None
        ));
        assert!(!content_range_matches("bytes 0-999/1001", &(0..1000), size));
        assert!(!content_range_matches("bytes 1-999/1000", &(0..1000), size));
        assert!(!content_range_matches(
            "bytes 100-299/1000",
            &(100..200),
            size
        ));
        assert!(!content_range_matches("bytes */1000", &(0..1000), size));
        assert!(!content_range_matches("bytes 0-999/*", &(0..1000), size));
        assert!(!content_range_matches("", &(0..1000), size));
        assert_eq!(range_header(&(100..200)), "bytes=100-199");
    }

    /// A 400-byte blob over 4 connections, pieces of 100, none cut below 10.
    fn four_pieces_of_100() -> Schedule {
        let s = Settings {
            min_piece: 10,
            threshold: 0,
            ..Settings::default()
        };
        Schedule::new(&plan(400, &Extents::new(), &s), &s)
    }

    #[test]
    fn a_broken_piece_is_asked_again_from_where_it_stopped() {
        let mut sched = four_pieces_of_100();
        let (a, ra) = sched.next().unwrap();
        let (b, rb) = sched.next().unwrap();
        assert_eq!((ra.clone(), rb.clone()), (0..100, 100..200));
        assert_eq!(
            sched.received(a, 30),
            Received {
                keep: 30,
                done: false
            }
        );
        sched.broke(a);
        // The rest of the lowest piece goes first, before 200..300.
        let (a2, ra2) = sched.next().unwrap();
        assert_eq!(ra2, 30..100);
        assert_eq!(
            sched.received(a2, 70),
            Received {
                keep: 70,
                done: true
            }
        );
        assert_eq!(
            sched.received(b, 100),
            Received {
                keep: 100,
                done: true
            }
        );
        assert!(!sched.is_finished());
        let (c, rc) = sched.next().unwrap();
        let (d, rd) = sched.next().unwrap();
        assert_eq!((rc, rd), (200..300, 300..400));
        sched.received(c, 100);
        sched.received(d, 100);
        assert!(sched.next().is_none());
        assert!(sched.is_finished());
    }

    #[test]
    fn a_connection_alone_takes_the_pending_pieces_that_follow_as_one() {
        let mut sched = four_pieces_of_100();
        let (a, _) = sched.next().unwrap();
        let (b, rb) = sched.next().unwrap();
        assert_eq!(rb, 100..200);
        sched.received(a, 100);
        let (_, rest) = sched.next_alone().unwrap();
        assert_eq!(rest, 200..400, "what follows, as one");
        sched.received(b, 40);
        sched.broke(b);
        let (_, again) = sched.next_alone().unwrap();
        assert_eq!(
            again,
            140..200,
            "a broken rest is not merged over a running piece"
        );
    }

    #[test]
    fn a_trial_takes_only_the_front_of_the_next_piece() {
        let mut sched = four_pieces_of_100();
        let (a, _) = sched.next().unwrap();
        let (b, rb) = sched.next_up_to(30).unwrap();
        assert_eq!(rb, 100..130);
        let (_, short) = sched.next_up_to(500).unwrap();
        assert_eq!(short, 130..200, "the rest of the cut piece, first in line");
        sched.received(a, 100);
        sched.received(b, 30);
        let (c, rest) = sched.next_alone().unwrap();
        assert_eq!(rest, 200..400);
        // Nothing pending: the tail taken from a running piece is cut too.
        let (_, tail) = sched.next_up_to(30).unwrap();
        assert_eq!(tail, 300..330);
        let (_, after) = sched.next().unwrap();
        assert_eq!(after, 330..400, "what was not handed out stays pending");
        assert_eq!(
            sched.received(c, 200),
            Received {
                keep: 100,
                done: true
            }
        );
    }

    #[test]
    fn a_free_connection_takes_half_of_the_largest_rest() {
        let s = Settings {
            connections: 2,
            per_host: 16,
            threshold: 0,
            min_piece: 10,
            max_piece: 100,
        };
        let p = plan(200, &Extents::new(), &s);
        let mut sched = Schedule::new(&p, &s);
        let (a, _) = sched.next().unwrap();
        let (b, _) = sched.next().unwrap();
        sched.received(a, 100);
        sched.received(b, 20);
        // b has 80 left: a takes its back half.
        let (a2, ra2) = sched.next().unwrap();
        assert_eq!(ra2, 160..200);
        // b's response goes on past its new end: the rest is a2's.
        assert_eq!(
            sched.received(b, 50),
            Received {
                keep: 40,
                done: true
            }
        );
        sched.received(a2, 25);
        // 15 left is less than two minimum pieces: not split.
        assert!(sched.next().is_none());
        sched.received(a2, 15);
        assert!(sched.is_finished());
    }
}
