//! What dake says in English, put back in Japanese where it is shown: the journal, the
//! postmortem and a follower on another machine all keep the English, so the Japanese is
//! found by matching the text against the catalog's `[said]` templates (`"{name} is gone
//! already" = "{name} はもう存在しない"`). What a placeholder caught is matched again, so a
//! reason inside a refusal reads in Japanese too; names and figures match nothing and stay.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

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

fn literal_len(parts: &[Part]) -> usize {
    parts
        .iter()
        .map(|p| match p {
            Part::Text(t) => t.len(),
            Part::Slot(_) => 0,
        })
        .sum()
}

/// The catalog's `[said]` and `[foreign]` texts: the fixed ones by their English, and the
/// templates, the most literal text first so that of two equally good readings the more
/// specific template's is kept.
struct Said {
    fixed: HashMap<String, String>,
    templates: Vec<Template>,
}

static SAID: LazyLock<Said> = LazyLock::new(|| {
    let mut fixed = HashMap::new();
    let mut templates = Vec::new();
    let tables = ["said", "foreign"]
        .iter()
        .filter_map(|t| CATALOG.get(*t)?.as_table());
    for (en, ja) in tables.flat_map(|t| t.iter()) {
        let Some(ja) = ja.as_str() else { continue };
        let en = parts(en);
        if let [Part::Text(text)] = en.as_slice() {
            fixed.insert(text.clone(), ja.to_string());
            continue;
        }
        let anchor = en
            .iter()
            .filter_map(|p| match p {
                Part::Text(t) => Some(t.clone()),
                Part::Slot(_) => None,
            })
            .max_by_key(|t| t.len())
            .unwrap_or_default();
        templates.push(Template {
            ja: parts(ja),
            en,
            anchor,
        });
    }
    templates.sort_by_key(|t| std::cmp::Reverse(literal_len(&t.en)));
    Said { fixed, templates }
});

/// How many shown texts `said` keeps the Japanese of: a screen's worth many times over.
const CACHE_TEXTS: usize = 4096;

/// The Japanese of texts already said: the screen says the same lines frame after frame.
static CACHE: LazyLock<Mutex<HashMap<String, Option<String>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// `text`, said in English by dake, in `lang`.
pub fn said(lang: Lang, text: &str) -> Cow<'_, str> {
    if lang == Lang::En {
        return Cow::Borrowed(text);
    }
    let cached = CACHE.lock().ok().and_then(|c| c.get(text).cloned());
    let ja = match cached {
        Some(ja) => ja,
        None => {
            let ja = Saying::default().translate(text, MAX_DEPTH).map(|r| r.text);
            if let Ok(mut cache) = CACHE.lock() {
                if cache.len() >= CACHE_TEXTS {
                    cache.clear();
                }
                cache.insert(text.to_string(), ja.clone());
            }
            ja
        }
    };
    ja.map_or(Cow::Borrowed(text), Cow::Owned)
}

/// A line of `text` in `lang`, its indent kept (an indented call under its step, a tip under
/// an error).
pub fn said_line(lang: Lang, line: &str) -> String {
    let words = line.trim_start();
    format!("{}{}", &line[..line.len() - words.len()], said(lang, words))
}

/// A reading of a text in Japanese, and how good it is: the fewer ASCII letters left (names
/// and ids are in every reading of a text alike, so the one with fewer said more of it), then
/// the fewer parts said only because a separator split them (no template said them whole),
/// then a template that begins with its own words over one that begins with a placeholder
/// (which may have caught the words of another template: "{name} is still where …" takes
/// "would refuse now: db-master is still where …" as readily as "would refuse now: {why}").
#[derive(Debug, Clone)]
struct Reading {
    text: String,
    split_guesses: usize,
    slot_first: bool,
}

impl Reading {
    fn exact(text: &str) -> Reading {
        Reading {
            text: text.to_string(),
            split_guesses: 0,
            slot_first: false,
        }
    }

    fn rank(&self) -> (usize, usize, bool) {
        let english = self.text.chars().filter(char::is_ascii_alphabetic).count();
        (english, self.split_guesses, self.slot_first)
    }
}

/// One text being said: what each part of it came to, so a part that several readings of
/// the text share is said once.
#[derive(Default)]
struct Saying {
    memo: HashMap<(String, usize), Option<Reading>>,
}

impl Saying {
    fn translate(&mut self, text: &str, depth: usize) -> Option<Reading> {
        let key = (text.to_string(), depth);
        if let Some(done) = self.memo.get(&key) {
            return done.clone();
        }
        let ja = self.reading(text, depth);
        self.memo.insert(key, ja.clone());
        ja
    }

