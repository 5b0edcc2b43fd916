//! The console's event loop: input, clock and provider results arrive as messages on one
//! bounded channel; the loop applies them with `update`, carries out what `update` asked for
//! (journals, run executors) and redraws only when something changed.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use ratatui::Terminal;
use ratatui::backend::Backend;
use ratatui::crossterm::event::{self, Event};
use tokio::sync::mpsc::{Receiver, Sender};

use std::path::PathBuf;

use crate::app::{App, Arming, Msg, Outgoing, update};
use crate::config::Config;
use crate::drill::DrillState;
use crate::mirror;
use crate::provider::aws::logs::LogsMirror;
use crate::provider::{Provider, snapshot_within_bound};
use crate::runbook::event::Effect;
use crate::runbook::executor::{self, Answer};
use crate::runbook::journal::{self, Journal, RunSummary};
use crate::runbook::model::Playbook;
use crate::ui::view;

/// The header clock and data age change once a second.
pub const CLOCK_TICK: Duration = Duration::from_secs(1);
/// Room for a burst of keys plus pending provider results; senders wait when it is full.
pub const MSG_CHANNEL_CAPACITY: usize = 256;

/// Asks the provider for a snapshot every refresh interval and sends the result as a message.
pub fn spawn_provider_poll(
    provider: Arc<dyn Provider>,
    tx: Sender<Msg>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let result = snapshot_within_bound(provider.as_ref()).await;
            let msg = match result {
                Ok(snapshot) => Msg::Snapshot {
                    snapshot: Box::new(snapshot),
                    fetched_at: Utc::now(),
                },
                Err(e) => {
                    tracing::warn!("provider {}: {e}", provider.name());
                    Msg::ProviderFailed {
                        error: e.to_string(),
                        at: Utc::now(),
                    }
                }
            };
            if tx.send(msg).await.is_err() {
                return;
            }
            tokio::time::sleep(provider.refresh_interval()).await;
        }
    })
}

pub fn spawn_clock(tx: Sender<Msg>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CLOCK_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            if tx.send(Msg::Tick(Utc::now())).await.is_err() {
                return;
            }
        }
    })
}

/// Terminal input is read on its own thread: crossterm's read blocks, and must not block tokio.
pub fn spawn_input_thread(tx: Sender<Msg>) {
    std::thread::spawn(move || {
        loop {
            let msg = match event::read() {
                Ok(Event::Key(k)) => Msg::Key(k),
                Ok(Event::Resize(w, h)) => Msg::Resize(w, h),
                Ok(_) => continue,
                Err(e) => {
                    tracing::error!("terminal input: {e}");
                    return;
                }
            };
            if tx.blocking_send(msg).is_err() {
                return;
            }
        }
    });
}

/// What the loop needs to carry out the app's requests: the provider (for run executors), the
/// channel answers come back on, and where journals live.
pub struct RunIo {
    pub provider: Arc<dyn Provider>,
    pub tx: Sender<Msg>,
    pub journal_dir: Option<PathBuf>,
    /// Where a drill's scorecard is kept with the earlier attempts.
    pub drill_results: Option<PathBuf>,
    /// Where journals are mirrored (`[journal] mirror`), and the mirrors of this console's runs.
    pub mirror: Option<Arc<LogsMirror>>,
    mirrored: Vec<mirror::MirrorHandle>,
    exec: Option<Sender<Vec<Effect>>>,
}

impl RunIo {
    pub fn new(
        provider: Arc<dyn Provider>,
        tx: Sender<Msg>,
        journal_dir: Option<PathBuf>,
    ) -> RunIo {
        RunIo {
            provider,
            tx,
            journal_dir,
            drill_results: crate::drill::scorecard::results_path(),
            mirror: None,
            mirrored: Vec::new(),
            exec: None,
        }
    }

