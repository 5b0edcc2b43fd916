//! `dake run`, `dake resume` and `dake report` through the real binary.
//!
//! Each test runs in its own [`Sandbox`] (HOME and the XDG dirs in a temp dir), so journals
//! land in `<sandbox>/data/dake/runs` and never in the developer's own data dir. The simulated
//! fleet is rebuilt in every process, so these tests assert exit codes, output and journals;
//! the final state of the fleet is asserted in process by `playbooks.rs`.

use std::path::PathBuf;
use std::process::Output;

use crate::sandbox::Sandbox;
use serde_json::Value;

use dake::runbook::journal;
use dake::runbook::record::Record;

fn stdout_of(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("stderr is UTF-8")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally")
}

/// Everything about a finished process, for assertion messages.
fn explain(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        stdout_of(out),
        stderr_of(out)
    )
}

const FAST: [&str; 2] = ["--speed", "500"];

fn web_replace(extra: &[&str]) -> Vec<String> {
    [
        "run",
        "web-replace",
        "--target",
        "web-3",
        "--inject",
        "slow-web",
    ]
    .iter()
    .chain(&FAST)
    .chain(extra)
    .map(|s| s.to_string())
    .collect()
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn run_with_yes_and_json_finishes_and_report_prints_the_postmortem() {
    let sb = Sandbox::new();
    let out = sb.run(&args(&web_replace(&["--yes", "--json"])));
    assert_eq!(code(&out), 0, "{}", explain(&out));
    let report: Value = serde_json::from_str(&stdout_of(&out))
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", explain(&out)));
    let run_id = report["run_id"].as_str().expect("run_id").to_string();
    assert!(run_id.contains("-web-replace-"), "{run_id}");
    assert_eq!(report["outcome"], "finished");
    assert_eq!(report["playbook"], "web-replace");
    assert_eq!(report["target_name"], "web-3");
    let steps = report["steps"].as_array().expect("steps");
    let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "compare",
            "restart-app",
            "launch-replacement",
            "register",
            "deregister",
            "dispose"
        ]
    );
    for s in steps {
        let status = s["status"].as_str().unwrap();
        assert!(status == "done" || status == "timed-out", "{s:#}");
    }
    assert_eq!(
        steps[1]["status"], "timed-out",
        "the restart does not cure it"
    );
    assert!(
        steps[2]["calls"][0]
            .as_str()
            .is_some_and(|c| c.starts_with("RunInstances") && c.contains("user-data role=web")),
        "{:#}",
        steps[2]
    );
    // The journal the report names is the one in the sandbox, and it is complete.
    let journal_path = PathBuf::from(report["journal"].as_str().unwrap());
    assert_eq!(sb.journals(), vec![journal_path.clone()]);
    let records = journal::read(&journal_path).unwrap();
    assert!(matches!(records.first(), Some(Record::Started { run_id: r, .. }) if *r == run_id));
    assert!(matches!(records.last(), Some(Record::Finished { .. })));

    let out = sb.run(&["report", &run_id]);
    assert_eq!(code(&out), 0, "{}", explain(&out));
    let md = stdout_of(&out);
    assert!(
        md.starts_with("# Postmortem: Replace a slow web server on web-3"),
        "{md}"
    );
    assert!(md.contains(&format!("`{run_id}`")), "{md}");
    for needle in [
        "time to detect",
        "time to mitigate",
        "time to recover",
        "| 3 | launch-replacement | done |",
        "| 6 | dispose | done |",
        "## Timeline (UTC)",
        "run finished: all 6 steps of web-replace done",
    ] {
        assert!(md.contains(needle), "no `{needle}` in:\n{md}");
    }
    // In Japanese: the playbook's own Japanese title, the sections, the statuses.
    let out = sb.run(&["report", &run_id, "--lang", "ja"]);
    let md = stdout_of(&out);
    assert!(md.starts_with("# ポストモーテム："), "{md}");
    for needle in [
        "## 概要",
        "## 時間",
        "| 3 | launch-replacement | 完了 |",
        "## タイムライン（UTC）",
    ] {
        assert!(md.contains(needle), "no `{needle}` in:\n{md}");
    }
}

/// The run id from the first line of a human-readable run: `run <id>: ...`.
fn run_id_of(stdout: &str) -> String {
    stdout
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("run "))
        .and_then(|l| l.split(':').next())
        .unwrap_or_else(|| panic!("no run id in:\n{stdout}"))
        .to_string()
}

