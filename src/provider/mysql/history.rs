//! Each replica's lag over time when it is read over MySQL: one figure a minute (the largest
//! read in it), on the same one-minute grid as the metrics' series, so a sparkline reads the
//! same whichever source drew it.

use std::collections::HashMap;

use crate::domain::TimeSeries;

/// A minute of the grid, and the lags kept per instance.
const MINUTE_SECS: i64 = 60;

#[derive(Debug, Default)]
pub struct LagHistory {
    /// Instance id → (minute, largest lag read in it), oldest first.
    minutes: HashMap<String, Vec<(i64, f32)>>,
}

impl LagHistory {
    /// Records `lag` (read at `now_secs`) for `id` and returns its last `capacity` minutes, a
    /// minute without a read as a gap.
    pub fn record(&mut self, id: &str, now_secs: i64, lag: f32, capacity: usize) -> TimeSeries {
        let minute = now_secs.div_euclid(MINUTE_SECS);
        let kept = self.minutes.entry(id.to_string()).or_default();
        match kept.last_mut() {
            Some((m, worst)) if *m == minute => *worst = worst.max(lag),
            _ => kept.push((minute, lag)),
        }
        let first = minute - capacity as i64 + 1;
        kept.retain(|(m, _)| *m >= first);
        let mut out = TimeSeries::new(capacity);
        for m in first..=minute {
            let v = kept
                .iter()
                .find(|(k, _)| *k == m)
                .map_or(f32::NAN, |(_, v)| *v);
            out.push(v);
        }
        out
    }

    /// Forgets instances no longer in the fleet.
    pub fn keep_only(&mut self, ids: &[&str]) {
        self.minutes.retain(|id, _| ids.contains(&id.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_figure_a_minute_the_largest_with_gaps_for_minutes_unread() {
        let mut h = LagHistory::default();
        let t = 1_000 * MINUTE_SECS;
        h.record("r", t, 2.0, 4);
        h.record("r", t + 10, 5.0, 4);
        let s = h.record("r", t + 20, 3.0, 4);
        assert_eq!(s.latest(), Some(5.0), "the largest in the minute");
        let s = h.record("r", t + 3 * MINUTE_SECS, 1.0, 4);
        let v: Vec<f32> = s.iter().collect();
        assert_eq!(v.len(), 4);
        assert_eq!((v[0], v[3]), (5.0, 1.0));
        assert!(v[1].is_nan() && v[2].is_nan(), "{v:?}");
        h.keep_only(&[]);
        assert_eq!(
            h.record("r", t + 3 * MINUTE_SECS, 7.0, 4)
                .iter()
                .filter(|v| v.is_finite())
                .count(),
            1
        );
    }
}
