//! Sparklines: a series as bar characters, newest sample at the right.

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The newest `width` samples as bar characters scaled to `max`; gaps (NaN) print as spaces.
pub fn sparkline(
    values: impl DoubleEndedIterator<Item = f32> + ExactSizeIterator,
    width: usize,
    max: f32,
) -> String {
    let skip = values.len().saturating_sub(width);
    let mut out: String = values
        .skip(skip)
        .map(|v| {
            if !v.is_finite() || max <= 0.0 {
                ' '
            } else {
                let level = ((v / max) * (BARS.len() as f32 - 1.0))
                    .round()
                    .clamp(0.0, 7.0);
                BARS[level as usize]
            }
        })
        .collect();
    // Right-align so the newest sample is always in the same column.
    let pad = width.saturating_sub(out.chars().count());
    out.insert_str(0, &" ".repeat(pad));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_is_right_aligned_and_scaled() {
        assert_eq!(sparkline([0.0, 10.0].into_iter(), 4, 10.0), "  ▁█");
        assert_eq!(sparkline([1.0, 2.0, 3.0].into_iter(), 2, 3.0), "▆█");
    }
}
