//! Plain text every layer writes the same way: durations, ages, metric values, and text cut or
//! wrapped to a width. A missing datapoint (NaN) prints as "—". Imports nothing of the crate.

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

/// The last `n` characters of `s` (all of it when shorter).
pub fn tail(s: &str, n: usize) -> &str {
    let skip = s.chars().count().saturating_sub(n);
    s.char_indices().nth(skip).map_or("", |(at, _)| &s[at..])
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

/// An instance name cut to `width` in the middle: its end (a launched instance's run suffix)
/// tells it apart from its siblings, so that end is kept.
pub fn fit_name(s: &str, width: usize) -> String {
    let len = s.chars().count();
    if len <= width {
        return s.to_string();
    }
    if width < 4 {
        return fit(s, width);
    }
    let keep_end = ((width - 1) / 2).min(5);
    let head: String = s.chars().take(width - 1 - keep_end).collect();
    format!("{head}…{}", tail(s, keep_end))
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
    fn fit_and_tail_count_characters() {
        assert_eq!(fit("db-replica-1", 6), "db-re…");
        assert_eq!(tail("i-0cb435c8", 4), "35c8");
        assert_eq!(fit_name("db-replica-0e5c", 13), "db-repl…-0e5c");
        assert_eq!(fit_name("db-replica-0e5c", 12), "db-rep…-0e5c");
        assert_eq!(fit_name("db-replica-1", 13), "db-replica-1");
        assert_eq!(fit_name("web-3", 3), "we…");
        assert_eq!(tail("ab", 4), "ab");
        assert_eq!(tail("東京1a", 2), "1a");
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
