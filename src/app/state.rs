//! Everything the screen shows, owned by the event loop and changed only by `update`.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Utc};

use super::table::SortColumn;
use crate::config::Config;
use crate::detect::Incident;
use crate::domain::{FleetSnapshot, Role};
use crate::replicas::Candidate;
use crate::text::age;

/// The timeline keeps this many entries; older ones scroll away.
pub const TIMELINE_CAPACITY: usize = 500;
/// Data is stale once this many refresh intervals have passed without a new snapshot.
const STALE_AFTER_REFRESHES: i64 = 3;

/// What the header says about the data's freshness. A clock tick redraws only when this
/// changes, so an idle console does not repaint for nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataAge {
    Waiting,
    /// The provider's last answer was an error (throttled, timed out, refused); the screen
    /// still shows the last good data, this old, if there is any.
    Failing(Option<String>),
    Fresh(String),
    Stale(String),
}

/// What the console may do to the fleet: the header's badge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arming {
    /// The simulated fleet: nothing real can be harmed.
    Drill,
    /// A real fleet before the operator arms the console.
    ReadOnly,
    /// A real fleet, armed: playbooks may act.
    Armed,
    /// `dake follow`: a run's journal on screen, and nothing that could change anything.
    Following,
}

impl Arming {
    pub fn label(self) -> &'static str {
        match self {
            Arming::Drill => "DRILL",
            Arming::ReadOnly => "READ-ONLY",
            Arming::Armed => "ARMED",
            Arming::Following => "FOLLOW read-only",
        }
    }
}

/// Where keys go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    /// To the keymap: move, sort, start playbooks, step runs.
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

impl EntryKind {
    /// How a journal record shows on the timeline: failures red, a finished run green.
    pub fn of(rec: &crate::runbook::record::Record) -> EntryKind {
        use crate::runbook::record::Record;
        match rec {
            Record::Aborted { .. }
            | Record::Result {
                outcome: Err(_), ..
            } => EntryKind::Error,
            Record::Finished { .. } => EntryKind::Cleared,
            _ => EntryKind::Info,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    pub kind: EntryKind,
    pub text: String,
}

/// Positions in `snapshot.instances` of the master, the database endpoint's target and each
/// replica, found once per snapshot: looking them up by id in every frame scanned the whole
/// fleet several times per draw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbIndex {
    /// `snapshot.master()`.
    pub master: Option<usize>,
    pub endpoint: Option<usize>,
    /// Aligned with `App.replicas`.
    pub replicas: Vec<Option<usize>>,
}

impl DbIndex {
    pub fn new(snap: &FleetSnapshot, replicas: &[Candidate]) -> DbIndex {
        let endpoint = snap.db_endpoint.as_ref().and_then(|ep| {
            let id = ep.target_id.as_str();
            snap.instances.iter().position(|i| i.id == id)
        });
        // Same choice as `FleetSnapshot::master`: the endpoint decides, else the first master.
        let master =
            endpoint.or_else(|| snap.instances.iter().position(|i| i.role == Role::DbMaster));
        let db: HashMap<&str, usize> = snap
            .instances
            .iter()
            .enumerate()
            .filter(|(_, i)| i.role != Role::Web)
            .map(|(n, i)| (i.id.as_str(), n))
            .rev() // the first of duplicate ids wins, as with `FleetSnapshot::find`
            .collect();
        let replicas = replicas
            .iter()
            .map(|c| db.get(c.instance_id.as_str()).copied())
            .collect();
        DbIndex {
            master,
            endpoint,
            replicas,
        }
    }