    /// The best reading of `text`: a text may fit several templates ("step 1 done: {note}"
    /// and "{name}: state {state}, …" both take "step 1 done: db-master: state running, …"),
    /// and the longest template is not always the right one.
    fn reading(&mut self, text: &str, depth: usize) -> Option<Reading> {
        if depth == 0 || text.trim().is_empty() {
            return None;
        }
        if let Some(word) = super::UI.get(text).and_then(|v| v.as_str()) {
            return Some(Reading::exact(word));
        }
        if let Some(ja) = SAID.fixed.get(text) {
            return Some(Reading::exact(ja));
        }
        let mut best: Option<Reading> = None;
        let consider = |best: &mut Option<Reading>, r: Reading| {
            if best.as_ref().is_none_or(|b| r.rank() < b.rank()) {
                *best = Some(r);
            }
        };
        // A list whose every item is said here, said item by item.
        let lists: Vec<Split> = SEPARATORS[..2]
            .iter()
            .filter_map(|s| self.split(text, *s, depth))
            .collect();
        for list in lists.iter().filter(|l| l.said.iter().all(Option::is_some)) {
            consider(&mut best, list.joined(0));
        }
        for t in SAID.templates.iter() {
            if !text.contains(t.anchor.as_str()) {
                continue;
            }
            let mut caught = Vec::new();
            if catch(&t.en, text, &mut caught) {
                let r = self.fill(t, &caught, depth);
                consider(&mut best, r);
            }
        }
        if best.is_some() {
            return best;
        }
        // Said of its parts where no template says the whole: a list, or "what: why" (whose
        // why may hold a colon of its own: "db-2: errant transactions 0-2-9: no master …").
        let said_in_part = |s: &Split| s.said.iter().any(Option::is_some);
        let heads: Vec<Split> = SEPARATORS
            .iter()
            .filter_map(|s| self.split_once(text, *s, depth))
            .collect();
        let colons = self.split(text, SEPARATORS[2], depth);
        for parts in lists.iter().chain(&colons).chain(&heads) {
            if said_in_part(parts) {
                consider(&mut best, parts.joined(1));
            }
        }
        best
    }

    /// `text` split at its first separator outside brackets, each side said where it can be.
    fn split_once<'t>(
        &mut self,
        text: &'t str,
        (separator, joiner): (&str, &'static str),
        depth: usize,
    ) -> Option<Split<'t>> {
        let head = split_outside_brackets(text, separator).first()?.len();
        let tail = text
            .get(head + separator.len()..)
            .filter(|t| !t.is_empty())?;
        Some(self.said_items(vec![&text[..head], tail], joiner, depth))
    }

    /// `text` split at a separator, each item said where it can be; `None` when it holds no
    /// separator outside brackets.
    fn split<'t>(
        &mut self,
        text: &'t str,
        (separator, joiner): (&str, &'static str),
        depth: usize,
    ) -> Option<Split<'t>> {
        let items = split_outside_brackets(text, separator);
        if items.len() < 2 {
            return None;
        }
        Some(self.said_items(items, joiner, depth))
    }

    fn said_items<'t>(
        &mut self,
        items: Vec<&'t str>,
        joiner: &'static str,
        depth: usize,
    ) -> Split<'t> {
        let said = items.iter().map(|i| self.translate(i, depth - 1)).collect();
        Split {
            items,
            said,
            joiner,
        }
    }

    fn fill(&mut self, t: &Template, caught: &[(&str, &str)], depth: usize) -> Reading {
        let mut out = Reading {
            slot_first: matches!(t.en.first(), Some(Part::Slot(_))),
            ..Reading::exact("")
        };
        for p in &t.ja {
            match p {
                Part::Text(s) => out.text.push_str(s),
                Part::Slot(name) => {
                    let value = caught.iter().find(|(n, _)| n == name).map_or("", |c| c.1);
                    match self.translate(value, depth - 1) {
                        Some(ja) => {
                            out.text.push_str(&ja.text);
                            out.split_guesses += ja.split_guesses;
                        }
                        None => out.text.push_str(value),
                    }
                }
            }
        }
        out
    }
}

/// A text split at a separator, each item said where it can be.
struct Split<'t> {
    items: Vec<&'t str>,
    said: Vec<Option<Reading>>,
    joiner: &'static str,
}

impl Split<'_> {
    /// The items joined, the ones said in Japanese and the others as they are; `guesses`
    /// counts the split itself when no template vouches for it.
    fn joined(&self, guesses: usize) -> Reading {
        let items: Vec<&str> = (self.items.iter().zip(&self.said))
            .map(|(en, ja)| ja.as_ref().map_or(*en, |r| r.text.as_str()))
            .collect();
        let inner: usize = self.said.iter().flatten().map(|r| r.split_guesses).sum();
        Reading {
            split_guesses: guesses + inner,
            ..Reading::exact(&items.join(self.joiner))
        }
    }
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
