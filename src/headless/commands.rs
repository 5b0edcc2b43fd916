//! The `run`, `resume`, `preflight` and `report` commands: argument checks, journal lookup, output.

use crate::mirror;
use crate::provider::aws::logs::LogsMirror;
use crate::runbook::overrides::Override;
use std::path::Path;
use std::sync::Arc;

use chrono::Duration;

use super::print_said;
use super::report::postmortem;
use super::run::{Headless, RunReport, dry_run_lines, report_of, select};
use crate::config::Config;
use crate::i18n::{Lang, asset, said};
use crate::provider::Provider;
use crate::runbook::engine::{Phase, Run};
use crate::runbook::event::Event;
use crate::runbook::journal::{self, Journal};
use crate::runbook::model::Playbook;
use crate::runbook::setup::{
    RunIds, context, incident_event_on, operator, playbook_of, resume_context,
};

/// Exit codes: 0 the run finished; 1 it stopped (failed, refused, aborted); 2 bad input.
pub const EXIT_STOPPED: u8 = 1;

pub struct RunArgs<'a> {
    pub playbook: &'a str,
    pub target: &'a str,
    pub dry_run: bool,
    pub yes: bool,
    /// Refusals lifted from the start, each on the operator's name.
    pub overrides: &'a [Override],
    /// The run whose stale lease of the tier this one may take over.
    pub take_over_lease: Option<&'a str>,
    pub quarantine: bool,
    pub json: bool,
    /// Where the journal is mirrored (`[journal] mirror`), connected.
    pub mirror: Option<Arc<LogsMirror>>,
    /// The language of the lines printed for people.
    pub lang: Lang,
}