    /// Whether the positions still name the expected instances of `snap`: a snapshot installed
    /// without `update` (tests, drills) must not be read through a stale index.
    pub fn fits(&self, snap: &FleetSnapshot, replicas: &[Candidate]) -> bool {
        let is = |pos: Option<usize>, id: &str| {
            pos.is_none_or(|p| snap.instances.get(p).is_some_and(|i| i.id == id))
        };
        let endpoint_ok = match &snap.db_endpoint {
            Some(ep) => is(self.endpoint, &ep.target_id),
            None => self.endpoint.is_none(),
        };
        let master_ok = self.master.is_none_or(|p| {
            Some(p) == self.endpoint
                || snap
                    .instances
                    .get(p)
                    .is_some_and(|i| i.role == Role::DbMaster)
        });
        endpoint_ok
            && master_ok
            && self.replicas.len() == replicas.len()
            && self
                .replicas
                .iter()
                .zip(replicas)
                .all(|(&p, c)| is(p, &c.instance_id))
    }
}

#[derive(Debug, Clone)]
pub struct App {
    pub config: Config,
    /// The provider's short name, for the header and the timeline.
    pub provider_name: &'static str,
    pub arming: Arming,
    /// Wall clock, advanced by ticks so that `view` never reads the clock itself.
    pub now: DateTime<Utc>,
    pub snapshot: Option<FleetSnapshot>,
    /// When the newest snapshot arrived (wall clock): the header's data age.
    pub fetched_at: Option<DateTime<Utc>>,
    /// The newest provider failure, cleared by the next good snapshot.
    pub provider_error: Option<String>,
    pub incidents: Vec<Incident>,
    pub replicas: Vec<Candidate>,
    /// Where the replication panel's instances sit in `snapshot.instances`; `None` until
    /// `update` indexes a snapshot.
    pub db_index: Option<DbIndex>,
    pub timeline: VecDeque<TimelineEntry>,
    /// Filtered, sorted indices into `snapshot.instances`.
    pub rows: Vec<usize>,
    pub selected: usize,
    /// First visible row of the fleet table.
    pub offset: usize,
    pub sort: SortColumn,
    pub reverse: bool,
    pub filter: String,
    pub focus: Focus,
    pub show_help: bool,
    /// The debug line: what the last refresh asked the provider's API, by operation.
    pub show_api_calls: bool,
    /// False when NO_COLOR asks for a monochrome screen.
    pub color: bool,
    /// The provider's refresh interval in whole seconds (at least 1): data is stale after a few.
    pub refresh_secs: i64,
    /// The operator's UTC offset, read once at start so `view` never consults the system.
    pub local_offset: chrono::FixedOffset,
    pub playbooks: Vec<crate::runbook::model::Playbook>,
    /// The run on screen (also after it ended, until closed with `c`).
    pub run: Option<crate::runbook::engine::Run>,
    /// Runs in the journal, for anti-flapping; refreshed by the event loop.
    pub past_runs: Vec<crate::runbook::journal::RunSummary>,
    pub prompt: Option<super::prompts::Prompt>,
    /// The last refusal or warning, shown until the next key.
    pub notice: Option<String>,
    /// Requests for the event loop, drained after every update.
    pub outbox: Vec<super::runs::Outgoing>,
    /// `user@host`, for journals and postmortems.
    pub operator: String,
    /// Where the ids of runs started here come from.
    pub run_ids: crate::runbook::setup::RunIds,
    /// The fleet's clock in the newest snapshot (virtual time for the simulator).
    pub fleet_clock: Option<DateTime<Utc>>,
    /// What the screen speaks (`--lang`, or the locale).
    pub lang: crate::i18n::Lang,
    /// `--present`: the layout for a shared screen (big banner, keys shown, addresses masked).
    pub present: bool,
    /// The last key pressed and when, shown for a moment in present mode.
    pub last_key: Option<(String, DateTime<Utc>)>,
    /// `dake follow`: the run followed, and how many of its records are on the timeline.
    pub followed: Option<(crate::runbook::journal::RunSummary, usize)>,
    /// `dake follow`: the scorecard of the drill the followed run was part of, once saved.
    pub followed_card: Option<crate::drill::Scorecard>,
    /// The drill under way and scored, when `dake drill` started one.
    pub drill: Option<crate::drill::DrillState>,
    /// Journal records the drill's judge has yet to see (while a key's step holds the snapshot).
    pub drill_stash: Vec<crate::runbook::record::Record>,
    /// Earlier attempts at this drill's scenario, newest first (for the scorecard).
    pub drill_history: Vec<crate::drill::Scorecard>,
    /// The scorecard overlay is open.
    pub show_scorecard: bool,
    /// When the drill fleet's clock started (the plain console on the drill fleet says what is
    /// coming on its timeline); `None` on a real fleet.
    pub drill_epoch: Option<DateTime<Utc>>,
    /// Terminal size, kept so `update` can page and scroll by what the screen shows.
    pub size: (u16, u16),
    pub should_quit: bool,
}

impl App {
    pub fn new(
        config: Config,
        provider_name: &'static str,
        arming: Arming,
        now: DateTime<Utc>,
    ) -> App {
        App {
            config,
            provider_name,
            arming,
            now,
            snapshot: None,
            fetched_at: None,
            provider_error: None,
            incidents: Vec::new(),
            replicas: Vec::new(),
            db_index: None,
            timeline: VecDeque::new(),
            rows: Vec::new(),
            selected: 0,
            offset: 0,
            sort: SortColumn::Role,
            reverse: false,
            filter: String::new(),
            focus: Focus::Normal,
            show_help: false,
            show_api_calls: false,
            color: true,
            refresh_secs: 1,
            local_offset: chrono::FixedOffset::east_opt(0).expect("zero is a valid UTC offset"),
            playbooks: Vec::new(),
            run: None,
            past_runs: Vec::new(),
            prompt: None,
            notice: None,
            outbox: Vec::new(),
            operator: String::from("unknown"),
            run_ids: crate::runbook::setup::RunIds::from_clock(),
            fleet_clock: None,
            lang: crate::i18n::Lang::En,
            present: false,
            last_key: None,
            followed: None,
            followed_card: None,
            drill: None,
            drill_stash: Vec::new(),
            drill_history: Vec::new(),
            show_scorecard: false,
            drill_epoch: None,
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

    pub fn data_age(&self) -> DataAge {
        match (self.fetched_at, &self.provider_error) {
            (None, None) => DataAge::Waiting,
            (t, Some(_)) => DataAge::Failing(t.map(|t| age((self.now - t).num_seconds()))),
            (Some(t), None) => {
                let secs = (self.now - t).num_seconds();
                if secs > STALE_AFTER_REFRESHES * self.refresh_secs.max(1) {
                    DataAge::Stale(age(secs))
                } else {
                    DataAge::Fresh(age(secs))
                }
            }
        }
    }

    /// `D`: what the last refresh cost in API calls, e.g. to check a large fleet stays batched.
    /// Operations by their API names, packed into lines of `width`, never split inside one.
    pub fn api_call_lines(&self, width: usize) -> Vec<String> {
        let (head, items): (String, Vec<String>) =
            match self.snapshot.as_ref().map(|s| &s.api_calls) {
                None => (said!("API calls: no refresh yet").into(), Vec::new()),
                Some(c) if c.is_empty() => (
                    say!("API calls: none ({} reads no API)", self.provider_name),
                    Vec::new(),
                ),
                Some(c) => (
                    say!("API calls, last refresh: {}", c.values().sum::<u32>()),
                    c.iter().map(|(op, n)| format!("{op} {n}")).collect(),
                ),
            };
        let mut lines = vec![format!(" {}", crate::i18n::said(self.lang, &head))];
        for item in items {
            let last = lines.last_mut().expect("starts with the head line");
            if crate::text::width(last) + 3 + crate::text::width(&item) <= width {
                last.push_str(" · ");
                last.push_str(&item);
            } else {
                lines.push(format!("   {item}"));
            }
        }
        lines
    }

    pub fn selected_instance(&self) -> Option<&crate::domain::Instance> {
        let snap = self.snapshot.as_ref()?;
        self.rows
            .get(self.selected)
            .and_then(|&i| snap.instances.get(i))
    }
}