#[test]
fn without_yes_the_destructive_step_is_refused_and_resume_finishes_the_run() {
    let sb = Sandbox::new();
    let out = sb.run(&args(&web_replace(&[])));
    assert_eq!(code(&out), 1, "{}", explain(&out));
    let run_id = run_id_of(&stdout_of(&out));
    let err = stderr_of(&out);
    assert!(
        err.contains("step 5 (deregister) is destructive") && err.contains("--yes"),
        "{err}"
    );
    assert!(
        err.contains(&format!("dake resume {run_id} --yes")),
        "{err}"
    );
    let [path] = sb.journals().try_into().expect("one journal");
    let before = journal::read(&path).unwrap();
    assert!(
        !before
            .iter()
            .any(|r| matches!(r, Record::Finished { .. } | Record::Aborted { .. })),
        "the refused run is left unfinished"
    );
    assert!(
        !before
            .iter()
            .any(|r| matches!(r, Record::StepStarted { step: 4, .. }))
    );

    let out = sb.run(&["resume", &run_id, "--yes", "--speed", "500"]);
    assert_eq!(code(&out), 0, "{}", explain(&out));
    let stdout = stdout_of(&out);
    assert!(
        stdout.contains(&format!("resuming run {run_id}")) && stdout.contains("at step 5"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("run {run_id} finished")),
        "{stdout}"
    );
    assert_eq!(
        sb.journals(),
        vec![path.clone()],
        "the same journal, no new one"
    );
    let after = journal::read(&path).unwrap();
    assert_eq!(
        after[..before.len()],
        before[..],
        "appended to, never rewritten"
    );
    let added = &after[before.len()..];
    assert!(added.iter().any(
        |r| matches!(r, Record::Note { text, .. } if text.starts_with("resumed headless by"))
    ));
    assert!(
        added
            .iter()
            .any(|r| matches!(r, Record::StepStarted { step: 4, .. }))
    );
    assert!(matches!(added.last(), Some(Record::Finished { .. })));

    // Nothing is left to resume, and a finished run is not resumed again.
    let out = sb.run(&["resume", "--yes"]);
    assert_eq!(code(&out), 2, "{}", explain(&out));
    assert!(
        stderr_of(&out).contains("no unfinished run"),
        "{}",
        explain(&out)
    );
    let out = sb.run(&["resume", &run_id, "--yes"]);
    assert_eq!(code(&out), 2, "{}", explain(&out));
    assert!(
        stderr_of(&out).contains(&format!("run {run_id} is over")),
        "{}",
        explain(&out)
    );
}

#[test]
fn dry_run_prints_every_step_and_its_calls_and_writes_no_journal() {
    let sb = Sandbox::new();
    let out = sb.run(&["run", "web-replace", "--target", "web-3", "--dry-run"]);
    assert_eq!(code(&out), 0, "{}", explain(&out));
    let text = stdout_of(&out);
    assert!(
        text.starts_with("dry run of web-replace on web-3 (i-0"),
        "{text}"
    );
    assert!(text.contains("nothing will be changed"), "{text}");
    for step in [
        "1. compare:",
        "2. restart-app:",
        "3. launch-replacement:",
        "4. register:",
        "5. deregister [destructive]:",
        "6. dispose [destructive, typed confirmation]:",
    ] {
        assert!(text.contains(step), "no `{step}` in:\n{text}");
    }
    for call in [
        "SendCommand i-0",
        "systemctl restart app",
        "RunInstances image=ami-0",
        "type=c5.large",
        "user-data role=web",
        "dake:role=web",
        "DeregisterTargets web-tg i-0",
        "TerminateInstances i-0",
    ] {
        assert!(text.contains(call), "no `{call}` in:\n{text}");
    }
    // Register names the replacement, which only exists once step 3 has run.
    assert!(text.contains("calls decided when it runs"), "{text}");
    assert!(sb.journals().is_empty(), "{:?}", sb.journals());
    assert!(!sb.runs().exists(), "a dry run creates no journal dir");
}

#[test]
fn dry_run_says_which_step_would_refuse_now() {
    let sb = Sandbox::new();
    // The master is healthy at the start of the drill: nothing to fail over.
    let out = sb.run(&["run", "db-promote", "--target", "db-master", "--dry-run"]);
    assert_eq!(code(&out), 0, "{}", explain(&out));
    let text = stdout_of(&out);
    let confirm = text
        .lines()
        .skip_while(|l| !l.starts_with("1. confirm-down"))
        .nth(1)
        .unwrap_or_default();
    assert!(
        confirm.contains("would refuse now") && confirm.contains("nothing to fail over"),
        "{text}"
    );
    assert!(sb.journals().is_empty());
}

/// `dake <args>` must exit 2 with every needle on stderr and journal nothing.
fn bad_input(args: &[&str], needles: &[&str]) {
    let sb = Sandbox::new();
    let out = sb.run(args);
    assert_eq!(code(&out), 2, "{args:?}: {}", explain(&out));
    let err = stderr_of(&out);
    assert!(err.starts_with("dake: "), "{err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: no `{n}` in: {err}");
    }
    assert!(stdout_of(&out).is_empty(), "{}", explain(&out));
    assert!(sb.journals().is_empty());
}

#[test]
fn unknown_playbook_is_exit_2_listing_the_playbooks() {
    bad_input(
        &["run", "web-rebuild", "--target", "web-3", "--yes"],
        &[
            "unknown playbook `web-rebuild`",
            "web-replace",
            "db-ebs-move",
            "db-promote",
        ],
    );
}

