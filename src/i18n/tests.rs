use std::collections::BTreeSet;

use super::*;
use crate::app::Arming;
use crate::app::keymap::{KEYMAP, RUN_KEYMAP};
use crate::runbook::record::StepStatus;

#[test]
fn the_language_is_the_flag_else_the_locale() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    assert_eq!(
        Lang::detect(None, env(&[("LANG", "ja_JP.UTF-8")])),
        Lang::Ja
    );
    assert_eq!(
        Lang::detect(None, env(&[("LANG", "en_US.UTF-8")])),
        Lang::En
    );
    assert_eq!(Lang::detect(None, env(&[])), Lang::En);
    assert_eq!(
        Lang::detect(None, env(&[("LC_ALL", "C"), ("LANG", "ja_JP.UTF-8")])),
        Lang::En,
        "LC_ALL wins"
    );
    assert_eq!(
        Lang::detect(None, env(&[("LC_ALL", ""), ("LANG", "ja_JP.UTF-8")])),
        Lang::Ja,
        "an empty one is not set"
    );
    assert_eq!(
        Lang::detect(Some(Lang::En), env(&[("LANG", "ja_JP")])),
        Lang::En
    );
    assert_eq!(tr(Lang::En, "quit"), "quit");
    assert_ne!(tr(Lang::Ja, "quit"), "quit");
    assert_eq!(trf(Lang::En, "data {age}", &[("age", &"3s")]), "data 3s");
}

/// The string literals passed to `tr(` and `trf(` in `text`, as Rust reads them.
fn literals(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    for (at, _) in text.match_indices("tr(").chain(text.match_indices("trf(")) {
        if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
            continue;
        }
        let rest = &text[at..];
        let Some(comma) = rest.find(',') else {
            continue;
        };
        let after = rest[comma + 1..].trim_start();
        let Some(body) = after.strip_prefix('"') else {
            continue;
        };
        let mut s = String::new();
        let mut chars = body.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => s.push('\n'),
                    Some('"') => s.push('"'),
                    Some('\\') => s.push('\\'),
                    Some('\n') => {
                        while chars.peek().is_some_and(|c| c.is_whitespace()) {
                            chars.next();
                        }
                    }
                    Some(other) => s.push(other),
                    None => {}
                },
                c => s.push(c),
            }
        }
        out.push(s);
    }
    out
}

fn sources(dir: &std::path::Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("i18n/tests.rs") {
            out.push(std::fs::read_to_string(&p).unwrap());
        }
    }
}

/// Every English text the screen translates: the literals the code passes, and the ones it
/// passes from tables (keys, statuses, labels).
fn english() -> BTreeSet<String> {
    let mut texts = Vec::new();
    sources(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut texts,
    );
    let mut all: BTreeSet<String> = texts.iter().flat_map(|t| literals(t)).collect();
    for b in KEYMAP {
        all.insert(b.help.into());
        if let Some((_, words)) = b.footer {
            all.insert(words.into());
        }
    }
    for b in RUN_KEYMAP {
        all.insert(b.hint.into());
    }
    for a in [
        Arming::Drill,
        Arming::ReadOnly,
        Arming::Armed,
        Arming::Following,
    ] {
        all.insert(a.label().into());
    }
    for s in [
        StepStatus::Pending,
        StepStatus::Active,
        StepStatus::Done,
        StepStatus::TimedOut,
        StepStatus::Failed,
        StepStatus::Skipped,
    ] {
        all.insert(s.label().into());
    }
    use crate::drill::judge::Wrong;
    use crate::drill::scorecard::Charge;
    for c in [
        Charge::Wrong(Wrong::HealthyRemoved),
        Charge::Wrong(Wrong::LaggingPromoted),
        Charge::Wrong(Wrong::ErrantPromoted),
        Charge::Wrong(Wrong::OverrideUsed),
        Charge::Wrong(Wrong::TwoMasters),
        Charge::Wrong(Wrong::UnneededFailover),
        Charge::Wrong(Wrong::WrongPlaybook),
        Charge::Hint,
        Charge::OverPar,
    ] {
        all.insert(c.label().into());
    }
    for phase in ["detect (right playbook opened)", "mitigate", "recover"] {
        all.insert(phase.into());
    }
    // A run's phase, as the present banner and the step list say it.
    for phase in [
        "next",
        "confirming",
        "calling",
        "waiting",
        "FAILED",
        "finished",
        "aborted",
    ] {
        all.insert(phase.into());
    }
    all.insert(crate::runbook::model::NO_PLAYBOOK.into());
    all.insert(crate::app::follow_read_only().into());
    all
}

