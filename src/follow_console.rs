//! `dake follow` on a terminal: the console's loop with the journal of the followed run as
//! its only source, no provider and no executor, so nothing can be changed from it.

use std::path::PathBuf;

use chrono::Utc;
use tokio::sync::mpsc::Sender;

use crate::app::{App, Arming, Msg};
use crate::config::Config;
use crate::console::{MSG_CHANNEL_CAPACITY, drive, spawn_clock, spawn_input_thread};
use crate::drill::scorecard;
use crate::mirror::Tail;
use crate::runbook::model::Playbook;
use crate::runbook::tail::ended;

/// Where the follower reads: the run's journal (here, or its mirror), and where drills keep
/// their scorecards (on this machine).
pub struct Sources {
    pub tail: Tail,
    pub results: Option<PathBuf>,
}

/// How the follower's screen looks: `--present`, `--lang`.
pub struct Look {
    pub present: bool,
    pub lang: crate::i18n::Lang,
}

pub async fn follow(
    config: Config,
    playbooks: Vec<Playbook>,
    from: Sources,
    look: Look,
) -> anyhow::Result<()> {
    let mut app = App::new(config, "journal", Arming::Following, Utc::now());
    app.present = look.present;
    app.lang = look.lang;
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

/// Reads the journal as it grows: new records, and once the run ended the scorecard of the
/// drill it was part of, when one is saved.
fn spawn_tail(from: Sources, tx: Sender<Msg>) {
    tokio::spawn(async move {
        let Sources { mut tail, results } = from;
        // The run that ended and whose drill's scorecard is still to be found, if any.
        let mut over: Option<String> = None;
        loop {
            let sent = match tail.poll().await {
                Ok(Some((summary, records))) => {
                    over = ended(&records).then(|| summary.run_id.clone());
                    let msg = Msg::Followed {
                        summary: Box::new(summary),
                        records,
                    };
                    tx.send(msg).await
                }
                Ok(None) => Ok(()),
                Err(error) => {
                    tx.send(Msg::ProviderFailed {
                        error,
                        at: Utc::now(),
                    })
                    .await
                }
            };
            if sent.is_err() {
                return;
            }
            let card = over
                .as_deref()
                .and_then(|run| scorecard::saved_for_run(results.as_deref(), run));
            if let Some(card) = card {
                // Found once: the results file is not read again for this run.
                over = None;
                if tx.send(Msg::FollowedCard(Box::new(card))).await.is_err() {
                    return;
                }
            }
            tokio::time::sleep(tail.every()).await;
        }
    });
}
