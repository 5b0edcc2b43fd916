//! What dake says in English, put back in Japanese where it is shown: the journal, the
//! postmortem and a follower on another machine all keep the English, so the Japanese is
//! found by matching the text against the catalog's `[said]` templates (`"{name} is gone
//! already" = "{name} はもう存在しない"`). What a placeholder caught is matched again, so a
//! reason inside a refusal reads in Japanese too; names and figures match nothing and stay.

use std::borrow::Cow;
use std::sync::LazyLock;

use super::{CATALOG, Lang};

/// How deep a text may nest templates inside placeholders.
const MAX_DEPTH: usize = 6;
/// What separates the items of a list (a replica's findings, a step's notes).
const LIST_SEPARATOR: &str = "; ";
/// How a text no template says whole is said in parts, and what joins the parts in Japanese.
const SEPARATORS: [(&str, &str); 3] = [(LIST_SEPARATOR, "；"), (", ", "、"), (": ", "：")];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Part {
    Text(String),
    Slot(String),
}

#[derive(Debug)]
pub(super) struct Template {
    pub(super) en: Vec<Part>,
    pub(super) ja: Vec<Part>,
    /// The template's longest literal text: a text without it cannot match.
    anchor: String,
}

/// `"{a} is {b}"` as its literal texts and placeholders.
pub(super) fn parts(template: &str) -> Vec<Part> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|c| open + c) else {
            break;
        };
        if open > 0 {
            out.push(Part::Text(rest[..open].to_string()));
        }
        out.push(Part::Slot(rest[open + 1..close].to_string()));
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        out.push(Part::Text(rest.to_string()));
    }
    out
}

pub(super) fn literal_len(parts: &[Part]) -> usize {
    parts
        .iter()
        .map(|p| match p {
            Part::Text(t) => t.len(),
            Part::Slot(_) => 0,
        })
        .sum()
}

/// The catalog's templates, the most literal text first so the most specific one wins.
pub(super) static TEMPLATES: LazyLock<Vec<Template>> = LazyLock::new(|| {
    let mut all: Vec<Template> = CATALOG
        .get("said")
        .and_then(|p| p.as_table())
        .map(|t| {
            t.iter()
                .filter_map(|(en, ja)| {
                    let en = parts(en);
                    let anchor = en
                        .iter()
                        .filter_map(|p| match p {
                            Part::Text(t) => Some(t.clone()),
                            Part::Slot(_) => None,
                        })
                        .max_by_key(|t| t.len())
                        .unwrap_or_default();
                    Some(Template {
                        ja: parts(ja.as_str()?),
                        en,
                        anchor,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    all.sort_by_key(|t| std::cmp::Reverse(literal_len(&t.en)));
    all
});

/// `text`, said in English by dake, in `lang`.
pub fn said(lang: Lang, text: &str) -> Cow<'_, str> {
    if lang == Lang::En {
        return Cow::Borrowed(text);
    }
    translate(text, MAX_DEPTH).map_or(Cow::Borrowed(text), Cow::Owned)
}

fn translate(text: &str, depth: usize) -> Option<String> {
    if depth == 0 || text.trim().is_empty() {
        return None;
    }
    if let Some(word) = super::UI.get(text).and_then(|v| v.as_str()) {
        return Some(word.to_string());
    }
    let fixed = TEMPLATES
        .iter()
        .find(|t| matches!(t.en.as_slice(), [Part::Text(en)] if en == text));
    if let Some(t) = fixed {
        return Some(fill(t, &[], depth));
    }
    // A list whose every item is said here is said item by item: a template's last placeholder
    // would otherwise take the items after the first as one text ("instance {state}").
    for (en, ja) in &SEPARATORS[..2] {
        let items = split_outside_brackets(text, en);
        if items.len() < 2 {
            continue;
        }
        let said: Option<Vec<String>> = items.iter().map(|i| translate(i, depth - 1)).collect();
        if let Some(said) = said {
            return Some(said.join(ja));
        }
    }
    for t in TEMPLATES.iter() {
        if !text.contains(t.anchor.as_str()) {
            continue;
        }
        let mut caught = Vec::new();
        if catch(&t.en, text, &mut caught) {
            return Some(fill(t, &caught, depth));
        }
    }
    // Said of its parts: a list, or "what: why" where no template says the whole.
    for (en, ja) in SEPARATORS {
        let parts = split_outside_brackets(text, en);
        if parts.len() < 2 {
            continue;
        }
        let mut any = false;
        let items: Vec<String> = parts
            .into_iter()
            .map(|item| match translate(item, depth - 1) {
                Some(said) => {
                    any = true;
                    said
                }
                None => item.to_string(),
            })
            .collect();
        if any {
            return Some(items.join(ja));
        }
    }
    None
}

fn fill(t: &Template, caught: &[(&str, &str)], depth: usize) -> String {
    let mut out = String::new();
    for p in &t.ja {
        match p {
            Part::Text(s) => out.push_str(s),
            Part::Slot(name) => {
                let value = caught.iter().find(|(n, _)| n == name).map_or("", |c| c.1);
                match translate(value, depth - 1) {
                    Some(ja) => out.push_str(&ja),
                    None => out.push_str(value),
                }
            }
        }
    }
    out
}

/// Whether `text` is `parts`, each placeholder catching at least one character. Only the last
/// placeholder may catch a list outside brackets: the lists dake says come last or bracketed.
fn catch<'t, 'p>(parts: &'p [Part], text: &'t str, caught: &mut Vec<(&'p str, &'t str)>) -> bool {
    match parts {
        [] => text.is_empty(),
        [Part::Text(lit), rest @ ..] => text
            .strip_prefix(lit.as_str())
            .is_some_and(|t| catch(rest, t, caught)),
        [Part::Slot(name)] => {
            if text.is_empty() {
                return false;
            }
            caught.push((name, text));
            true
        }
        [Part::Slot(name), rest @ ..] => {
            let Some(Part::Text(next)) = rest.first() else {
                return false;
            };
            // A bracketed placeholder may catch a list: it ends where its bracket closes.
            let bracketed = next.starts_with(')');
            for (at, _) in text.match_indices(next.as_str()) {
                let value = &text[..at];
                if !bracketed && lists(value) {
                    break;
                }
                if value.is_empty() {
                    continue;
                }
                caught.push((name, value));
                if catch(rest, &text[at..], caught) {
                    return true;
                }
                caught.pop();
            }
            false
        }
    }
}

/// Whether `text` holds a list outside any brackets.
fn lists(text: &str) -> bool {
    split_outside_brackets(text, LIST_SEPARATOR).len() > 1
}

/// `text` split at each `separator` that no bracket encloses.
fn split_outside_brackets<'t>(text: &'t str, separator: &str) -> Vec<&'t str> {
    let mut out = Vec::new();
    let (mut depth, mut from) = (0i32, 0);
    for (at, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth <= 0 && at >= from && text[at..].starts_with(separator) {
            out.push(&text[from..at]);
            from = at + separator.len();
        }
    }
    out.push(&text[from..]);
    out
}
