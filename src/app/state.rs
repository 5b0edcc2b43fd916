//! Everything the screen shows, owned by the event loop and changed only by `update`.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

use super::table::SortColumn;
use crate::config::Config;
use crate::detect::Incident;
use crate::domain::FleetSnapshot;
use crate::replicas::Candidate;

/// The timeline keeps this many entries; older ones scroll away.
pub const TIMELINE_CAPACITY: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The simulated fleet: nothing real can be harmed.
    Drill,
    /// A real fleet before the operator arms the console.
    ReadOnly,
    /// A real fleet, armed: playbooks may act.
    Armed,
}

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Mode::Drill => "DRILL",
            Mode::ReadOnly => "READ-ONLY",
            Mode::Armed => "ARMED",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputMode {
    Normal,
    /// Keys go into the filter until Enter or Esc.
    Filter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Info,
    Detected,
    Cleared,
    Error,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    pub kind: EntryKind,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct App {
    pub config: Config,
    pub provider: &'static str,
    pub mode: Mode,
    /// Wall clock, advanced by ticks so that `view` never reads the clock itself.
    pub now: DateTime<Utc>,
    pub snapshot: Option<FleetSnapshot>,
    /// When the newest snapshot arrived (wall clock): the header's data age.
    pub fetched_at: Option<DateTime<Utc>>,
    /// The newest provider failure, cleared by the next good snapshot.
    pub provider_error: Option<String>,
    pub incidents: Vec<Incident>,
    pub replicas: Vec<Candidate>,
    pub timeline: VecDeque<TimelineEntry>,
    /// Filtered, sorted indices into `snapshot.instances`.
    pub rows: Vec<usize>,
    pub selected: usize,
    /// First visible row of the fleet table.
    pub offset: usize,
    pub sort: SortColumn,
    pub reverse: bool,
    pub filter: String,
    pub input: InputMode,
    pub show_help: bool,
    /// False when NO_COLOR asks for a monochrome screen.
    pub color: bool,
    pub playbooks: Vec<crate::runbook::model::Playbook>,
    /// The run on screen (also after it ended, until closed with `c`).
    pub run: Option<crate::runbook::engine::Run>,
    /// Runs in the journal, for anti-flapping; refreshed by the event loop.
    pub past_runs: Vec<crate::runbook::journal::RunSummary>,
    pub prompt: Option<super::runs::Prompt>,
    /// The last refusal or warning, shown until the next key.
    pub notice: Option<String>,
    /// Requests for the event loop, drained after every update.
    pub outbox: Vec<super::runs::Outgoing>,
    /// `user@host`, for journals and postmortems.
    pub operator: String,
    /// The fleet's clock in the newest snapshot (virtual time for the simulator).
    pub fleet_clock: Option<DateTime<Utc>>,
    /// Terminal size, kept so `update` can page and scroll by what the screen shows.
    pub size: (u16, u16),
    pub should_quit: bool,
}

impl App {
    pub fn new(config: Config, provider: &'static str, mode: Mode, now: DateTime<Utc>) -> App {
        App {
            config,
            provider,
            mode,
            now,
            snapshot: None,
            fetched_at: None,
            provider_error: None,
            incidents: Vec::new(),
            replicas: Vec::new(),
            timeline: VecDeque::new(),
            rows: Vec::new(),
            selected: 0,
            offset: 0,
            sort: SortColumn::Role,
            reverse: false,
            filter: String::new(),
            input: InputMode::Normal,
            show_help: false,
            color: true,
            playbooks: Vec::new(),
            run: None,
            past_runs: Vec::new(),
            prompt: None,
            notice: None,
            outbox: Vec::new(),
            operator: String::from("unknown"),
            fleet_clock: None,
            size: (80, 24),
            should_quit: false,
        }
    }

    pub fn push_timeline(&mut self, at: DateTime<Utc>, kind: EntryKind, text: impl Into<String>) {
        if self.timeline.len() == TIMELINE_CAPACITY {
            self.timeline.pop_front();
        }
        self.timeline.push_back(TimelineEntry {
            at,
            kind,
            text: text.into(),
        });
    }

    pub fn selected_instance(&self) -> Option<&crate::domain::Instance> {
        let snap = self.snapshot.as_ref()?;
        self.rows
            .get(self.selected)
            .and_then(|&i| snap.instances.get(i))
    }
}
