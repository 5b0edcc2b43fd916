//! Following a run from its journal, as it grows: the run a follower watches (the one named,
//! or the newest unfinished one, and the next one started while it watches), and its records
//! each time the file grew. Reads only: a follower can change nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::journal::{self, RunSummary};
use super::record::Record;

/// How often a follower looks at the journal for new records.
pub const FOLLOW_POLL: Duration = Duration::from_millis(500);

pub struct JournalTail {
    dir: PathBuf,
    /// The run named on the command line: followed to its end, never another.
    pinned: Option<String>,
    current: Option<RunSummary>,
    /// The journals' file names when the runs were last listed: every journal is read to list
    /// them, so that is done again only when a journal appears or goes.
    names: Vec<std::ffi::OsString>,
    /// Bytes of the current journal already read.
    read_len: u64,
}

impl JournalTail {
    pub fn new(dir: &Path, pinned: Option<&str>) -> JournalTail {
        JournalTail {
            dir: dir.to_path_buf(),
            pinned: pinned.map(String::from),
            current: None,
            names: Vec::new(),
            read_len: 0,
        }
    }

    /// The run to follow now: the pinned one; else the newest unfinished run, else the newest
    /// run, and a run started after the one followed replaces it.
    fn choose(&mut self) -> Option<RunSummary> {
        let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.file_name()))
                    .filter(|n| {
                        std::path::Path::new(n)
                            .extension()
                            .is_some_and(|x| x == "jsonl")
                    })
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        if let Some(cur) = &self.current
            && names == self.names
        {
            return Some(cur.clone());
        }
        self.names = names;
        let runs = journal::list(&self.dir);
        if let Some(id) = &self.pinned {
            return runs.into_iter().find(|r| &r.run_id == id);
        }
        let newest_open = runs.iter().rev().find(|r| r.ended.is_none()).cloned();
        let newest = newest_open.or_else(|| runs.last().cloned())?;
        match &self.current {
            Some(cur) if cur.started >= newest.started => Some(cur.clone()),
            _ => Some(newest),
        }
    }

    /// The followed run and all its records, when its journal grew (or another run is followed
    /// now) since the last call; `None` when nothing changed.
    pub fn poll(&mut self) -> Result<Option<(RunSummary, Vec<Record>)>, String> {
        let Some(run) = self.choose() else {
            return Ok(None);
        };
        let switched = self.current.as_ref().map(|c| &c.run_id) != Some(&run.run_id);
        let len = std::fs::metadata(&run.path).map_or(0, |m| m.len());
        if !switched && len == self.read_len {
            return Ok(None);
        }
        let records = journal::read(&run.path).map_err(|e| e.to_string())?;
        self.read_len = len;
        self.current = Some(run.clone());
        Ok(Some((run, records)))
    }

    pub fn pinned(&self) -> Option<&str> {
        self.pinned.as_deref()
    }
}

/// Whether the records end the run (finished or aborted).
pub fn ended(records: &[Record]) -> bool {
    records
        .iter()
        .any(|r| matches!(r, Record::Finished { .. } | Record::Aborted { .. }))
}
