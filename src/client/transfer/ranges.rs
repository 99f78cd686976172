//! Sets of byte ranges: what a partial file already holds, and what is
//! still missing. Half-open `[start, end)`, kept sorted and merged.

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeSet {
    ranges: Vec<(u64, u64)>,
}

impl RangeSet {
    pub fn new() -> RangeSet {
        RangeSet::default()
    }

    /// From possibly unsorted, overlapping ranges; empty ones are dropped.
    pub fn from_ranges(ranges: impl IntoIterator<Item = (u64, u64)>) -> RangeSet {
        let mut set = RangeSet::new();
        for (s, e) in ranges {
            set.insert(s, e);
        }
        set
    }

    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }

    pub fn insert(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        // Fast path: appending to (or extending) the last range, the common case.
        if let Some(last) = self.ranges.last_mut() {
            if start >= last.0 && start <= last.1 {
                last.1 = last.1.max(end);
                return;
            }
        }
        let (mut s, mut e) = (start, end);
        let mut out = Vec::with_capacity(self.ranges.len() + 1);
        let mut placed = false;
        for &(a, b) in &self.ranges {
            if b < s {
                out.push((a, b));
            } else if a > e {
                if !placed {
                    out.push((s, e));
                    placed = true;
                }
                out.push((a, b));
            } else {
                s = s.min(a);
                e = e.max(b);
            }
        }
        if !placed {
            out.push((s, e));
        }
        self.ranges = out;
    }

    /// The end of the range that holds `offset`, if one does.
    pub fn run_end(&self, offset: u64) -> Option<u64> {
        self.ranges
            .iter()
            .find(|(a, b)| *a <= offset && offset < *b)
            .map(|(_, b)| *b)
    }

    pub fn total(&self) -> u64 {
        self.ranges.iter().map(|(a, b)| b - a).sum()
    }

    /// What `[0, size)` lacks.
    pub fn missing(&self, size: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut at = 0;
        for &(a, b) in &self.ranges {
            let a = a.min(size);
            if a > at {
                out.push((at, a));
            }
            at = at.max(b.min(size));
        }
        if at < size {
            out.push((at, size));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_and_reports_gaps() {
        let mut s = RangeSet::new();
        s.insert(10, 20);
        s.insert(30, 40);
        s.insert(20, 25);
        assert_eq!(s.ranges(), &[(10, 25), (30, 40)]);
        s.insert(0, 5);
        assert_eq!(s.ranges(), &[(0, 5), (10, 25), (30, 40)]);
        s.insert(4, 31);
        assert_eq!(s.ranges(), &[(0, 40)]);
        s.insert(50, 50);
        assert_eq!(s.total(), 40);
        assert_eq!(s.missing(60), vec![(40, 60)]);
        assert_eq!(s.run_end(39), Some(40));
        assert_eq!(s.run_end(40), None);
        let gaps = RangeSet::from_ranges([(5, 10), (20, 30)]).missing(25);
        assert_eq!(gaps, vec![(0, 5), (10, 20)]);
        assert_eq!(RangeSet::new().missing(7), vec![(0, 7)]);
    }
}