    /// Carries out everything `update` asked for; answers go back through `update` at once.
    async fn serve(&mut self, app: &mut App) {
        while !app.outbox.is_empty() {
            for out in std::mem::take(&mut app.outbox) {
                match out {
                    Outgoing::Start {
                        run_id,
                        effects,
                        resumed,
                    } => {
                        let opened = match &self.journal_dir {
                            Some(dir) if resumed => {
                                Journal::open(dir, &run_id).map_err(|e| e.to_string())
                            }
                            Some(dir) => Journal::create(dir, &run_id).map_err(|e| e.to_string()),
                            None => {
                                Err("no data directory for run journals (set XDG_DATA_HOME)".into())
                            }
                        };
                        match opened {
                            Ok(journal) => {
                                if let Some(m) = &self.mirror {
                                    let path = journal.path().to_path_buf();
                                    let run = run_id.clone();
                                    self.mirrored.push(mirror::spawn(m.clone(), path, run));
                                }
                                let exec = executor::spawn(
                                    self.provider.clone(),
                                    journal,
                                    run_id,
                                    self.tx.clone(),
                                    Msg::RunAnswer,
                                );
                                if exec.send(effects).await.is_err() {
                                    tracing::error!(
                                        "run executor stopped before its first effects"
                                    );
                                }
                                self.exec = Some(exec);
                            }
                            Err(e) => {
                                update(app, Msg::RunAnswer(Answer::JournalFailed(e)));
                            }
                        }
                    }
                    Outgoing::Effects(effects) => match &self.exec {
                        Some(exec) if exec.send(effects).await.is_ok() => {}
                        _ => {
                            update(
                                app,
                                Msg::RunAnswer(Answer::JournalFailed(
                                    "the run executor is not running".into(),
                                )),
                            );
                        }
                    },
                    Outgoing::LoadJournal(summary) => {
                        let records = journal::read(&summary.path).map_err(|e| e.to_string());
                        update(app, Msg::Resumed { summary, records });
                    }
                    Outgoing::ListRuns => {
                        if let Some(dir) = &self.journal_dir {
                            update(app, Msg::Runs(journal::list(dir)));
                        }
                    }
                    Outgoing::SaveDrill(card) => {
                        let saved = match &self.drill_results {
                            Some(path) => crate::drill::scorecard::save(path, &card)
                                .map(|()| path.clone())
                                .map_err(|e| format!("{}: {e}", path.display())),
                            None => Err("no data directory (set XDG_DATA_HOME)".into()),
                        };
                        update(app, Msg::DrillSaved(saved));
                    }
                }
            }
        }
    }
}

/// How long quitting waits for the last records to reach the journal's mirror.
const QUIT_MIRROR_WAIT: Duration = Duration::from_secs(5);
/// How long quitting waits for a run's last journal records to reach the disk.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(3);

impl RunIo {
    /// Waits until the run executor has written everything queued before quitting; answers
    /// that arrive meanwhile still go through `update`, so their records are journaled too.
    async fn flush(&mut self, app: &mut App, rx: &mut Receiver<Msg>) {
        self.flush_journal(app, rx).await;
        // A run left unfinished sends the rest when it is resumed: quitting waits a little.
        for m in std::mem::take(&mut self.mirrored) {
            if let Err(e) = m.flush(QUIT_MIRROR_WAIT).await {
                tracing::warn!("journal mirror: {e}");
            }
        }
    }

    async fn flush_journal(&mut self, app: &mut App, rx: &mut Receiver<Msg>) {
        let Some(exec) = self.exec.take() else { return };
        if exec.send(vec![Effect::Sync]).await.is_err() {
            return;
        }
        let deadline = tokio::time::Instant::now() + FLUSH_TIMEOUT;
        while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, rx.recv()).await {
            if matches!(msg, Msg::RunAnswer(Answer::Synced)) {
                return;
            }
            if matches!(msg, Msg::RunAnswer(_)) {
                update(app, msg);
                for out in std::mem::take(&mut app.outbox) {
                    if let Outgoing::Effects(effects) = out {
                        let _ = exec.send(effects).await;
                    }
                }
                let _ = exec.send(vec![Effect::Sync]).await;
            }
        }
        tracing::warn!("quit before the run's journal was fully written");
    }
}

