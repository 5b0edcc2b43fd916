//! Fixed-capacity time series: the newest `capacity` samples of one metric, oldest first.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// A missing datapoint is NaN, which JSON writes as `null`; reading `null` back gives NaN, so a
/// series (and the simulated fleet holding it) survives a round trip through a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "SeriesRepr")]
pub struct TimeSeries {
    capacity: usize,
    values: VecDeque<f32>,
}

#[derive(Deserialize)]
struct SeriesRepr {
    capacity: usize,
    values: Vec<Option<f32>>,
}

impl From<SeriesRepr> for TimeSeries {
    /// Through `new` and `push`, so what is read obeys the same bounds as what is made.
    fn from(repr: SeriesRepr) -> TimeSeries {
        let mut series = TimeSeries::new(repr.capacity);
        for v in repr.values {
            series.push(v.unwrap_or(f32::NAN));
        }
        series
    }
}

impl TimeSeries {
    pub fn new(capacity: usize) -> Self {
        // A zero-capacity series would silently drop every sample; one sample is the least useful size.
        let capacity = capacity.max(1);
        Self {
            capacity,
            values: VecDeque::with_capacity(capacity),
        }
    }

    pub fn push(&mut self, value: f32) {
        if self.values.len() == self.capacity {
            self.values.pop_front();
        }
        self.values.push_back(value);
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn latest(&self) -> Option<f32> {
        self.values.back().copied()
    }

    /// The sample `age` steps before the newest (0 is the newest).
    pub fn back(&self, age: usize) -> Option<f32> {
        let len = self.values.len();
        if age >= len {
            None
        } else {
            self.values.get(len - 1 - age).copied()
        }
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = f32> + ExactSizeIterator + '_ {
        self.values.iter().copied()
    }

    /// The newest `n` samples, oldest first.
    pub fn last_n(&self, n: usize) -> impl Iterator<Item = f32> + '_ {
        let skip = self.values.len().saturating_sub(n);
        self.values.iter().skip(skip).copied()
    }

    pub fn max(&self) -> Option<f32> {
        self.values
            .iter()
            .copied()
            .fold(None, |m, v| Some(m.map_or(v, |m: f32| m.max(v))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_newest_samples() {
        let mut s = TimeSeries::new(3);
        for v in 1..=5 {
            s.push(v as f32);
        }
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![3.0, 4.0, 5.0]);
        assert_eq!(s.latest(), Some(5.0));
        assert_eq!(s.back(2), Some(3.0));
        assert_eq!(s.back(3), None);
        assert_eq!(s.last_n(2).collect::<Vec<_>>(), vec![4.0, 5.0]);
        assert_eq!(s.max(), Some(5.0));
    }

    #[test]
    fn json_round_trip_keeps_gaps_as_nan() {
        let mut s = TimeSeries::new(3);
        for v in [1.5, f32::NAN, 2.25, 3.0] {
            s.push(v);
        }
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(text, r#"{"capacity":3,"values":[null,2.25,3.0]}"#);
        let back: TimeSeries = serde_json::from_str(&text).unwrap();
        assert_eq!(back.capacity(), 3);
        assert!(back.back(2).unwrap().is_nan());
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
    }

    #[test]
    fn zero_capacity_is_raised_to_one() {
        let mut s = TimeSeries::new(0);
        s.push(1.0);
        s.push(2.0);
        assert_eq!(s.len(), 1);
        assert_eq!(s.latest(), Some(2.0));
    }
}