fn placeholders(s: &str) -> BTreeSet<String> {
    s.split('{')
        .skip(1)
        .filter_map(|p| p.split_once('}').map(|(name, _)| name.to_string()))
        .collect()
}

#[test]
fn every_english_text_on_screen_has_its_japanese_and_nothing_else_is_there() {
    let catalog: toml::Table = toml::from_str(include_str!("../../assets/i18n/ja.toml")).unwrap();
    let ui = catalog["ui"].as_table().unwrap();
    let english = english();
    let missing: Vec<&String> = english.iter().filter(|e| !ui.contains_key(*e)).collect();
    assert!(missing.is_empty(), "no Japanese for: {missing:#?}");
    let unused: Vec<&String> = ui.keys().filter(|k| !english.contains(*k)).collect();
    assert!(unused.is_empty(), "translated but never said: {unused:#?}");
    for (en, ja) in ui {
        let ja = ja.as_str().unwrap();
        assert_eq!(placeholders(en), placeholders(ja), "{en} → {ja}");
        assert!(!ja.trim().is_empty(), "{en}");
    }
}

#[test]
fn every_playbook_and_scenario_has_its_japanese() {
    for pb in crate::runbook::model::load_all(None).unwrap() {
        let title = asset(Lang::Ja, &["playbook", &pb.id, "title"], &pb.title);
        assert_ne!(title, pb.title, "{}", pb.id);
        for step in &pb.steps {
            let why = asset(
                Lang::Ja,
                &["playbook", &pb.id, "step", &step.name],
                &step.why,
            );
            assert_ne!(why, step.why, "{} {}", pb.id, step.name);
        }
    }
    for s in crate::drill::load_all(None).unwrap() {
        for (field, en) in [
            ("title", &s.title),
            ("brief", &s.brief),
            ("lesson", &s.lesson),
        ] {
            assert_ne!(
                asset(Lang::Ja, &["scenario", &s.id, field], en),
                *en,
                "{} {field}",
                s.id
            );
        }
        let path = ["scenario", s.id.as_str(), "hints"];
        let count = lookup(&path)
            .and_then(|v| v.as_array())
            .map_or(0, |a| a.len());
        assert_eq!(count, s.hints.len(), "{}: hints", s.id);
        for (i, h) in s.hints.iter().enumerate() {
            assert_ne!(asset_item(Lang::Ja, &path, i, h), *h, "{} hint {i}", s.id);
        }
    }
}

#[test]
fn what_detection_says_reads_in_japanese_and_every_phrase_is_one_it_says() {
    let catalog: toml::Table = toml::from_str(include_str!("../../assets/i18n/ja.toml")).unwrap();
    let mut texts = Vec::new();
    sources(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut texts,
    );
    let all = texts.concat();
    for en in catalog["phrase"].as_table().unwrap().keys() {
        assert!(all.contains(en.trim()), "a phrase nothing says: {en:?}");
    }
    let slow = "slow web server web-3: p99 911 ms vs peers' median 136 ms (6.7x) for 30 s";
    assert_eq!(
        phrases(Lang::Ja, slow),
        "遅い Web サーバー web-3: p99 911 ms 対ピア中央値 136 ms (6.7x)、継続 30 s"
    );
    assert_eq!(
        phrases(Lang::Ja, "db-master: check impaired, silent 30s"),
        "db-master: チェック異常, 無応答 30s"
    );
    assert_eq!(phrases(Lang::En, slow), slow);
}
