//! What part of a representation a download request asks for: `Range` and
//! `If-Range` (RFC 9110 §13.1.5, §14), decided without any I/O.
//!
//! Choices where the RFC leaves room:
//! - A syntactically invalid `Range` (or a unit other than `bytes`) is ignored: 200, full body.
//! - Several ranges (`bytes=0-1,5-6`) are ignored too: 200 with the full body
//!   (allowed by §14.2), which every client handles; no multipart/byteranges.
//! - Any range on an empty representation is unsatisfiable (416): a 206 with
//!   zero bytes cannot be expressed in `Content-Range`.
//! - `If-Range` honours the Range only on a strong match of our ETag or an
//!   exact match of our Last-Modified date; anything else gets the full body.

use chrono::{DateTime, Utc};

/// A request's range, resolved against the representation's length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    /// 200: the whole representation.
    Full,
    /// 206: bytes `start..=end` (inclusive, `end < size`).
    Partial { start: u64, end: u64 },
    /// 416: nothing requested exists.
    Unsatisfiable,
}

impl Selection {
    /// Offset and length of the bytes to send for a representation of `size` bytes.
    pub fn span(self, size: u64) -> (u64, u64) {
        match self {
            Selection::Full => (0, size),
            Selection::Partial { start, end } => (start, end - start + 1),
            Selection::Unsatisfiable => (0, 0),
        }
    }
}

/// One syntactically valid `range-spec`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Spec {
    /// `first-` or `first-last`.
    From { first: u64, last: Option<u64> },
    /// `-suffix`.
    Suffix(u64),
}

/// Decides what to send for the `Range` header value `range` (None when
/// absent) against a representation of `size` bytes.
pub fn select(range: Option<&str>, size: u64) -> Selection {
    let Some(specs) = range.and_then(parse) else {
        return Selection::Full;
    };
    let [spec] = specs.as_slice() else {
        return Selection::Full;
    };
    if size == 0 {
        return Selection::Unsatisfiable;
    }
    match *spec {
        Spec::From { first, .. } if first >= size => Selection::Unsatisfiable,
        Spec::From { first, last } => Selection::Partial {
            start: first,
            end: last.map_or(size - 1, |l| l.min(size - 1)),
        },
        Spec::Suffix(0) => Selection::Unsatisfiable,
        Spec::Suffix(n) => Selection::Partial {
            start: size.saturating_sub(n),
            end: size - 1,
        },
    }
}

/// `bytes=spec[,spec]...`; None when the value is not a valid byte-ranges
/// specifier (the caller then ignores it).
fn parse(value: &str) -> Option<Vec<Spec>> {
    let (unit, set) = value.trim().split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return None;
    }
    let mut specs = Vec::new();
    // A recipient accepts and ignores empty list elements (RFC 9110 §5.6.1.2).
    for element in set.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (first, last) = element.split_once('-')?;
        let spec = if first.is_empty() {
            Spec::Suffix(digits(last)?)
        } else {
            let first = digits(first)?;
            let last = if last.is_empty() {
                None
            } else {
                Some(digits(last)?)
            };
            // `last < first` makes the whole header invalid (§14.1.1).
            if last.is_some_and(|l| l < first) {
                return None;
            }
            Spec::From { first, last }
        };
        specs.push(spec);
    }
    (!specs.is_empty()).then_some(specs)
}

/// A non-empty run of ASCII digits; values past u64 saturate, which keeps
/// their meaning (a first position past any file, a last position at its end).
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

