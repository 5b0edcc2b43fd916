//! Carries out the engine's effects in order: each journal record is on disk before the call
//! after it is sent. Runs as its own task so the console never waits on a disk or an API; the
//! headless CLI uses the same task.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::{Receiver, Sender, channel};

use super::already_applied;
use super::event::Effect;
use super::journal::Journal;
use crate::domain::call::{CallOutcome, ProviderCall};
use crate::provider::{Provider, ProviderError};

/// Effects queued for the executor; the engine produces a handful per key.
const EFFECT_QUEUE: usize = 64;

/// What the executor reports back, to be fed to the engine (or shown).
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    CallDone {
        index: usize,
        outcome: CallOutcome,
    },
    CallFailed {
        index: usize,
        error: String,
    },
    Refused(String),
    /// The journal could not be written: nothing after it was carried out.
    JournalFailed(String),
    /// Everything sent before the `Sync` effect is done.
    Synced,
}

/// Sends `call`, or, when `resolve` is set, first finds out whether an earlier attempt whose
/// answer was lost took effect.
pub async fn perform(
    provider: &dyn Provider,
    run_id: &str,
    step: usize,
    call: &ProviderCall,
    resolve: bool,
) -> Result<CallOutcome, String> {
    if resolve {
        if call.creates() {
            let found = provider
                .find_created(run_id, step)
                .await
                .map_err(|e| e.to_string())?;
            if let Some(id) = found.into_iter().next() {
                return Ok(CallOutcome {
                    created: vec![id],
                    request_id: said!("found by tag after resume").into(),
                    output: String::new(),
                });
            }
        } else {
            let snap = provider.snapshot().await.map_err(|e| e.to_string())?;
            if already_applied(call, &snap) {
                return Ok(CallOutcome {
                    created: Vec::new(),
                    request_id: said!("already applied before resume").into(),
                    output: String::new(),
                });
            }
        }
    }
    let limit = provider.call_timeout(call);
    match tokio::time::timeout(limit, provider.execute(call.clone())).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err(ProviderError::Timeout(say!(
            "{} gave no answer within {} s",
            call.operation(),
            limit.as_secs()
        ))
        .to_string()),
    }
}

/// Starts the executor for one run. Effects go in through the returned sender; answers come out
/// through `answers` wrapped by `wrap` (the console wraps them in its own message type).
pub fn spawn<M: Send + 'static>(
    provider: Arc<dyn Provider>,
    journal: Journal,
    run_id: String,
    answers: Sender<M>,
    wrap: fn(Answer) -> M,
) -> Sender<Vec<Effect>> {
    let (tx, rx) = channel::<Vec<Effect>>(EFFECT_QUEUE);
    tokio::spawn(run(
        provider,
        Arc::new(Mutex::new(journal)),
        run_id,
        rx,
        answers,
        wrap,
    ));
    tx
}

async fn run<M: Send + 'static>(
    provider: Arc<dyn Provider>,
    journal: Arc<Mutex<Journal>>,
    run_id: String,
    mut rx: Receiver<Vec<Effect>>,
    answers: Sender<M>,
    wrap: fn(Answer) -> M,
) {
    while let Some(effects) = rx.recv().await {
        for effect in effects {
            let answer = match effect {
                Effect::Journal(rec) => {
                    let j = journal.clone();
                    // fsync blocks; keep it off the async workers.
                    let written = tokio::task::spawn_blocking(move || {
                        let mut j = j.lock().unwrap_or_else(|p| p.into_inner());
                        j.append(&rec).map_err(|e| e.to_string())
                    })
                    .await
                    .unwrap_or_else(|e| Err(say!("journal writer stopped: {e}")));
                    match written {
                        Ok(()) => continue,
                        Err(e) => {
                            let _ = answers.send(wrap(Answer::JournalFailed(e))).await;
                            // Never act on an effect whose record is not on disk.
                            return;
                        }
                    }
                }
                Effect::Call {
                    step, index, call, ..
                } => match perform(provider.as_ref(), &run_id, step, &call, false).await {
                    Ok(outcome) => Answer::CallDone { index, outcome },
                    Err(error) => Answer::CallFailed { index, error },
                },
                Effect::Resolve {
                    step, index, call, ..
                } => match perform(provider.as_ref(), &run_id, step, &call, true).await {
                    Ok(outcome) => Answer::CallDone { index, outcome },
                    Err(error) => Answer::CallFailed { index, error },
                },
                Effect::Release(call) => {
                    if let Err(e) = perform(provider.as_ref(), &run_id, 0, &call, false).await {
                        tracing::warn!("{call}: {e}");
                    }
                    continue;
                }
                Effect::Refused(reason) => Answer::Refused(reason),
                Effect::Sync => Answer::Synced,
            };
            if answers.send(wrap(answer)).await.is_err() {
                return;
            }
        }
    }
}