#[test]
fn target_of_the_wrong_role_is_exit_2_naming_the_role() {
    bad_input(
        &["run", "web-replace", "--target", "db-master", "--yes"],
        &[
            "web-replace targets a web instance",
            "db-master (i-0",
            "is a db-master",
        ],
    );
    bad_input(
        &["run", "db-ebs-move", "--target", "web-1", "--yes"],
        &["targets a db-master instance", "is a web"],
    );
}

#[test]
fn unknown_target_is_exit_2() {
    bad_input(
        &["run", "web-replace", "--target", "web-99", "--yes"],
        &["no instance `web-99`", "dake:fleet=drill"],
    );
}

#[test]
fn report_of_an_unknown_run_is_exit_2() {
    bad_input(&["report", "nope"], &["no run `nope`"]);
}

#[test]
fn resume_with_nothing_unfinished_is_exit_2() {
    bad_input(&["resume", "--yes"], &["no unfinished run"]);
    bad_input(&["resume", "nope", "--yes"], &["no run `nope`"]);
}

#[test]
fn force_is_gone_and_an_override_must_be_named() {
    let sb = Sandbox::new();
    let out = sb.run(&["run", "db-promote", "--target", "db-master", "--force"]);
    assert_eq!(code(&out), 2, "{}", explain(&out));
    let err = stderr_of(&out);
    assert!(
        err.contains("--force is gone")
            && err.contains("--override anti-flapping | master-answers"),
        "{err}"
    );
    let out = sb.run(&[
        "run",
        "db-promote",
        "--target",
        "db-master",
        "--override",
        "everything",
    ]);
    assert_eq!(code(&out), 2, "{}", explain(&out));
    assert!(
        stderr_of(&out).contains("no override `everything`: one of anti-flapping"),
        "{}",
        explain(&out)
    );
    assert!(sb.journals().is_empty(), "nothing ran");
    // Named, it is taken: the healthy master is still refused for want of the right one.
    let out = sb.run(&[
        "run",
        "db-promote",
        "--target",
        "db-master",
        "--override",
        "lagging-replica",
        "--yes",
    ]);
    assert_eq!(code(&out), 1, "{}", explain(&out));
    assert!(
        stderr_of(&out).contains("override `master-answers`"),
        "{}",
        explain(&out)
    );
}

/// In Japanese a headless run says its steps, its refusal and its dry run in Japanese, and
/// its journal stays English (a follower or a report on another machine reads the same).
#[test]
fn a_run_in_japanese_prints_japanese_and_journals_english() {
    let sb = Sandbox::new();
    let mut a = web_replace(&[]);
    a.extend(["--lang".to_string(), "ja".to_string()]);
    let out = sb.run(&args(&a));
    assert_eq!(code(&out), 1, "{}", explain(&out));
    let stdout = stdout_of(&out);
    assert!(stdout.starts_with("実行 "), "{stdout}");
    assert!(
        stdout.contains("1/6 compare: 触る前に、遅いサーバーを同じ役割の他の台と見比べる"),
        "{stdout}"
    );
    let stderr = stderr_of(&out);
    assert!(stderr.starts_with("dake: 実行 "), "{stderr}");
    assert!(stderr.contains("拒否：ステップ "), "{stderr}");
    assert!(stderr.contains("は破壊的で --yes がない。"), "{stderr}");
    let journal = sb.journals().pop().expect("a journal");
    let records = journal::read(&journal).unwrap();
    assert!(
        records
            .iter()
            .any(|r| r.describe().starts_with("run started: web-replace")),
        "the journal is English"
    );

    let mut a = web_replace(&["--dry-run"]);
    a.extend(["--lang".to_string(), "ja".to_string()]);
    let out = sb.run(&args(&a));
    assert_eq!(code(&out), 0, "{}", explain(&out));
    let stdout = stdout_of(&out);
    assert!(
        stdout.starts_with("web-3（i-"),
        "the dry run's head line: {stdout}"
    );
    assert!(
        stdout.contains("web-replace のドライラン：何も変えない"),
        "{stdout}"
    );
    assert!(stdout.contains("6. dispose [破壊的"), "{stdout}");
}

/// A step that finishes without a wait says what it found too (db-promote's retirement of the
/// old master, confirmed up front with --yes).
#[test]
fn a_step_without_a_wait_says_what_it_did() {
    let sb = Sandbox::new();
    let out = sb.run(&[
        "run",
        "db-promote",
        "--target",
        "db-master",
        "--inject",
        "master-down",
        "--speed",
        "500",
        "--yes",
    ]);
    assert_eq!(code(&out), 0, "{}", explain(&out));
    let stdout = stdout_of(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    let retire = lines
        .iter()
        .position(|l| l.starts_with("8/10 retire-old-master"))
        .unwrap_or_else(|| panic!("{stdout}"));
    let said = lines[retire + 1..]
        .iter()
        .take_while(|l| l.starts_with("   "))
        .find(|l| !l.trim_start().starts_with('→'));
    assert!(
        said.is_some_and(|l| l.contains("db-master retired")),
        "{stdout}"
    );
}