/// Whether a `Range` may be honoured given the request's `If-Range` value:
/// yes without one, or when it names the current representation exactly.
/// `etag` is our strong entity tag, quotes included.
pub fn if_range_allows(if_range: Option<&str>, etag: &str, last_modified: DateTime<Utc>) -> bool {
    let Some(value) = if_range.map(str::trim) else {
        return true;
    };
    if value.starts_with('"') || value.starts_with("W/") {
        // A weak tag never matches: If-Range requires the strong comparison.
        return value == etag;
    }
    // An HTTP date matches only when equal to Last-Modified (which has second precision).
    DateTime::parse_from_rfc2822(value)
        .map(|d| d.timestamp() == last_modified.timestamp())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(v: &str, size: u64) -> Selection {
        select(Some(v), size)
    }

    fn part(start: u64, end: u64) -> Selection {
        Selection::Partial { start, end }
    }

    #[test]
    fn single_ranges() {
        assert_eq!(select(None, 10), Selection::Full);
        assert_eq!(sel("bytes=0-0", 10), part(0, 0));
        assert_eq!(sel("bytes=9-9", 10), part(9, 9));
        assert_eq!(sel("bytes=2-", 10), part(2, 9));
        assert_eq!(sel("bytes=-3", 10), part(7, 9));
        assert_eq!(sel("bytes=-30", 10), part(0, 9));
        assert_eq!(sel("bytes=5-500", 10), part(5, 9));
        assert_eq!(sel("Bytes = 1-2 ", 10), part(1, 2));
        assert_eq!(sel("bytes=,1-2,", 10), part(1, 2));
    }

    #[test]
    fn unsatisfiable() {
        assert_eq!(sel("bytes=10-", 10), Selection::Unsatisfiable);
        assert_eq!(sel("bytes=10-20", 10), Selection::Unsatisfiable);
        assert_eq!(sel("bytes=-0", 10), Selection::Unsatisfiable);
        assert_eq!(sel("bytes=0-", 0), Selection::Unsatisfiable);
        assert_eq!(sel("bytes=-5", 0), Selection::Unsatisfiable);
        assert_eq!(
            sel("bytes=99999999999999999999999-", 10),
            Selection::Unsatisfiable
        );
    }

    #[test]
    fn invalid_is_ignored() {
        for v in [
            "bytes",
            "bytes=",
            "bytes=,",
            "bytes=a-b",
            "bytes=5-2",
            "bytes=-",
            "bytes=1-2-3",
            "bytes=+1-2",
            "bytes=0x1-2",
            "items=0-1",
            "0-1",
            "bytes=0-1;x",
        ] {
            assert_eq!(sel(v, 10), Selection::Full, "{v}");
        }
    }

    #[test]
    fn several_ranges_get_the_full_body() {
        assert_eq!(sel("bytes=0-1,5-6", 10), Selection::Full);
        assert_eq!(sel("bytes=0-1, -2", 10), Selection::Full);
    }

    #[test]
    fn multi_gigabyte_offsets() {
        let size = 5 * (1u64 << 30) + 7;
        assert_eq!(
            sel("bytes=4294967296-", size),
            part(4_294_967_296, size - 1)
        );
        assert_eq!(sel("bytes=-1", size), part(size - 1, size - 1));
        assert_eq!(
            part(4_294_967_296, size - 1).span(size),
            (4_294_967_296, size - 4_294_967_296)
        );
        assert_eq!(
            sel(&format!("bytes=0-{}", u64::MAX), size),
            part(0, size - 1)
        );
        assert_eq!(
            sel("bytes=0-99999999999999999999999", size),
            part(0, size - 1)
        );
    }

    #[test]
    fn if_range() {
        let lm = DateTime::parse_from_rfc3339("2024-05-01T10:20:30.456Z")
            .unwrap()
            .with_timezone(&Utc);
        let etag = "\"abc\"";
        assert!(if_range_allows(None, etag, lm));
        assert!(if_range_allows(Some("\"abc\""), etag, lm));
        assert!(!if_range_allows(Some("\"abd\""), etag, lm));
        assert!(!if_range_allows(Some("W/\"abc\""), etag, lm));
        assert!(if_range_allows(
            Some("Wed, 01 May 2024 10:20:30 GMT"),
            etag,
            lm
        ));
        assert!(!if_range_allows(
            Some("Wed, 01 May 2024 10:20:31 GMT"),
            etag,
            lm
        ));
        assert!(!if_range_allows(Some("yesterday"), etag, lm));
    }
}
