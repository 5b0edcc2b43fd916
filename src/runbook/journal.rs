//! The journal: one append-only JSONL file per run in the XDG data dir, each record fsync'd
//! before the side effect it announces. A torn last line (the console died mid-write) is
//! ignored; damage anywhere else is an error naming the file and line.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::model::{self, Playbook};
use super::record::Record;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{file}: {error}")]
    Io { file: String, error: std::io::Error },
    #[error("{}", say!("{file}:{line}: damaged journal record: {message}"))]
    Damaged {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{}", say!("no run `{}` in the journal directory", .0))]
    UnknownRun(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |error| JournalError::Io {
        file: path.display().to_string(),
        error,
    }
}

/// Where journals live: `dake/runs/` in the XDG data dir (`~/.local/share/dake/runs`).
pub fn default_dir() -> Option<PathBuf> {
    dirs::data_dir().map(|d| d.join("dake").join("runs"))
}

pub struct Journal {
    path: PathBuf,
    file: File,
}

impl Journal {
    /// Creates the journal of a new run; an existing one with that id is never appended to.
    pub fn create(dir: &Path, run_id: &str) -> Result<Journal, JournalError> {
        Journal::open_with(dir, run_id, true)
    }

    /// Opens the journal of an existing run for appending (resume). A torn last line is cut
    /// off first: its record never reached the disk whole, so nothing after it was done, and
    /// appending after it would bury the fragment mid-file.
    pub fn open(dir: &Path, run_id: &str) -> Result<Journal, JournalError> {
        let path = dir.join(format!("{run_id}.jsonl"));
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        if whole < bytes.len() {
            tracing::warn!(
                "{}: cutting a torn last line of {} bytes",
                path.display(),
                bytes.len() - whole
            );
            let f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io(&path))?;
            f.set_len(whole as u64).map_err(io(&path))?;
            f.sync_data().map_err(io(&path))?;
        }
        Journal::open_with(dir, run_id, false)
    }

    fn open_with(dir: &Path, run_id: &str, new: bool) -> Result<Journal, JournalError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(format!("{run_id}.jsonl"));
        let mut options = OpenOptions::new();
        options.append(true);
        if new {
            options.create_new(true);
        }
        let file = options.open(&path).map_err(io(&path))?;
        Ok(Journal { path, file })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record and waits until it is on disk.
    pub fn append(&mut self, rec: &Record) -> Result<(), JournalError> {
        let mut line = serde_json::to_string(rec).map_err(|e| JournalError::Damaged {
            file: self.path.display().to_string(),
            line: 0,
            message: e.to_string(),
        })?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .map_err(io(&self.path))?;
        self.file.sync_data().map_err(io(&self.path))
    }
}

