//! Number and text formatting shared by every pane. A missing datapoint (NaN) prints as "—".

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

fn present(v: Option<f32>) -> Option<f32> {
    v.filter(|v| v.is_finite())
}

pub fn ms(v: Option<f32>) -> String {
    match present(v) {
        None => "—".into(),
        Some(v) if v >= 1000.0 => format!("{:.1}s", v / 1000.0),
        Some(v) if v >= 10.0 => format!("{v:.0}ms"),
        Some(v) => format!("{v:.1}ms"),
    }
}

pub fn pct(v: Option<f32>) -> String {
    present(v).map_or_else(|| "—".into(), |v| format!("{v:.0}%"))
}

pub fn secs(v: f32) -> String {
    if !v.is_finite() {
        "—".into()
    } else if v >= 3600.0 {
        format!("{:.1}h", v / 3600.0)
    } else if v >= 100.0 {
        format!("{:.0}s", v)
    } else {
        format!("{v:.1}s")
    }
}

/// Whole seconds as "12s", "3m05s", "2h14m".
pub fn age(secs: i64) -> String {
    let s = secs.max(0);
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

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

/// Breaks `s` into lines of at most `width` characters, at spaces where it can; continuation
/// lines start with `indent`.
pub fn wrap(s: &str, width: usize, indent: &str) -> Vec<String> {
    let width = width.max(indent.chars().count() + 8);
    let mut lines = Vec::new();
    let mut line = String::new();
    let fresh = |line: &str| line.is_empty() || line == indent;
    for word in s.split_whitespace() {
        if !fresh(&line) && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::replace(&mut line, indent.to_string()));
        }
        if !fresh(&line) {
            line.push(' ');
        }
        line.push_str(word);
        // A single word longer than the line (an ARN, say) is cut into pieces.
        while line.chars().count() > width {
            let head: String = line.chars().take(width).collect();
            let rest: String = line.chars().skip(width).collect();
            lines.push(head);
            line = format!("{indent}{rest}");
        }
    }
    if !line.trim().is_empty() {
        lines.push(line);
    }
    lines
}

/// Cuts `s` to `width` characters, marking the cut with an ellipsis.
pub fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(width - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_like_an_operator_expects() {
        assert_eq!(ms(Some(640.4)), "640ms");
        assert_eq!(ms(Some(2345.0)), "2.3s");
        assert_eq!(ms(Some(f32::NAN)), "—");
        assert_eq!(pct(Some(35.4)), "35%");
        assert_eq!(secs(0.42), "0.4s");
        assert_eq!(age(185), "3m05s");
    }

    #[test]
    fn sparkline_is_right_aligned_and_scaled() {
        assert_eq!(sparkline([0.0, 10.0].into_iter(), 4, 10.0), "  ▁█");
        assert_eq!(sparkline([1.0, 2.0, 3.0].into_iter(), 2, 3.0), "▆█");
        assert_eq!(fit("db-replica-1", 6), "db-re…");
    }

    #[test]
    fn wrap_breaks_at_spaces_and_indents_continuations() {
        let lines = wrap(
            "RunInstances image=ami-1 type=c5.large subnet=subnet-2",
            24,
            "    ",
        );
        assert_eq!(
            lines,
            vec![
                "RunInstances image=ami-1",
                "    type=c5.large",
                "    subnet=subnet-2"
            ]
        );
        assert!(lines.iter().all(|l| l.chars().count() <= 24));
        let long = wrap("x".repeat(30).as_str(), 12, "  ");
        assert!(long.iter().all(|l| l.chars().count() <= 12), "{long:?}");
        assert_eq!(long.concat().replace(' ', ""), "x".repeat(30));
    }
}
