//! A run's journal copied to CloudWatch Logs as it is written: read back from the journal file
//! (the record of truth), sent in order and in batches, retried without loss, and never in the
//! way of a step: the executor writes its journal as before, and this task follows it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use crate::provider::aws::logs::LogsMirror;
use crate::runbook::journal::{self, RunSummary};
use crate::runbook::record::Record;

/// How often the journal is looked at for records to send.
pub const MIRROR_POLL: Duration = Duration::from_secs(1);
/// How long a process ending waits for the last records to reach CloudWatch Logs.
pub const MIRROR_FLUSH: Duration = Duration::from_secs(15);
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MOST: Duration = Duration::from_secs(30);

/// Where a mirror is: records written to the journal, sent, and the last failure if the last
/// attempt failed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MirrorState {
    pub written: usize,
    pub sent: usize,
    pub error: Option<String>,
    pub done: bool,
}

pub struct MirrorHandle {
    state: watch::Receiver<MirrorState>,
    finishing: Arc<AtomicBool>,
}

/// The journal's complete lines (a line still being written is not one yet).
async fn complete_lines(path: &PathBuf) -> Vec<String> {
    let text = tokio::fs::read_to_string(path).await.unwrap_or_default();
    let mut lines: Vec<String> = text.split_inclusive('\n').map(String::from).collect();
    if lines.last().is_some_and(|l| !l.ends_with('\n')) {
        lines.pop();
    }
    lines
        .into_iter()
        .map(|l| l.trim_end_matches('\n').to_string())
        .filter(|l| !l.trim().is_empty())
        .collect()
}

fn ends_run(line: &str) -> bool {
    matches!(
        serde_json::from_str::<Record>(line),
        Ok(Record::Finished { .. } | Record::Aborted { .. })
    )
}

/// Events already in the run's stream (a resumed run's, or one sent before a crash): they are
/// not sent twice.
async fn already_sent(mirror: &LogsMirror, stream: &str) -> usize {
    let (mut count, mut token) = (0, None);
    loop {
        match mirror.read(stream, token.clone()).await {
            Ok((lines, next)) if !lines.is_empty() && next != token => {
                count += lines.len();
                token = next;
            }
            _ => return count,
        }
    }
}

/// Starts mirroring `path`, the journal of `run_id`, to its stream.
pub fn spawn(mirror: Arc<LogsMirror>, path: PathBuf, run_id: String) -> MirrorHandle {
    let (tx, rx) = watch::channel(MirrorState::default());
    let finishing = Arc::new(AtomicBool::new(false));
    let stop = finishing.clone();
    tokio::spawn(async move {
        let mut state = MirrorState::default();
        let mut ready = false;
        let mut backoff = RETRY_FIRST;
        loop {
            if !ready {
                match mirror.ensure_stream(&run_id).await {
                    Ok(()) => {
                        ready = true;
                        state.sent = already_sent(&mirror, &run_id).await;
                    }
                    Err(e) => state.error = Some(e.to_string()),
                }
            }
            let lines = complete_lines(&path).await;
            state.written = lines.len();
            let pending = lines.get(state.sent..).unwrap_or_default();
            if ready && !pending.is_empty() {
                let n = LogsMirror::batch_len(pending);
                match mirror.put(&run_id, &pending[..n]).await {
                    Ok(()) => {
                        state.sent += n;
                        state.error = None;
                        backoff = RETRY_FIRST;
                    }
                    Err(e) => state.error = Some(e.to_string()),
                }
            }
            let all_sent = ready && state.sent >= state.written;
            let over = lines.last().is_some_and(|l| ends_run(l));
            state.done = all_sent && (over || stop.load(Ordering::SeqCst));
            if tx.send(state.clone()).is_err() || state.done {
                return;
            }
            if state.error.is_some() {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(RETRY_MOST);
            } else if all_sent {
                tokio::time::sleep(MIRROR_POLL).await;
            }
        }
    });
    MirrorHandle {
        state: rx,
        finishing,
    }
}

impl MirrorHandle {
    pub fn state(&self) -> MirrorState {
        self.state.borrow().clone()
    }

    /// Waits, at most `limit`, until every record written is sent; `Err` says what is left
    /// and why.
    pub async fn flush(mut self, limit: Duration) -> Result<(), String> {
        self.finishing.store(true, Ordering::SeqCst);
        let waited = tokio::time::timeout(limit, self.state.wait_for(|s| s.done))
            .await
            .is_ok_and(|r| r.is_ok());
        let s = self.state.borrow().clone();
        if waited || s.done {
            return Ok(());
        }
        Err(format!(
            "{} of {} journal records not sent to CloudWatch Logs{}; the journal on this machine \
             has them all",
            s.written.saturating_sub(s.sent),
            s.written,
            s.error.map_or(String::new(), |e| format!(" ({e})"))
        ))
    }
}

/// How often a follower on another machine reads the run's stream.
pub const REMOTE_POLL: Duration = Duration::from_secs(2);

/// A run followed from its CloudWatch Logs stream: the one named, or the stream written to
/// last, and a newer one when a run starts after it.
pub struct RemoteTail {
    mirror: Arc<LogsMirror>,
    pinned: Option<String>,
    stream: Option<String>,
    token: Option<String>,
    lines: Vec<String>,
}

impl RemoteTail {
    pub fn new(mirror: Arc<LogsMirror>, pinned: Option<&str>) -> RemoteTail {
        RemoteTail {
            mirror,
            pinned: pinned.map(String::from),
            stream: None,
            token: None,
            lines: Vec::new(),
        }
    }

    /// The run and all its records, when its stream grew (or a newer run is followed now).
    pub async fn poll(&mut self) -> Result<Option<(RunSummary, Vec<Record>)>, String> {
        let want = match &self.pinned {
            Some(id) => Some(id.clone()),
            None => self
                .mirror
                .newest_stream()
                .await
                .map_err(|e| e.to_string())?,
        };
        let Some(stream) = want else {
            return Ok(None);
        };
        let switched = self.stream.as_deref() != Some(stream.as_str());
        if switched {
            self.stream = Some(stream.clone());
            self.token = None;
            self.lines.clear();
        }
        let mut grew = false;
        loop {
            let (lines, next) = self
                .mirror
                .read(&stream, self.token.clone())
                .await
                .map_err(|e| e.to_string())?;
            if lines.is_empty() || next == self.token {
                break;
            }
            grew = true;
            self.lines.extend(lines);
            self.token = next;
        }
        if !grew && !switched {
            return Ok(None);
        }
        let records: Vec<Record> = self
            .lines
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let path = PathBuf::from(format!("{}/{stream}", self.mirror.group()));
        Ok(journal::summarise(&records, path).map(|s| (s, records)))
    }
}

/// Where a follower reads a run from: this machine's journals, or the mirror.
pub enum Tail {
    Local(crate::runbook::tail::JournalTail),
    Remote(RemoteTail),
}

impl Tail {
    pub async fn poll(&mut self) -> Result<Option<(RunSummary, Vec<Record>)>, String> {
        match self {
            Tail::Local(t) => t.poll(),
            Tail::Remote(t) => t.poll().await,
        }
    }

    pub fn every(&self) -> Duration {
        match self {
            Tail::Local(_) => crate::runbook::tail::FOLLOW_POLL,
            Tail::Remote(_) => REMOTE_POLL,
        }
    }
}