/// Reads a journal. A last line that does not parse is a torn write and is dropped.
pub fn read(path: &Path) -> Result<Vec<Record>, JournalError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::with_capacity(lines.len());
    for (n, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(line) {
            Ok(r) => out.push(r),
            Err(_) if n + 1 == lines.len() => {
                tracing::warn!("{}: ignoring torn last line {}", path.display(), n + 1);
            }
            Err(e) => {
                return Err(JournalError::Damaged {
                    file: path.display().to_string(),
                    line: n + 1,
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub run_id: String,
    pub playbook: String,
    pub target_id: String,
    pub target_name: String,
    pub started: DateTime<Utc>,
    pub last: DateTime<Utc>,
    /// `Some(outcome)` once finished or aborted.
    pub ended: Option<String>,
    /// When it last performed a failover action (a launch, a stop, a promotion…), whatever its
    /// outcome: what anti-flapping counts.
    pub failover_at: Option<DateTime<Utc>>,
    /// Steps it finished successfully, by index: whether it mitigated its incident.
    pub done_steps: Vec<usize>,
    pub path: PathBuf,
}

/// Every run in `dir`, oldest first. Unreadable journals are skipped with a log line: one bad
/// file must not hide the others.
pub fn list(dir: &Path) -> Vec<RunSummary> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<RunSummary> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .filter_map(|path| match read(&path) {
            Ok(records) => summarise(&records, path),
            Err(e) => {
                tracing::warn!("skipping journal: {e}");
                None
            }
        })
        .collect();
    out.sort_by(|a, b| a.started.cmp(&b.started).then(a.run_id.cmp(&b.run_id)));
    out
}

/// When a run's records say it last performed a failover action, whatever came after.
pub fn last_failover(records: &[Record]) -> Option<DateTime<Utc>> {
    let mut intents = std::collections::BTreeMap::new();
    let mut failover_at = None;
    for r in records {
        match r {
            Record::Intent {
                step, index, call, ..
            } => {
                intents.insert((*step, *index), call.is_failover_action());
            }
            Record::Result {
                at,
                step,
                index,
                outcome: Ok(_),
            } if intents.get(&(*step, *index)) == Some(&true) => failover_at = Some(*at),
            _ => {}
        }
    }
    failover_at
}

/// What a run's records say about it; `None` when they do not start with its start.
pub fn summarise(records: &[Record], path: PathBuf) -> Option<RunSummary> {
    let Some(Record::Started {
        at,
        run_id,
        playbook,
        target_id,
        target_name,
        ..
    }) = records.first()
    else {
        return None;
    };
    let done_steps = records
        .iter()
        .filter_map(|r| match r {
            Record::StepFinished {
                step,
                status: super::record::StepStatus::Done,
                ..
            } => Some(*step),
            _ => None,
        })
        .collect();
    let ended = records.iter().rev().find_map(|r| match r {
        Record::Finished { outcome, .. } => Some(say!("finished: {outcome}")),
        Record::Aborted { reason, .. } => Some(say!("aborted: {reason}")),
        _ => None,
    });
    Some(RunSummary {
        run_id: run_id.clone(),
        playbook: playbook.clone(),
        target_id: target_id.clone(),
        target_name: target_name.clone(),
        started: *at,
        last: records.last().map_or(*at, Record::at),
        ended,
        failover_at: last_failover(records),
        done_steps,
        path,
    })
}

impl RunSummary {
    /// "run <id> (<playbook> on <target>) failed over 4m10s ago" (or started, for a run
    /// that has not acted yet).
    pub fn started_ago(&self, now: DateTime<Utc>) -> String {
        let ago = |at: DateTime<Utc>| crate::text::age((now - at).num_seconds());
        let (id, playbook, target) = (&self.run_id, &self.playbook, &self.target_name);
        match self.failover_at {
            Some(at) => say!(
                "run {id} ({playbook} on {target}) failed over {} ago",
                ago(at)
            ),
            None => say!(
                "run {id} ({playbook} on {target}) started {} ago",
                ago(self.started)
            ),
        }
    }
}

/// The run of a playbook for the same incident (the same tier) that performed a failover action
/// most recently, within `window`, whether it finished, failed or was aborted after it: a second
/// failover so soon is more likely flapping than a new fault. A run that only looked or
/// restarted an app counts for nothing. The console and the headless CLI both refuse on this
/// one check.
pub fn recent_failover<'a>(
    runs: &'a [RunSummary],
    playbooks: &[Playbook],
    playbook: &Playbook,
    now: DateTime<Utc>,
    window: chrono::Duration,
) -> Option<&'a RunSummary> {
    runs.iter()
        .filter(|r| {
            model::find(playbooks, &r.playbook).is_some_and(|p| p.incident == playbook.incident)
        })
        .filter(|r| r.failover_at.is_some_and(|at| now - at < window))
        .max_by_key(|r| r.failover_at)
}

pub fn find(dir: &Path, run_id: &str) -> Result<RunSummary, JournalError> {
    list(dir)
        .into_iter()
        .find(|r| r.run_id == run_id)
        .ok_or_else(|| JournalError::UnknownRun(run_id.into()))
}

/// Runs that neither finished nor were aborted: the console died during them.
pub fn unfinished(dir: &Path) -> Vec<RunSummary> {
    list(dir)
        .into_iter()
        .filter(|r| r.ended.is_none())
        .collect()
}

/// When any unfinished one of `runs` last journaled something: how far along the fleet it acted
/// on must be when it is picked up again. `None` when no run is unfinished.
pub fn newest_unfinished(runs: &[RunSummary]) -> Option<DateTime<Utc>> {
    runs.iter()
        .filter(|r| r.ended.is_none())
        .map(|r| r.last)
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::call::ProviderCall;

    fn note(text: &str) -> Record {
        Record::Note {
            at: DateTime::UNIX_EPOCH,
            step: None,
            text: text.into(),
        }
    }

    fn started(id: &str) -> Record {
        Record::Started {
            at: DateTime::UNIX_EPOCH,
            run_id: id.into(),
            playbook: "web-replace".into(),
            target_id: "i-1".into(),
            target_name: "web-3".into(),
            operator: "op@host".into(),
            quarantine: false,
            overrides: Vec::new(),
            force: false,
        }
    }

    #[test]
    fn records_round_trip_and_a_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::create(dir.path(), "r1").unwrap();
        j.append(&started("r1")).unwrap();
        j.append(&note("a")).unwrap();
        let mut f = OpenOptions::new().append(true).open(j.path()).unwrap();
        f.write_all(b"{\"record\":\"note\",\"at\":\"19").unwrap();
        let back = read(j.path()).unwrap();
        assert_eq!(back, vec![started("r1"), note("a")]);
        // Resuming cuts the fragment, so the next record starts on a line of its own.
        let mut j = Journal::open(dir.path(), "r1").unwrap();
        j.append(&note("b")).unwrap();
        assert_eq!(
            read(j.path()).unwrap(),
            vec![started("r1"), note("a"), note("b")]
        );
        let runs = unfinished(dir.path());
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].run_id, "r1");
    }

    /// A run's journal: started at minute `start`, then each (call, answered ok) at the next
    /// minutes, then how it ended.
    fn run_of(
        id: &str,
        start: i64,
        calls: &[(ProviderCall, bool)],
        end: Option<Record>,
    ) -> Vec<Record> {
        let at = |m: i64| DateTime::UNIX_EPOCH + chrono::Duration::minutes(m);
        let mut out = vec![started(id)];
        if let Record::Started { at: a, .. } = &mut out[0] {
            *a = at(start);
        }
        for (i, (call, ok)) in calls.iter().enumerate() {
            let m = start + 1 + i as i64;
            out.push(Record::Intent {
                at: at(m),
                step: i,
                index: 0,
                call: call.clone(),
                token: format!("t{i}"),
            });
            out.push(Record::Result {
                at: at(m),
                step: i,
                index: 0,
                outcome: if *ok {
                    Ok(crate::domain::call::CallOutcome {
                        created: Vec::new(),
                        request_id: "r".into(),
                        output: String::new(),
                    })
                } else {
                    Err("refused".into())
                },
            });
        }
        out.extend(end);
        out
    }

    #[test]
    fn anti_flapping_counts_runs_that_failed_over_whatever_became_of_them() {
        let restart = ProviderCall::RestartApp {
            instance_id: "i-1".into(),
        };
        let terminate = ProviderCall::TerminateInstances {
            instance_id: "i-1".into(),
        };
        let stop = ProviderCall::StopInstances {
            instance_id: "i-1".into(),
            force: false,
        };
        let aborted = Record::Aborted {
            at: DateTime::UNIX_EPOCH + chrono::Duration::minutes(30),
            reason: "aborted by the operator (x)".into(),
        };
        let summary = |records: Vec<Record>| summarise(&records, "r.jsonl".into()).unwrap();
        // Only restarted the app: nothing to count.
        let looked = summary(run_of("a", 0, &[(restart.clone(), true)], None));
        assert_eq!(looked.failover_at, None);
        // A failover call that was refused did not happen.
        let refused = summary(run_of("b", 0, &[(terminate, false)], None));
        assert_eq!(refused.failover_at, None);
        // Stopped an instance at minute 2, then aborted: counted from minute 2.
        let stopped = summary(run_of(
            "c",
            0,
            &[(restart, true), (stop, true)],
            Some(aborted),
        ));
        assert_eq!(
            stopped.failover_at,
            Some(DateTime::UNIX_EPOCH + chrono::Duration::minutes(2))
        );
        let pbs = crate::runbook::model::load_all(None).unwrap();
        let web = crate::runbook::model::find(&pbs, "web-replace").unwrap();
        let window = chrono::Duration::minutes(30);
        let at = |m| DateTime::UNIX_EPOCH + chrono::Duration::minutes(m);
        let runs = vec![looked, stopped];
        assert_eq!(
            recent_failover(&runs, &pbs, web, at(20), window).map(|r| r.run_id.as_str()),
            Some("c")
        );
        assert!(recent_failover(&runs, &pbs, web, at(33), window).is_none());
        assert!(recent_failover(&runs[..1], &pbs, web, at(1), window).is_none());
    }

    #[test]
    fn damage_before_the_last_line_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r2.jsonl");
        let good = serde_json::to_string(&note("x")).unwrap();
        std::fs::write(&path, format!("{good}\nnot json\n{good}\n")).unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("r2.jsonl:2:"), "{err}");
    }

    #[test]
    fn finished_runs_are_not_offered_for_resume() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::create(dir.path(), "r3").unwrap();
        j.append(&started("r3")).unwrap();
        j.append(&Record::Finished {
            at: DateTime::UNIX_EPOCH,
            outcome: "done".into(),
        })
        .unwrap();
        assert!(unfinished(dir.path()).is_empty());
        assert_eq!(
            find(dir.path(), "r3").unwrap().ended.as_deref(),
            Some("finished: done")
        );
        assert!(find(dir.path(), "nope").is_err());
    }
}