fn finish(report: RunReport, json: bool, l: Lang) -> anyhow::Result<u8> {
    let code = if report.outcome == "finished" {
        0
    } else {
        EXIT_STOPPED
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if code == 0 {
        print_said(
            l,
            &say!("run {} finished: {}", report.run_id, report.message),
        );
    } else {
        let line = say!(
            "run {} {}: {}",
            report.run_id,
            report.outcome,
            report.message
        );
        eprintln!("dake: {}", said(l, &line));
    }
    Ok(code)
}

async fn snapshot(provider: &dyn Provider) -> anyhow::Result<crate::domain::FleetSnapshot> {
    provider
        .snapshot()
        .await
        .map_err(|e| anyhow::anyhow!(say!("provider {}: {e}", provider.name())))
}

pub async fn run(
    provider: Arc<dyn Provider>,
    config: &Config,
    playbooks: &[Playbook],
    dir: &Path,
    args: RunArgs<'_>,
) -> anyhow::Result<u8> {
    let snap = snapshot(provider.as_ref()).await?;
    let (playbook, target) =
        select(playbooks, &snap, args.playbook, args.target).map_err(anyhow::Error::msg)?;
    let now = provider.now();
    let window = Duration::seconds(config.runbook.anti_flap_secs as i64);
    let runs = journal::list(dir);
    let flapping = journal::recent_failover(&runs, playbooks, playbook, now, window).map(|prev| {
        say!(
            "{}, within the anti-flapping window of {} s; a second failover this soon is more likely flapping than a new fault",
            prev.started_ago(now),
            config.runbook.anti_flap_secs
        )
    });
    let flapping_allowed = args.overrides.contains(&Override::AntiFlapping);
    if let Some(why) = &flapping
        && !flapping_allowed
        && !args.dry_run
    {
        anyhow::bail!(say!("refused: {}", Override::AntiFlapping.refusal(why)));
    }
    let run_id = RunIds::from_clock().next(&playbook.id, now);
    let ctx = context(
        config,
        &run_id,
        (&target.id, &target.name),
        args.quarantine,
        args.overrides,
    );
    let (mut run, start_fx) = Run::start(ctx, playbook.clone(), operator(), now);
    let l = args.lang;
    if args.dry_run {
        print_said(
            l,
            &say!(
                "dry run of {} on {} ({}): nothing will be changed",
                playbook.id,
                target.name,
                target.id
            ),
        );
        if let (Some(why), false) = (&flapping, flapping_allowed) {
            print_said(
                l,
                &say!(
                    "note: a real run would be refused without --override {}: {why}",
                    Override::AntiFlapping.name()
                ),
            );
        }
        for line in dry_run_lines(&run, &snap, l) {
            println!("{line}");
        }
        return Ok(0);
    }
    let journal = Journal::create(dir, &run_id)?;
    let journal_path = journal.path().to_path_buf();
    let mirrored = args
        .mirror
        .clone()
        .map(|m| mirror::spawn(m, journal_path.clone(), run_id.clone()));
    let progress = (!args.json).then_some(l);
    if !args.json {
        let title = asset(l, &["playbook", &playbook.id, "title"], &playbook.title);
        print_said(
            l,
            &say!("run {run_id}: {title} on {} ({})", target.name, target.id),
        );
    }
    let mut h = Headless::new(provider.clone(), journal, &run_id, args.yes, progress);
    let mut fx = start_fx;
    if let Some(ev) = incident_event_on(&snap, &config.detect, &target.id) {
        fx.extend(run.advance(ev, now));
    }
    fx.extend(run.advance(
        Event::Note(say!("started headless by {}", run.operator)),
        now,
    ));
    if let Some(holder) = args.take_over_lease {
        fx.extend(run.advance(Event::TakeOverLease(holder.to_string()), now));
    }
    h.carry(&mut run, fx).await.map_err(anyhow::Error::msg)?;
    let (outcome, message) = h.drive(&mut run).await.map_err(anyhow::Error::msg)?;
    flush_mirror(mirrored, l).await;
    finish(
        report_of(&run, outcome, message, &journal_path),
        args.json,
        l,
    )
}

/// How `dake resume` goes on.
#[derive(Clone, Default)]
pub struct ResumeArgs {
    pub yes: bool,
    /// The operator's word that the old master is fenced by other means.
    pub fenced_by_other_means: bool,
    /// Refusals lifted from here on, each on the operator's name.
    pub overrides: Vec<Override>,
    /// The run whose stale lease of the tier the operator takes over.
    pub take_over_lease: Option<String>,
    pub json: bool,
    pub mirror: Option<Arc<LogsMirror>>,
    pub lang: Lang,
}

/// The run is over here: its last records go to the mirror, or what is left is said.
async fn flush_mirror(mirrored: Option<mirror::MirrorHandle>, l: Lang) {
    if let Some(h) = mirrored
        && let Err(e) = h.flush(mirror::MIRROR_FLUSH).await
    {
        eprintln!("dake: {}", said(l, &say!("journal mirror: {e}")));
    }
}

pub async fn resume(
    provider: Arc<dyn Provider>,
    config: &Config,
    playbooks: &[Playbook],
    dir: &Path,
    run_id: Option<&str>,
    args: ResumeArgs,
) -> anyhow::Result<u8> {
    let (yes, json) = (args.yes, args.json);
    let summary = match run_id {
        Some(id) => journal::find(dir, id)?,
        None => {
            let mut open = journal::unfinished(dir);
            match open.len() {
                0 => anyhow::bail!(say!("no unfinished run in {}", dir.display())),
                1 => open.remove(0),
                _ => {
                    let ids: Vec<String> = open
                        .iter()
                        .map(|r| say!("{} ({} on {})", r.run_id, r.playbook, r.target_name))
                        .collect();
                    anyhow::bail!(say!(
                        "several unfinished runs; name one: {}",
                        ids.join(", ")
                    ));
                }
            }
        }
    };
    if let Some(ended) = &summary.ended {
        anyhow::bail!(say!(
            "run {} is over ({ended}); nothing to resume",
            summary.run_id
        ));
    }
    let records = journal::read(&summary.path)?;
    let playbook = playbook_of(playbooks, &summary)
        .map_err(|e| anyhow::anyhow!(say!("run {}: {e}", summary.run_id)))?;
    let ctx = resume_context(config, &summary.run_id);
    let mut run = Run::replay(&records, playbook.clone(), ctx)
        .map_err(|e| anyhow::anyhow!("{}: {e}", summary.path.display()))?;
    let journal = Journal::open(dir, &summary.run_id)?;
    let mirrored = args
        .mirror
        .clone()
        .map(|m| mirror::spawn(m, summary.path.clone(), summary.run_id.clone()));
    let l = args.lang;
    let progress = (!json).then_some(l);
    if !json {
        print_said(
            l,
            &say!(
                "resuming run {} ({} on {}) at step {}",
                summary.run_id,
                summary.playbook,
                summary.target_name,
                run.cursor + 1
            ),
        );
    }
    let mut h = Headless::new(provider.clone(), journal, &summary.run_id, yes, progress);
    let now = provider.now();
    let mut fx = run.advance(Event::Note(say!("resumed headless by {}", operator())), now);
    fx.extend(run.resume(now));
    if args.fenced_by_other_means {
        if !run.may_declare_fenced() {
            anyhow::bail!(say!(
                "run {} did not stop at a failed fence step (it is at step {}); nothing declared",
                summary.run_id,
                run.cursor + 1
            ));
        }
        fx.extend(run.advance(Event::DeclareFenced, now));
    }
    for o in &args.overrides {
        fx.extend(run.advance(Event::Override(*o), now));
    }
    if let Some(holder) = args.take_over_lease {
        fx.extend(run.advance(Event::TakeOverLease(holder), now));
    }
    // Resuming a run that stopped on a failed step is retrying it: planned again against the
    // fleet as it is, its guards checked again, refused without --yes when destructive.
    if matches!(run.phase, Phase::Failed { .. }) {
        fx.extend(run.advance(Event::Retry, now));
    }
    h.carry(&mut run, fx).await.map_err(anyhow::Error::msg)?;
    let (outcome, message) = h.drive(&mut run).await.map_err(anyhow::Error::msg)?;
    flush_mirror(mirrored, l).await;
    finish(report_of(&run, outcome, message, &summary.path), json, l)
}

/// `dake preflight`: exit 0 when nothing the playbook would do is refused, 1 otherwise.
pub async fn preflight(
    provider: Arc<dyn Provider>,
    config: &Config,
    playbooks: &[Playbook],
    playbook: &str,
    target: &str,
    json: bool,
    l: Lang,
) -> anyhow::Result<u8> {
    let snap = snapshot(provider.as_ref()).await?;
    let (playbook, target) =
        select(playbooks, &snap, playbook, target).map_err(anyhow::Error::msg)?;
    let run_id = RunIds::from_clock().next(&playbook.id, provider.now());
    let ctx = context(config, &run_id, (&target.id, &target.name), false, &[]);
    let report = super::preflight::check(provider.as_ref(), playbook, &ctx, &snap).await;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", super::preflight::text(&report, l));
    }
    Ok(report.exit_code())
}

