//! Fixed-capacity time series: the newest `capacity` samples of one metric, oldest first.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeSeries {
    capacity: usize,
    values: VecDeque<f32>,
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
    fn zero_capacity_is_raised_to_one() {
        let mut s = TimeSeries::new(0);
        s.push(1.0);
        s.push(2.0);
        assert_eq!(s.len(), 1);
        assert_eq!(s.latest(), Some(2.0));
    }
}
