//! A drill's scorecard: the times against par, each deduction with its reason, keys and hints;
//! saved one JSON line per attempt, so a trainee sees their last attempts beside this one, and
//! written as Markdown for `dake drill --report`.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::judge::Wrong;
use crate::i18n::{Lang, asset, said, tr, trf};
use crate::text::age;

/// What points were taken off for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Charge {
    Wrong(Wrong),
    Hint,
    OverPar,
}

impl Charge {
    pub fn label(self) -> &'static str {
        match self {
            Charge::Wrong(Wrong::HealthyRemoved) => "healthy instance removed",
            Charge::Wrong(Wrong::LaggingPromoted) => "lagging replica promoted",
            Charge::Wrong(Wrong::ErrantPromoted) => "errant replica promoted",
            Charge::Wrong(Wrong::OverrideUsed) => "override used",
            Charge::Wrong(Wrong::TwoMasters) => "unfenced master",
            Charge::Wrong(Wrong::UnneededFailover) => "unneeded failover",
            Charge::Wrong(Wrong::WrongPlaybook) => "wrong playbook",
            Charge::Hint => "hint",
            Charge::OverPar => "over par",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deduction {
    /// Drill seconds when it happened; `None` for a time over par.
    pub at_secs: Option<i64>,
    pub charge: Charge,
    pub detail: String,
    pub points: u32,
}

impl Deduction {
    pub fn over_par(what: &str, took: i64, par: u64, points: u32) -> Deduction {
        Deduction {
            at_secs: None,
            charge: Charge::OverPar,
            detail: say!("{what} took {} (par {})", age(took), age(par as i64)),
            points,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepScore {
    pub playbook: String,
    pub step: String,
    pub secs: i64,
    pub par: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scorecard {
    pub scenario: String,
    pub title: String,
    pub seed: u64,
    pub operator: String,
    /// The fleet's clock when it ended.
    pub ended_at: DateTime<Utc>,
    pub drill_secs: i64,
    pub outcome: String,
    /// From the first fault: to the right playbook opened, to mitigation, to recovery.
    pub detect_secs: Option<i64>,
    pub mitigate_secs: Option<i64>,
    pub recover_secs: Option<i64>,
    pub par_detect_secs: Option<u64>,
    pub par_mitigate_secs: Option<u64>,
    pub par_recover_secs: Option<u64>,
    pub steps: Vec<StepScore>,
    pub deductions: Vec<Deduction>,
    pub keys: u32,
    pub hints: usize,
    /// 100 less every deduction, at least 0.
    pub score: u32,
    pub runs: Vec<String>,
    pub lesson: String,
}

/// "1m05s", or "—" when it never happened.
pub fn took(secs: Option<i64>) -> String {
    secs.map_or_else(|| "—".to_string(), age)
}

/// "3m00s" or "—", and whether `secs` is within it.
pub fn against(secs: Option<i64>, par: Option<u64>) -> String {
    match (secs, par) {
        (Some(s), Some(p)) if s <= p as i64 => format!("{} ✓", age(p as i64)),
        (_, Some(p)) => format!("{} ✗", age(p as i64)),
        (_, None) => "—".into(),
    }
}

impl Scorecard {
    /// The three phases: name, time taken, par.
    pub fn phases(&self) -> [(&'static str, Option<i64>, Option<u64>); 3] {
        [
            (
                "detect (right playbook opened)",
                self.detect_secs,
                self.par_detect_secs,
            ),
            ("mitigate", self.mitigate_secs, self.par_mitigate_secs),
            ("recover", self.recover_secs, self.par_recover_secs),
        ]
    }

    /// The scorecard as Markdown, in `l`, with `earlier` attempts at the same scenario.
    pub fn markdown(&self, l: Lang, earlier: &[Scorecard]) -> String {
        let title = asset(l, &["scenario", &self.scenario, "title"], &self.title);
        let mut md = format!(
            "# {}\n\n",
            trf(
                l,
                "Drill scorecard: {title} ({id})",
                &[("title", &title), ("id", &self.scenario)]
            )
        );
        md.push_str(&trf(
            l,
            "**{score}/100** · {outcome} · {operator} · seed {seed} · {took} of drill",
            &[
                ("score", &self.score),
                ("outcome", &said(l, &self.outcome)),
                ("operator", &self.operator),
                ("seed", &self.seed),
                ("took", &age(self.drill_secs)),
            ],
        ));
        md.push_str(&format!(
            "\n\n| {} | {} | {} |\n| --- | --- | --- |\n",
            tr(l, "from the first fault"),
            tr(l, "took"),
            tr(l, "par")
        ));
        for (name, secs, par) in self.phases() {
            md.push_str(&format!(
                "| {} | {} | {} |\n",
                tr(l, name),
                took(secs),
                against(secs, par)
            ));
        }
        if !self.steps.is_empty() {
            md.push_str(&format!(
                "\n## {}\n\n| {} | {} | {} | {} |\n| --- | --- | --- | --- |\n",
                tr(l, "Steps"),
                tr(l, "playbook"),
                tr(l, "step"),
                tr(l, "took"),
                tr(l, "par")
            ));
            for s in &self.steps {
                md.push_str(&format!(
                    "| {} | {} | {} | {} |\n",
                    s.playbook,
                    s.step,
                    age(s.secs),
                    against(Some(s.secs), s.par)
                ));
            }
        }
        md.push_str(&format!("\n## {}\n\n", tr(l, "Deductions")));
        if self.deductions.is_empty() {
            md.push_str(&format!("{}\n", tr(l, "None.")));
        }
        for d in &self.deductions {
            let at = d.at_secs.map_or(String::new(), |s| {
                format!("{} ", trf(l, "at {age}", &[("age", &age(s))]))
            });
            let line = trf(
                l,
                "- {at}**{charge}** −{points}: {detail}",
                &[
                    ("at", &at),
                    ("charge", &tr(l, d.charge.label())),
                    ("points", &d.points),
                    ("detail", &said(l, &d.detail)),
                ],
            );
            md.push_str(&format!("{line}\n"));
        }
        md.push_str(&format!(
            "\n{}\n",
            trf(
                l,
                "Keys pressed: {keys} · hints used: {hints}",
                &[("keys", &self.keys), ("hints", &self.hints)]
            )
        ));
        md.push_str(&earlier_table(l, earlier));
        let lesson = asset(l, &["scenario", &self.scenario, "lesson"], &self.lesson);
        md.push_str(&format!(
            "\n## {}\n\n{lesson}\n",
            tr(l, "What this drill teaches")
        ));
        if !self.runs.is_empty() {
            md.push_str(&format!(
                "\n{}\n",
                trf(
                    l,
                    "Runs: {runs} (`dake report <run-id>` for each postmortem)",
                    &[("runs", &self.runs.join(", "))]
                )
            ));
        }
        md
    }
}

/// The attempts before this one, as a Markdown table; nothing when there are none.
fn earlier_table(l: Lang, earlier: &[Scorecard]) -> String {
    let mut out = String::new();
    if earlier.is_empty() {
        return out;
    }
    out.push_str(&format!(
        "\n## {}\n\n| {} | {} | {} | {} | {} |\n| --- | --- | --- | --- | --- |\n",
        tr(l, "Earlier attempts"),
        tr(l, "ended"),
        tr(l, "score"),
        tr(l, "detect"),
        tr(l, "mitigate"),
        tr(l, "recover")
    ));
    for e in earlier {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            e.ended_at.format("%Y-%m-%d %H:%M"),
            e.score,
            took(e.detect_secs),
            took(e.mitigate_secs),
            took(e.recover_secs)
        ));
    }
    out
}

/// Where attempts are kept: `dake/drills.jsonl` in the XDG data dir.
pub fn results_path() -> Option<PathBuf> {
    dirs::data_dir().map(|d| d.join("dake").join("drills.jsonl"))
}

/// Appends one attempt.
pub fn save(path: &Path, card: &Scorecard) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let line = serde_json::to_string(card).map_err(std::io::Error::other)?;
    writeln!(f, "{line}")?;
    f.sync_all()
}

/// Every attempt saved at `path`, oldest first; a damaged line is skipped.
pub fn load(path: &Path) -> Vec<Scorecard> {
    std::fs::read_to_string(path)
        .map(|text| {
            text.lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Up to `n` attempts at `scenario` before the last one, newest first.
pub fn earlier(all: &[Scorecard], scenario: &str, n: usize) -> Vec<Scorecard> {
    let mut mine: Vec<&Scorecard> = all.iter().filter(|c| c.scenario == scenario).collect();
    mine.pop();
    mine.iter().rev().take(n).map(|c| (*c).clone()).collect()
}

/// The newest scorecard saved at `results` of a drill that ran `run_id`.
pub fn saved_for_run(results: Option<&Path>, run_id: &str) -> Option<Scorecard> {
    for_run(&load(results?), run_id)
}

/// The newest scorecard of a drill that ran `run_id`.
pub fn for_run(all: &[Scorecard], run_id: &str) -> Option<Scorecard> {
    all.iter()
        .rev()
        .find(|c| c.runs.iter().any(|r| r == run_id))
        .cloned()
}