/// Runs until the operator quits. `after_draw` is called after every frame (benchmarks hook in
/// here); return `false` from it to stop.
pub async fn drive<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    rx: &mut Receiver<Msg>,
    mut io: Option<&mut RunIo>,
    mut after_draw: impl FnMut(&App) -> bool,
) -> anyhow::Result<()>
where
    B::Error: Send + Sync + 'static,
{
    let size = terminal.size()?;
    app.size = (size.width, size.height);
    terminal.draw(|f| view(app, f))?;
    if !after_draw(app) {
        return Ok(());
    }
    while let Some(msg) = rx.recv().await {
        let mut dirty = update(app, msg);
        // Apply everything already queued before drawing, so a burst costs one frame.
        while let Ok(more) = rx.try_recv() {
            dirty |= update(app, more);
        }
        if let Some(io) = io.as_deref_mut() {
            io.serve(app).await;
        } else {
            app.outbox.clear();
        }
        if app.should_quit {
            if let Some(io) = io.as_deref_mut() {
                io.flush(app, rx).await;
            }
            return Ok(());
        }
        if dirty {
            terminal.draw(|f| view(app, f))?;
            if !after_draw(app) {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// How the console is shown.
#[derive(Clone, Default)]
pub struct Options {
    /// Where run journals are mirrored (`[journal] mirror`), connected.
    pub mirror: Option<Arc<LogsMirror>>,
    /// The layout for a shared screen (`--present`).
    pub present: bool,
    pub lang: crate::i18n::Lang,
    /// Quit once the first frame is drawn (to measure startup).
    pub exit_after_first_frame: bool,
}

/// A scored drill for the console: its scenario, and the earlier attempts at it (newest first).
pub struct DrillSetup {
    pub scenario: crate::drill::Scenario,
    pub history: Vec<crate::drill::Scorecard>,
}

/// Runs the console on `provider` until the operator quits: a drill starts armed, a real fleet
/// read-only; an unfinished one of `past_runs` is offered for resume. With
/// `exit_after_first_frame` it quits once the first frame is drawn (to measure startup).
pub async fn run(
    config: Config,
    playbooks: Vec<Playbook>,
    provider: Arc<dyn Provider>,
    past_runs: Vec<RunSummary>,
    drill: Option<DrillSetup>,
    options: Options,
) -> anyhow::Result<()> {
    let arming = if provider.is_drill() {
        Arming::Drill
    } else {
        // A real fleet: nothing acts until the operator arms the console.
        Arming::ReadOnly
    };
    let journal_dir = journal::default_dir();
    let mut app = App::new(config, provider.name(), arming, Utc::now());
    app.color = crate::ui::theme::Theme::color_from_env();
    app.local_offset = *chrono::Local::now().offset();
    app.refresh_secs = provider.refresh_interval().as_secs().max(1) as i64;
    app.playbooks = playbooks;
    app.operator = crate::runbook::setup::operator();
    app.present = options.present;
    app.lang = options.lang;
    app.drill_epoch = provider.drill_epoch();
    if let Some(setup) = drill {
        let start = app.drill_epoch.unwrap_or(app.now);
        let heartbeat = app.config.detect.master_heartbeat_secs;
        let state = DrillState::new(setup.scenario, start, &app.operator, heartbeat);
        app.drill = Some(state);
        app.drill_history = setup.history;
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel(MSG_CHANNEL_CAPACITY);
    let mut io = RunIo::new(provider.clone(), tx.clone(), journal_dir);
    io.mirror = options.mirror.clone();
    // The journal list goes first: an unfinished run is offered for resume at once.
    let _ = tx.send(Msg::Runs(past_runs)).await;
    // ratatui::init enters raw mode and the alternate screen, and installs a panic hook that
    // leaves both before the panic report is printed.
    let mut terminal = ratatui::init();
    spawn_input_thread(tx.clone());
    spawn_clock(tx.clone());
    spawn_provider_poll(provider, tx);
    let result = drive(&mut terminal, &mut app, &mut rx, Some(&mut io), |_| {
        !options.exit_after_first_frame
    })
    .await;
    ratatui::restore();
    result
}
