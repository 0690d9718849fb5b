//! `Range: bytes=…` as the CDN reads it, and the ways it may answer one
//! ([`CdnRanges`]). Like S3 it serves one range at most:
//! a multi-range or malformed header is ignored (the whole blob, 200), as
//! RFC 9110 allows.

/// How the CDN answers a `Range` request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CdnRanges {
    /// 206 with the range asked for and its `Content-Range`; 416 for a
    /// range that starts past the end.
    #[default]
    Honour,
    /// 200 and the whole blob, as servers without range support do.
    Ignore,
    /// 206 with the bytes asked for, but a `Content-Range` shifted one byte
    /// on (`bytes a+1-b+1/len` for `bytes=a-b`).
    WrongContentRange,
    /// 416 to every request that carries `Range`, even `bytes=0-`, as some
    /// servers do; 200 and the whole blob without one.
    Refuse,
}

impl CdnRanges {
    pub fn name(self) -> &'static str {
        match self {
            CdnRanges::Honour => "honour",
            CdnRanges::Ignore => "ignore",
            CdnRanges::WrongContentRange => "wrong-content-range",
            CdnRanges::Refuse => "refuse",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        ALL.into_iter().find(|r| r.name() == name)
    }

    /// As kept in an atomic, for switching at run time.
    pub(super) fn index(self) -> u8 {
        ALL.iter().position(|r| *r == self).unwrap_or(0) as u8
    }

    pub(super) fn from_index(index: u8) -> Self {
        ALL.get(usize::from(index)).copied().unwrap_or_default()
    }
}

const ALL: [CdnRanges; 4] = [
    CdnRanges::Honour,
    CdnRanges::Ignore,
    CdnRanges::WrongContentRange,
    CdnRanges::Refuse,
];

/// Every mode's name, for help and error texts.
pub const CDN_RANGES_NAMES: &str = "honour, ignore, wrong-content-range or refuse";

/// What a request's `Range` comes to against a blob of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Span {
    Whole,
    /// `first..=last`, both inside the blob.
    Part {
        first: u64,
        last: u64,
    },
    /// Starts at or past the end: 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// What a request's `Range` comes to against a blob of `len` bytes, as
/// `ranges` answers it.
pub(super) fn span_as(ranges: CdnRanges, range: Option<&str>, len: u64) -> Span {
    match (ranges, range) {
        (CdnRanges::Ignore, _) | (CdnRanges::Refuse, None) => Span::Whole,
        (CdnRanges::Refuse, Some(_)) => Span::Unsatisfiable,
        (CdnRanges::Honour | CdnRanges::WrongContentRange, range) => span(range, len),
    }
}

pub(super) fn span(range: Option<&str>, len: u64) -> Span {
    let Some(spec) = range.and_then(|r| r.trim().strip_prefix("bytes=")) else {
        return Span::Whole;
    };
    if spec.contains(',') {
        return Span::Whole;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Span::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        // `bytes=-N`: the last N bytes.
        return match b.parse::<u64>() {
            Ok(0) => Span::Unsatisfiable,
            Ok(_) if len == 0 => Span::Unsatisfiable,
            Ok(n) => Span::Part {
                first: len.saturating_sub(n),
                last: len - 1,
            },
            Err(_) => Span::Whole,
        };
    }
    let Ok(first) = a.parse::<u64>() else {
        return Span::Whole;
    };
    let last = match b {
        "" => None,
        b => match b.parse::<u64>() {
            Ok(last) if last >= first => Some(last),
            _ => return Span::Whole,
        },
    };
    if first >= len {
        return Span::Unsatisfiable;
    }
    Span::Part {
        first,
        last: last.map_or(len - 1, |l| l.min(len - 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_forms_a_client_sends() {
        let part = |first, last| Span::Part { first, last };
        assert_eq!(span(None, 10), Span::Whole);
        assert_eq!(span(Some("bytes=0-"), 10), part(0, 9));
        assert_eq!(span(Some("bytes=2-4"), 10), part(2, 4));
        assert_eq!(span(Some("bytes=2-400"), 10), part(2, 9));
        assert_eq!(span(Some("bytes=-3"), 10), part(7, 9));
        assert_eq!(span(Some("bytes=-30"), 10), part(0, 9));
        assert_eq!(span(Some("bytes=10-"), 10), Span::Unsatisfiable);
        assert_eq!(span(Some("bytes=0-"), 0), Span::Unsatisfiable);
        assert_eq!(span(Some("bytes=-0"), 10), Span::Unsatisfiable);
        assert_eq!(span(Some("bytes=0-1,4-5"), 10), Span::Whole);
        assert_eq!(span(Some("bytes=5-2"), 10), Span::Whole);
        assert_eq!(span(Some("items=0-1"), 10), Span::Whole);
        assert_eq!(span(Some("bytes=x-1"), 10), Span::Whole);
    }

    #[test]
    fn each_mode_reads_a_range_its_own_way() {
        let part = Span::Part { first: 2, last: 4 };
        let spans = |r| ALL.map(|mode| span_as(mode, r, 10));
        assert_eq!(
            spans(Some("bytes=2-4")),
            [part, Span::Whole, part, Span::Unsatisfiable]
        );
        assert_eq!(
            spans(Some("bytes=0-")),
            [
                Span::Part { first: 0, last: 9 },
                Span::Whole,
                Span::Part { first: 0, last: 9 },
                Span::Unsatisfiable
            ]
        );
        assert_eq!(spans(None), [Span::Whole; 4]);
        for mode in ALL {
            assert_eq!(CdnRanges::from_name(mode.name()), Some(mode));
            assert_eq!(CdnRanges::from_index(mode.index()), mode);
        }
    }
}
