//! `dake follow` without a terminal: the run's journal records as lines, as they are written,
//! until the run ends (like `tail -f`, but of one run), from this machine's journals or from
//! their CloudWatch Logs mirror.

use std::path::Path;

use super::print_said;
use crate::drill::scorecard;
use crate::i18n::{Lang, said};
use crate::mirror::Tail;
use crate::runbook::tail::ended;

/// Prints the followed run's records as they come; exit 0 once it ended.
pub async fn plain(
    mut tail: Tail,
    from: &str,
    results: Option<&Path>,
    l: Lang,
) -> anyhow::Result<u8> {
    let mut following: Option<String> = None;
    let mut shown = 0;
    let mut said_waiting = false;
    loop {
        match tail.poll().await.map_err(anyhow::Error::msg)? {
            Some((run, records)) => {
                if following.as_deref() != Some(run.run_id.as_str()) {
                    let head = say!(
                        "following run {} ({} on {}), read-only; journal {}",
                        run.run_id,
                        run.playbook,
                        run.target_name,
                        run.path.display()
                    );
                    println!("{}", said(l, &head));
                    following = Some(run.run_id.clone());
                    shown = 0;
                }
                for r in records.iter().skip(shown) {
                    let what = r.describe();
                    println!("{}  {}", r.at().format("%H:%M:%S"), said(l, &what));
                }
                shown = records.len();
                if ended(&records) {
                    if let Some(card) = scorecard::saved_for_run(results, &run.run_id) {
                        print_said(
                            l,
                            &say!(
                                "drill {}: {}/100, {}",
                                card.scenario,
                                card.score,
                                card.outcome
                            ),
                        );
                    }
                    return Ok(0);
                }
            }
            None if following.is_none() && !said_waiting => {
                print_said(l, &say!("waiting for a run to start in {from}"));
                said_waiting = true;
            }
            None => {}
        }
        tokio::time::sleep(tail.every()).await;
    }
}