pub fn report(playbooks: &[Playbook], dir: &Path, run_id: &str, l: Lang) -> anyhow::Result<String> {
    let summary = journal::find(dir, run_id)?;
    let records = journal::read(&summary.path)?;
    let playbook = playbook_of(playbooks, &summary)
        .map_err(|e| anyhow::anyhow!(say!("run {}: {e}", summary.run_id)))?;
    Ok(postmortem(&records, playbook, l))
}

/// `dake heartbeat`: one beat (exit 0, or 1 when it could not be written), or one every
/// `every` until interrupted, each failure said and the next beat tried.
pub async fn heartbeat(
    cfg: &crate::config::DatabaseConfig,
    host: &str,
    every: Option<std::time::Duration>,
    create_table: bool,
) -> anyhow::Result<u8> {
    use crate::provider::mysql::{DbReader, write};
    let (host, port) = crate::config::host_port(host, cfg.port).map_err(anyhow::Error::msg)?;
    let reader = DbReader::new(cfg)?;
    let mut create = create_table;
    let mut ticks = every.map(tokio::time::interval);
    // Kept writing, a server that stays read-only (a replica) or away is said once, and again
    // when that changes: the service can run on every database host and write only on the
    // master, wherever the master is.
    let mut said: Option<String> = None;
    loop {
        if let Some(t) = ticks.as_mut() {
            t.tick().await;
        }
        let written = write::heartbeat(reader.access(), &host, port, create).await;
        match &written {
            Ok(beat) => {
                create = false;
                if every.is_none() || said.is_some() {
                    println!(
                        "heartbeat {} written on {} (server_id {})",
                        beat.ts, beat.address, beat.server_id
                    );
                }
                said = None;
            }
            Err(e) => {
                let text = e.to_string();
                if said.as_ref() != Some(&text) {
                    eprintln!("dake: heartbeat: {text}");
                    said = Some(text);
                }
            }
        }
        if every.is_none() {
            return Ok(if written.is_ok() { 0 } else { 1 });
        }
    }
}
