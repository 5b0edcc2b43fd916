//! The console's event loop: input, clock and provider results arrive as messages on one
//! bounded channel; the loop applies them with `update` and redraws only when something changed.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use ratatui::Terminal;
use ratatui::backend::Backend;
use ratatui::crossterm::event::{self, Event};
use tokio::sync::mpsc::{Receiver, Sender};

use crate::app::{App, Msg, update};
use crate::provider::{Provider, ProviderError};
use crate::ui::view;

/// The header clock and data age change once a second.
pub const CLOCK_TICK: Duration = Duration::from_secs(1);
/// Room for a burst of keys plus pending provider results; senders wait when it is full.
pub const MSG_CHANNEL_CAPACITY: usize = 256;
/// No provider call may hold the refresh loop longer than this.
pub const PROVIDER_TIMEOUT: Duration = Duration::from_secs(20);

/// Asks the provider for a snapshot every refresh interval and sends the result as a message.
pub fn spawn_provider_poll(
    provider: Arc<dyn Provider>,
    tx: Sender<Msg>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let result = tokio::time::timeout(PROVIDER_TIMEOUT, provider.snapshot())
                .await
                .unwrap_or(Err(ProviderError::Timeout(PROVIDER_TIMEOUT)));
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

/// Runs until the operator quits. `after_draw` is called after every frame (benchmarks hook in
/// here); return `false` from it to stop.
pub async fn drive<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    rx: &mut Receiver<Msg>,
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
        if app.should_quit {
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
