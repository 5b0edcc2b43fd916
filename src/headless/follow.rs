//! `dake follow` without a terminal: the run's journal records as lines, as they are written,
//! until the run ends (like `tail -f`, but of one run).

use std::path::Path;

use crate::drill::scorecard;
use crate::runbook::journal;
use crate::runbook::tail::{FOLLOW_POLL, JournalTail, ended};

/// Prints the followed run's records as they come; exit 0 once it ended.
pub fn plain(dir: &Path, run_id: Option<&str>, results: Option<&Path>) -> anyhow::Result<u8> {
    if let Some(id) = run_id {
        journal::find(dir, id)?;
    }
    let mut tail = JournalTail::new(dir, run_id);
    let mut following: Option<String> = None;
    let mut shown = 0;
    let mut said_waiting = false;
    loop {
        match tail.poll().map_err(anyhow::Error::msg)? {
            Some((run, records)) => {
                if following.as_deref() != Some(run.run_id.as_str()) {
                    println!(
                        "following run {} ({} on {}), read-only; journal {}",
                        run.run_id,
                        run.playbook,
                        run.target_name,
                        run.path.display()
                    );
                    following = Some(run.run_id.clone());
                    shown = 0;
                }
                for r in records.iter().skip(shown) {
                    println!("{}  {}", r.at().format("%H:%M:%S"), r.describe());
                }
                shown = records.len();
                if ended(&records) {
                    let card = results
                        .map(scorecard::load)
                        .and_then(|all| scorecard::for_run(&all, &run.run_id));
                    if let Some(card) = card {
                        println!(
                            "drill {}: {}/100, {}",
                            card.scenario, card.score, card.outcome
                        );
                    }
                    return Ok(0);
                }
            }
            None if following.is_none() && !said_waiting => {
                println!("waiting for a run to start in {}", dir.display());
                said_waiting = true;
            }
            None => {}
        }
        std::thread::sleep(FOLLOW_POLL);
    }
}
