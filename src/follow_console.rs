//! `dake follow` on a terminal: the console's loop with the journal of the followed run as
//! its only source, no provider and no executor, so nothing can be changed from it.

use std::path::PathBuf;

use chrono::Utc;
use tokio::sync::mpsc::Sender;

use crate::app::{App, Arming, Msg};
use crate::config::Config;
use crate::console::{MSG_CHANNEL_CAPACITY, drive, spawn_clock, spawn_input_thread};
use crate::drill::scorecard;
use crate::runbook::model::Playbook;
use crate::runbook::tail::{FOLLOW_POLL, JournalTail, ended};

/// Where the follower reads: the runs' journals, and where drills keep their scorecards.
pub struct Sources {
    pub journals: PathBuf,
    pub results: Option<PathBuf>,
    /// The run named on the command line, followed to its end.
    pub run_id: Option<String>,
}

pub async fn follow(
    config: Config,
    playbooks: Vec<Playbook>,
    from: Sources,
    present: bool,
) -> anyhow::Result<()> {
    let mut app = App::new(config, "journal", Arming::Following, Utc::now());
    app.present = present;
    app.color = crate::ui::theme::Theme::color_from_env();
    app.local_offset = *chrono::Local::now().offset();
    app.playbooks = playbooks;
    let (tx, mut rx) = tokio::sync::mpsc::channel(MSG_CHANNEL_CAPACITY);
    let mut terminal = ratatui::init();
    spawn_input_thread(tx.clone());
    spawn_clock(tx.clone());
    spawn_tail(from, tx);
    let result = drive(&mut terminal, &mut app, &mut rx, None, |_| true).await;
    ratatui::restore();
    result
}

/// Reads the journal (small files, plain reads) on its own thread: new records, and once the
/// run ended the scorecard of the drill it was part of, when one is saved.
fn spawn_tail(from: Sources, tx: Sender<Msg>) {
    std::thread::spawn(move || {
        let mut tail = JournalTail::new(&from.journals, from.run_id.as_deref());
        let mut over: Option<String> = None;
        loop {
            let sent = match tail.poll() {
                Ok(Some((summary, records))) => {
                    over = ended(&records).then(|| summary.run_id.clone());
                    let msg = Msg::Followed {
                        summary: Box::new(summary),
                        records,
                    };
                    tx.blocking_send(msg)
                }
                Ok(None) => Ok(()),
                Err(error) => tx.blocking_send(Msg::ProviderFailed {
                    error,
                    at: Utc::now(),
                }),
            };
            if sent.is_err() {
                return;
            }
            let card = over.as_deref().and_then(|run| {
                let all = scorecard::load(from.results.as_deref()?);
                scorecard::for_run(&all, run)
            });
            if let Some(card) = card
                && tx.blocking_send(Msg::FollowedCard(Box::new(card))).is_err()
            {
                return;
            }
            std::thread::sleep(FOLLOW_POLL);
        }
    });
}
