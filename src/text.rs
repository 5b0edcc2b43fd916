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

/// Columns `s` takes on a terminal: a Japanese character takes two.
pub fn width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

/// The longest start of `s` that fits in `cols` columns, and the rest.
fn split_at_width(s: &str, cols: usize) -> (&str, &str) {
    let mut used = 0;
    for (at, c) in s.char_indices() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w > cols {
            return (&s[..at], &s[at..]);
        }
        used += w;
    }
    (s, "")
}

/// `s` padded with spaces to `cols` columns (wide characters counted as two).
pub fn pad(s: &str, cols: usize) -> String {
    format!("{s}{}", " ".repeat(cols.saturating_sub(width(s))))
}

/// `s` right-aligned in `cols` columns.
pub fn pad_left(s: &str, cols: usize) -> String {
    format!("{}{s}", " ".repeat(cols.saturating_sub(width(s))))
}

/// Breaks `s` into lines of at most `width` columns, at spaces where it can (Japanese, which
/// has none, anywhere); continuation lines start with `indent`.
pub fn wrap(s: &str, cols: usize, indent: &str) -> Vec<String> {
    let cols = cols.max(width(indent) + 8);
    let mut lines = Vec::new();
    let mut line = String::new();
    let fresh = |line: &str| line.is_empty() || line == indent;
    for word in s.split_whitespace() {
        if !fresh(&line) && width(&line) + 1 + width(word) > cols {
            lines.push(std::mem::replace(&mut line, indent.to_string()));
        }
        if !fresh(&line) {
            line.push(' ');
        }
        line.push_str(word);
        // A single word longer than the line (an ARN, a Japanese sentence) is cut into pieces.
        while width(&line) > cols {
            let (head, rest) = split_at_width(&line, cols);
            let (head, rest) = (head.to_string(), rest.to_string());
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

/// Cuts `s` to `cols` columns (a wide character counts two), marking the cut with an
/// ellipsis.
pub fn fit(s: &str, cols: usize) -> String {
    if width(s) <= cols {
        return s.to_string();
    }
    if cols == 0 {
        return String::new();
    }
    let (head, _) = split_at_width(s, cols - 1);
    format!("{head}…")
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
    fn wide_characters_count_two_columns() {
        assert_eq!(width("まるごと捨てる"), 14);
        assert_eq!(fit("まるごと捨てる", 8), "まるご…");
        assert_eq!(
            width(&fit("まるごと捨てる", 8)),
            7,
            "never over, one short at a wide edge"
        );
        assert_eq!(pad("起動", 6), "起動  ");
        assert_eq!(pad_left("起動", 6), "  起動");
        let lines = wrap("接続先設定変更はエンドポイントを切り替える", 10, "");
        assert!(lines.iter().all(|l| width(l) <= 10), "{lines:?}");
        assert_eq!(lines.concat(), "接続先設定変更はエンドポイントを切り替える");
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
