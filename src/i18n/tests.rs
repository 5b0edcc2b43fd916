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
    let bytes = text.as_bytes();
    text.match_indices("tr(")
        .chain(text.match_indices("trf("))
        .filter(|&(at, _)| {
            at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_')
        })
        .filter_map(|(at, _)| {
            let rest = &text[at..];
            let comma = rest.find(',')?;
            string_at(rest[comma + 1..].trim_start())
        })
        .collect()
}

/// The texts marked `say!(` or `said!(` in `text`.
fn said_literals(text: &str) -> Vec<String> {
    text.match_indices("say!(")
        .chain(text.match_indices("said!("))
        .filter_map(|(at, m)| string_at(text[at + m.len()..].trim_start()))
        .collect()
}

/// The string literal `code` begins with, as Rust reads it.
fn string_at(code: &str) -> Option<String> {
    let body = code.strip_prefix('"')?;
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
    Some(s)
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
    for s in [
        crate::detect::Severity::Warning,
        crate::detect::Severity::Critical,
    ] {
        all.insert(s.label().into());
    }
    // A preflight's verdicts, and how a headless run ended.
    for word in [
        "allowed",
        "not-checkable",
        "refused",
        "error",
        "failed",
        "ok",
    ] {
        all.insert(word.into());
    }
    // The fleet table's headings.
    for c in crate::app::SortColumn::ALL {
        all.insert(c.heading().into());
        all.insert(c.label().into());
    }
    for r in crate::domain::Role::ALL {
        all.insert(r.short().into());
    }
    all.insert("P99 HISTORY".into());
    all.insert("DISP".into());
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

/// `{name}` and `{:.1}` alike as `{}`: the code's text and the catalog's key compare equal.
fn unnamed(template: &str) -> String {
    said::parts(template)
        .iter()
        .map(|p| match p {
            said::Part::Text(t) => t.as_str(),
            said::Part::Slot(_) => "{}",
        })
        .collect()
}

#[test]
fn everything_dake_says_has_its_japanese_and_nothing_else_is_there() {
    let catalog: toml::Table = toml::from_str(include_str!("../../assets/i18n/ja.toml")).unwrap();
    let (ui, templates) = (
        catalog["ui"].as_table().unwrap(),
        catalog["said"].as_table().unwrap(),
    );
    let mut texts = Vec::new();
    sources(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut texts,
    );
    let said: BTreeSet<String> = texts.iter().flat_map(|t| said_literals(t)).collect();
    assert!(said.len() > 150, "the scan found {} texts", said.len());
    let keys: BTreeSet<String> = templates.keys().map(|k| unnamed(k)).collect();
    let missing: Vec<&String> = said
        .iter()
        .filter(|s| !keys.contains(&unnamed(s)) && !ui.contains_key(*s))
        .collect();
    assert!(missing.is_empty(), "no Japanese for: {missing:#?}");
    let code: BTreeSet<String> = said.iter().map(|s| unnamed(s)).collect();
    for en in templates.keys() {
        assert!(code.contains(&unnamed(en)), "a template nothing says: {en}");
    }
    let foreign = catalog["foreign"].as_table().unwrap();
    for (en, ja) in templates.iter().chain(foreign) {
        assert!(
            !(placeholders(en).is_empty() && ui.contains_key(en)),
            "{en} is in [ui] already"
        );
        let ja = ja.as_str().unwrap();
        assert_eq!(placeholders(en), placeholders(ja), "{en} → {ja}");
        let parts = said::parts(en);
        for pair in parts.windows(2) {
            assert!(
                !matches!(pair, [said::Part::Slot(_), said::Part::Slot(_)]),
                "{en}: two placeholders side by side cannot be told apart"
            );
        }
        assert!(
            parts.iter().all(|p| *p != said::Part::Slot(String::new())),
            "{en}: name each placeholder"
        );
    }
}

/// Each template, its placeholders filled with words no template says, comes back as its own
/// Japanese: no other template takes it.
#[test]
fn each_template_is_the_one_that_says_its_text() {
    let catalog: toml::Table = toml::from_str(include_str!("../../assets/i18n/ja.toml")).unwrap();
    let tables = ["said", "foreign"].map(|t| catalog[t].as_table().unwrap());
    for (en, ja) in tables.into_iter().flatten() {
        let fill = |t: &str| {
            said::parts(t)
                .iter()
                .map(|p| match p {
                    said::Part::Text(t) => t.clone(),
                    said::Part::Slot(name) => {
                        format!("Q{}", name.len() * 7 + name.as_bytes()[0] as usize)
                    }
                })
                .collect::<String>()
        };
        assert_eq!(
            said(Lang::Ja, &fill(en)),
            fill(ja.as_str().unwrap()),
            "{en}"
        );
    }
}

#[test]
fn what_dake_says_reads_in_japanese_down_to_what_it_quotes() {
    let slow = "slow web server web-3: p99 911 ms vs peers' median 136 ms (6.7x) for 30 s";
    assert_eq!(
        said(Lang::Ja, slow),
        "遅い Web サーバー web-3：p99 911 ms 対ピア中央値 136 ms（6.7x）、30 秒継続"
    );
    assert_eq!(said(Lang::En, slow), slow);
    // A headline no template says whole: said in its parts.
    assert_eq!(
        said(Lang::Ja, "db-master: check impaired, silent 30s"),
        "db-master：チェック異常、無応答 30s"
    );
    // A list whose items are each said, inside a template's last placeholder.
    assert_eq!(
        said(
            Lang::Ja,
            "master DB down: db-master (instance status check impaired, MySQL answers neither \
             dake nor its replicas)"
        ),
        "マスター DB 停止：db-master（インスタンスのステータスチェック異常、MySQL が dake にもレプリカにも応答しない）"
    );
    assert_eq!(
        said(Lang::Ja, "recorded new_master_id=i-1, volume_id=vol-2"),
        "記録 new_master_id=i-1, volume_id=vol-2"
    );
    // A list of findings, each said, and a figure inside one said in turn.
    assert_eq!(
        said(
            Lang::Ja,
            "chose db-replica-1; db-replica-1 best (0.0s behind); db-replica-2 rejected: \
             instance is stopped"
        ),
        "db-replica-1 を選択；db-replica-1 最適（0.0 秒遅れ）；db-replica-2 除外：インスタンスが 停止"
    );
    // A refusal quoting a bracketed list, and the override it offers.
    let why = "every replica is rejected (db-2: SQL thread stopped; db-3: no-promote tag set)";
    let refusal = crate::runbook::overrides::Override::LaggingReplica.refusal(why);
    let ja = said(Lang::Ja, &refusal);
    assert!(
        ja.starts_with("すべてのレプリカが除外（db-2：SQL スレッド停止；db-3：no-promote タグつき）。それでも続けると"),
        "{ja}"
    );
    assert!(ja.contains("--override lagging-replica"), "{ja}");
    // What nothing says stays as it is: a provider's own error.
    let aws = "InvalidInstanceID.NotFound: The instance ID 'i-1' does not exist";
    assert_eq!(said(Lang::Ja, aws), aws);
}

#[test]
fn the_command_line_help_has_its_japanese_and_nothing_else_is_there() {
    use clap::CommandFactory;
    let catalog: toml::Table = toml::from_str(include_str!("../../assets/i18n/ja.toml")).unwrap();
    let table = catalog["help"].as_table().unwrap();
    let texts: BTreeSet<String> = crate::cli::help_texts(&crate::cli::Cli::command())
        .into_iter()
        .collect();
    let missing: Vec<&String> = texts.iter().filter(|t| !table.contains_key(*t)).collect();
    assert!(missing.is_empty(), "no Japanese for: {missing:#?}");
    let unused: Vec<&String> = table.keys().filter(|k| !texts.contains(*k)).collect();
    assert!(unused.is_empty(), "translated but never shown: {unused:#?}");
    let ja = crate::cli::command(Lang::Ja);
    for text in crate::cli::help_texts(&ja) {
        assert!(!texts.contains(&text), "still English: {text}");
    }
}

/// A text several templates fit is read the way that leaves the least English, then the way
/// that needs the fewest guesses at separators, then by a template that begins with its words.
#[test]
fn a_text_several_templates_fit_is_read_the_way_that_says_most() {
    let cases = [
        (
            "slow web server web-3: p99 911 ms vs peers' median 136 ms (6.7x) for 30 s → web-replace",
            "遅い Web サーバー web-3：p99 911 ms 対ピア中央値 136 ms（6.7x）、30 秒継続 → web-replace",
        ),
        (
            "step 1 done: db-master: state running, checks 1/2, heartbeat 65 s old",
            "ステップ 1 完了：db-master：状態 実行中、チェック 1/2、ハートビート 65 秒前",
        ),
        (
            "would refuse now: db-master is still where the database endpoint points; switch the endpoint first",
            "今なら拒否：データベースのエンドポイントはまだ db-master を指している。先に接続先設定変更を",
        ),
        (
            "step 2 done: chose db-replica-1; db-replica-1 best (holds 40 transactions, 0.3s behind); db-replica-2 rejected: lacks 7 transactions another replica received",
            "ステップ 2 完了：db-replica-1 を選択；db-replica-1 最適（40 トランザクション保持、0.3 秒遅れ）；db-replica-2 除外：他のレプリカが受け取った 7 トランザクションが欠けている",
        ),
        (
            "every replica is rejected (db-replica-1: errant transactions 0-2-4012094: no master of the lineage wrote them; db-replica-2: SQL thread stopped: Duplicate entry)",
            "すべてのレプリカが除外（db-replica-1：エラントトランザクション 0-2-4012094：系譜上のどのマスターも書いていない；db-replica-2：SQL スレッド停止：Duplicate entry）",
        ),
        (
            "db-master does not answer over MySQL (no answer within 8s): stopped through EC2 (not terminated: its data stays) and tagged quarantined, so it cannot come back writable → stopped",
            "db-master は MySQL 経由で応答しない（8 秒以内に応答なし）：EC2 で停止（終了ではないのでデータは残る）して隔離のタグをつけた。書き込み可で戻ってくることはない → 停止",
        ),
    ];
    for (en, ja) in cases {
        assert_eq!(said(Lang::Ja, en), ja);
        // Said again, from what the screen keeps of it: the same.
        assert_eq!(said(Lang::Ja, en), ja);
    }
}
