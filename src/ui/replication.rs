//! The replication panel: where the application's database endpoint points, the master's
//! heartbeat, and each replica's lag with its history and whether it could be promoted.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::sparkline::sparkline;
use super::theme::Theme;
use crate::app::App;
use crate::domain::{DbStatus, Instance, LagSource, ThreadState};
use crate::i18n::{Lang, said, tr, trf};
use crate::replicas::Candidate;
use crate::text::{fit, fit_name, secs};

/// Width of the lag column in its plain form: "lag " and a right-aligned duration.
fn plain_lag(l: Lang) -> usize {
    crate::text::width(&trf(l, "lag {lag}", &[("lag", &"      ")]))
}
/// Everything on a replica line but the lag column, the sparkline and the verdict (its
/// indent and name, the separators and thread marks, and two columns to spare).
const FIXED: usize = 4 + 14 + 1 + 16;
/// The narrowest sparkline kept when a verdict needs the room.
const MIN_SPARK: usize = 4;

pub fn render(app: &App, frame: &mut Frame, area: Rect, theme: &Theme) {
    let mut title = vec![Span::styled(
        format!(" {} ", crate::i18n::tr(app.lang, "Replication")),
        theme.title(),
    )];
    let Some(snap) = app.snapshot.as_ref() else {
        frame.render_widget(
            Block::new().borders(Borders::TOP).title(Line::from(title)),
            area,
        );
        return;
    };
    // Positions `update` found for this snapshot, so a frame does not scan the whole fleet by
    // id; a snapshot installed without `update` is looked up the slow way.
    let at = |pos: Option<usize>| pos.and_then(|p| snap.instances.get(p));
    let (master, target, instances): (_, _, Vec<Option<&Instance>>) = match app
        .db_index
        .as_ref()
        .filter(|ix| ix.fits(snap, &app.replicas))
    {
        Some(ix) => (
            at(ix.master),
            at(ix.endpoint),
            ix.replicas.iter().map(|&p| at(p)).collect(),
        ),
        None => (
            snap.master(),
            snap.db_endpoint
                .as_ref()
                .and_then(|ep| snap.find(&ep.target_id)),
            app.replicas
                .iter()
                .map(|c| snap.find(&c.instance_id))
                .collect(),
        ),
    };
    if let Some(ep) = &snap.db_endpoint {
        let target = target.map_or(ep.target_id.as_str(), |i| i.name.as_str());
        title.push(Span::styled(
            trf(
                app.lang,
                "endpoint {name} → {target} ",
                &[("name", &ep.name), ("target", &target)],
            ),
            theme.dim(),
        ));
    }
    let width = area.width as usize;
    let mut lines = vec![master_line(app, master, width, theme)];
    if app.replicas.is_empty() {
        lines.push(Line::styled(
            format!("  └ {}", tr(app.lang, "no replicas: nothing to promote")),
            theme.warn(),
        ));
    }
    let master_silent = master
        .and_then(|m| m.db.as_ref())
        .is_some_and(|d| d.heartbeat_age_secs > app.config.detect.master_heartbeat_secs);
    let (lags, spark_width) = lag_column(app.lang, &app.replicas, master_silent, width);
    let lag_width = lags
        .iter()
        .map(|s| crate::text::width(s))
        .fold(plain_lag(app.lang), usize::max);
    // One scale for every replica, so their lags compare at a glance (at least 1 s, so a
    // healthy sub-second lag draws low instead of filling the bar).
    let lag_scale = instances
        .iter()
        .filter_map(|&i| i?.db.as_ref()?.lag_history.max())
        .filter(|v| v.is_finite())
        .fold(1.0f32, f32::max);
    // The sparkline gives up columns (down to its minimum) before a verdict's reason is cut.
    let verdicts: Vec<(String, bool)> = app.replicas.iter().map(|c| verdict(app.lang, c)).collect();
    let longest_verdict = verdicts
        .iter()
        .map(|(v, _)| crate::text::width(v))
        .max()
        .unwrap_or(0);
    let spark_width = spark_width.min(
        width
            .saturating_sub(FIXED + lag_width + longest_verdict)
            .max(MIN_SPARK),
    );
    let verdict_width = width.saturating_sub(FIXED + lag_width + spark_width);
    for (((c, inst), lag), verdict) in app.replicas.iter().zip(&instances).zip(&lags).zip(verdicts)
    {
        let db = inst.and_then(|i| i.db.as_ref());
        let spark = db.map_or_else(String::new, |d| {
            sparkline(d.lag_history.iter(), spark_width, lag_scale)
        });
        let lag = format!("{} ", crate::text::pad(lag, lag_width));
        let verdict = (verdict, verdict_width);
        lines.push(replica_line(c, db, lag, spark, verdict, theme));
    }
    let block = Block::new().borders(Borders::TOP).title(Line::from(title));
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// The master's name and heartbeat, and whether it is down, up, or cannot be told.
fn master_line<'a>(app: &App, master: Option<&Instance>, width: usize, theme: &Theme) -> Line<'a> {
    let Some(m) = master else {
        return Line::styled(
            format!("  {}", tr(app.lang, "no master in this fleet")),
            theme.warn(),
        );
    };
    let hb = m.db.as_ref().map(|d| d.heartbeat_age_secs);
    let down = app.incidents.iter().any(|i| i.instance_id == m.id);
    let l = app.lang;
    let (word, style) = if down {
        (tr(l, "✖ DOWN"), theme.bad())
    } else if hb.is_none() {
        // No heartbeat reported: dake cannot say the master is up.
        (tr(l, "? no replication data"), theme.warn())
    } else {
        (tr(l, "✓ up"), theme.ok())
    };
    let heartbeat = format!("{:>6}", hb.map_or("—".into(), secs));
    let heartbeat = trf(l, "heartbeat {age}", &[("age", &heartbeat)]) + "  ";
    let room = width
        .saturating_sub(2 + 16 + 12 + crate::text::width(&heartbeat) + crate::text::width(word));
    let mut spans = vec![
        Span::raw(format!("  {:<16}", fit_name(&m.name, 15))),
        Span::raw(crate::text::pad(tr(l, "master"), 12)),
        Span::raw(heartbeat),
        Span::styled(word, style),
    ];
    // Read over MySQL: the server's own word, or why it did not give one.
    if let Some(f) = m.db.as_ref().and_then(|d| d.server.as_ref()) {
        let said = match (f.unreadable(), f.flavour) {
            (Some(why), _) => format!("  {}", said(l, &why)),
            (None, Some(flavour)) => format!(
                "  {} {}{}",
                flavour.as_str(),
                f.version.split('-').next().unwrap_or(""),
                if f.read_only {
                    tr(l, ", read-only")
                } else {
                    ""
                }
            ),
            (None, None) => String::new(),
        };
        spans.push(Span::styled(fit(&said, room), theme.dim()));
    }
    Line::from(spans)
}

/// A replication thread's mark: running, reconnecting (its source is gone), or stopped.
fn thread_mark(state: Option<ThreadState>, theme: &Theme) -> (&'static str, ratatui::style::Style) {
    match state {
        Some(ThreadState::Running) => ("✓", theme.ok()),
        Some(ThreadState::Connecting) => ("…", theme.warn()),
        _ => ("✗", theme.bad()),
    }
}

/// One replica: its lag (already laid out) and history, its threads, and whether it could be
/// promoted ([`verdict`], cut to its width), with the reason when not.
fn replica_line<'a>(
    c: &Candidate,
    db: Option<&DbStatus>,
    lag: String,
    spark: String,
    ((verdict, promotable), verdict_width): ((String, bool), usize),
    theme: &Theme,
) -> Line<'a> {
    // The server's own thread states when it was read; else what the provider inferred.
    let side = db
        .and_then(|d| d.server.as_ref())
        .and_then(|f| f.replica.as_ref());
    let inferred = |on: bool| {
        Some(if on {
            ThreadState::Running
        } else {
            ThreadState::Stopped
        })
    };
    let (io, io_style) = thread_mark(
        side.map(|r| r.io)
            .or_else(|| inferred(db.is_some_and(|d| d.io_thread_running))),
        theme,
    );
    let (sql, sql_style) = thread_mark(
        side.map(|r| r.sql)
            .or_else(|| inferred(db.is_some_and(|d| d.sql_thread_running))),
        theme,
    );
    let verdict_style = if promotable { theme.ok() } else { theme.warn() };
    Line::from(vec![
        Span::raw(format!("  └ {:<14}", fit_name(&c.name, 13))),
        Span::raw(lag),
        Span::styled(spark, theme.dim()),
        Span::raw("  io "),
        Span::styled(io, io_style),
        Span::raw(" sql "),
        Span::styled(sql, sql_style),
        Span::raw("  "),
        Span::styled(fit(&verdict, verdict_width), verdict_style),
    ])
}

/// Whether the replica could be promoted, with the reason when not.
fn verdict(l: Lang, c: &Candidate) -> (String, bool) {
    match &c.rejection {
        None if c.best => (tr(l, "promote: yes, best").to_string(), true),
        None => (tr(l, "promote: yes").to_string(), true),
        Some(reason) => (
            trf(l, "promote: no, {reason}", &[("reason", &said(l, reason))]),
            false,
        ),
    }
}

/// Each replica's lag text and the sparkline width that leaves room for the verdict.
///
/// While the master is silent, every replica's heartbeat lag grows with that silence, so a
/// raw "lag 125s" beside "promote: yes" (limit 10 s) reads as a contradiction. Ranking and the
/// limit use how far behind the master's last write a replica is; the line then says both, in
/// full when the terminal is wide enough and in short (with a narrower sparkline) when not.
fn lag_column(
    l: Lang,
    replicas: &[Candidate],
    master_silent: bool,
    width: usize,
) -> (Vec<String>, usize) {
    let texts = |long: bool| -> Vec<String> {
        replicas
            .iter()
            .map(|c| {
                let lag = secs(c.heartbeat_lag_secs);
                let behind = secs(c.behind_master_secs);
                // Where the number came from, unless it is the simulator's own.
                let from = match c.lag_source {
                    LagSource::Simulated => String::new(),
                    source => format!(" {}", source.short()),
                };
                let lag_text =
                    |text: String| trf(l, "lag {lag}", &[("lag", &format!("{text}{from}"))]);
                let behind = [("behind", &behind as &dyn std::fmt::Display)];
                if !master_silent || !c.behind_master_secs.is_finite() {
                    lag_text(format!("{lag:>6}"))
                } else if long {
                    let why = trf(l, " ({behind} behind master's last write)", &behind);
                    lag_text(format!("{lag:>6}")) + &why
                } else {
                    lag_text(lag) + &trf(l, " ({behind} behind)", &behind)
                }
            })
            .collect()
    };
    // Columns the lag text takes beyond its plain form: the sparkline gives them up.
    let extra = |t: &[String]| {
        let widest = t.iter().map(|s| crate::text::width(s)).max().unwrap_or(0);
        widest.saturating_sub(plain_lag(l))
    };
    // The plain layout: 72 columns for everything but the sparkline, which gets 8 to 40.
    let spark = |extra: usize, min: usize| width.saturating_sub(72 + extra).clamp(min, 40);
    let long = texts(true);
    let long_extra = extra(&long);
    if !master_silent || width >= 72 + long_extra + 8 {
        return (long, spark(long_extra, 8));
    }
    let short = texts(false);
    let short_extra = extra(&short);
    (short, spark(short_extra, 4))
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use crate::app::{App, Arming, Msg, update};
    use crate::config::Config;
    use crate::provider::sim::SimFleet;
    use crate::test_support::epoch;

    /// The built-in fleet at virtual `t`.
    fn fleet_at(t: f64) -> crate::domain::FleetSnapshot {
        let mut fleet = SimFleet::new(&Config::builtin(), epoch());
        fleet.advance_to(t);
        fleet.snapshot()
    }

    /// The whole screen at `size` after one snapshot of the built-in fleet at virtual `t`.
    fn screen(t: f64, size: (u16, u16)) -> Vec<String> {
        screen_of(fleet_at(t), size)
    }

    fn screen_of(snapshot: crate::domain::FleetSnapshot, size: (u16, u16)) -> Vec<String> {
        let epoch = epoch();
        let mut app = App::new(Config::builtin(), "aws", Arming::ReadOnly, epoch);
        update(&mut app, Msg::Resize(size.0, size.1));
        let snapshot = Box::new(snapshot);
        let fetched_at = snapshot.taken_at;
        update(
            &mut app,
            Msg::Snapshot {
                snapshot,
                fetched_at,
            },
        );
        let mut term = Terminal::new(TestBackend::new(size.0, size.1)).unwrap();
        term.draw(|f| crate::ui::view(&app, f)).unwrap();
        let buf = term.backend().buffer();
        (0..size.1)
            .map(|y| (0..size.0).map(|x| buf[(x, y)].symbol()).collect())
            .collect()
    }

    fn replica_lines(screen: &[String]) -> Vec<&str> {
        let lines = screen.iter().filter(|l| l.contains("└ db-replica"));
        lines.map(|l| l.trim_end()).collect()
    }

    #[test]
    fn silent_master_shows_lag_and_how_far_behind_its_last_write() {
        let narrow = screen(300.0, (80, 24));
        let lines = replica_lines(&narrow);
        assert_eq!(lines.len(), 2, "{narrow:#?}");
        for line in &lines {
            assert!(line.contains(" behind) "), "{line}");
            // `…` also marks an IO thread reconnecting; only a cut verdict ends with one, and
            // only once the sparkline has given up all it can.
            let spark = line.chars().filter(|c| ('▁'..='█').contains(c)).count();
            assert!(
                !line.ends_with('…') || spark == super::MIN_SPARK,
                "verdict cut before the sparkline yielded: {line}"
            );
        }
        assert!(lines[0].ends_with("promote: yes, best"), "{}", lines[0]);
        assert!(lines[1].contains("promote: no, lacks"), "{}", lines[1]);

        let wide = screen(300.0, (160, 48));
        for line in replica_lines(&wide) {
            assert!(line.contains(" behind master's last write) "), "{line}");
        }
    }

    #[test]
    fn live_master_shows_plain_lag() {
        let lines = screen(20.0, (80, 24));
        let lines = replica_lines(&lines);
        assert_eq!(lines.len(), 2);
        for line in lines {
            assert!(line.contains("lag ") && !line.contains("behind"), "{line}");
        }
    }

    /// What dake read from each server: the master unreachable, one replica reconnecting to
    /// it, the other carrying an errant transaction.
    fn read_over_mysql(t: f64) -> crate::domain::FleetSnapshot {
        use crate::domain::{Flavour, LagSource, ReplicaSide, ServerFacts, ThreadState};
        let mut snap = fleet_at(t);
        for inst in &mut snap.instances {
            let Some(db) = inst.db.as_mut() else { continue };
            db.lag_source = LagSource::Heartbeat;
            let mut f =
                ServerFacts::unreachable(format!("{}:3306", inst.private_ip), String::new());
            if inst.name == "db-master" {
                f.unreachable = Some("Connection refused (os error 111)".into());
                db.server = Some(f);
                continue;
            }
            f.unreachable = None;
            f.flavour = Some(Flavour::MariaDb);
            f.version = "10.11.14-MariaDB-0+deb12u2".into();
            f.log_bin = true;
            f.log_replica_updates = true;
            f.read_only = true;
            f.gtid_executed = "0-1-40".into();
            f.replica = Some(ReplicaSide {
                source: "10.0.0.1:3306".into(),
                io: ThreadState::Connecting,
                sql: ThreadState::Running,
                last_io_error: "error reconnecting to master".into(),
                last_sql_error: String::new(),
                seconds_behind: None,
                sql_delay_secs: 0,
                relay_log_applied: true,
                gtid_received: "0-1-40".into(),
            });
            if inst.name == "db-replica-2" {
                f.errant = "0-3-41".into();
            }
            db.server = Some(f);
        }
        snap
    }

    #[test]
    fn servers_read_over_mysql_say_what_they_said() {
        for size in [(80, 24), (160, 48)] {
            let screen = screen_of(read_over_mysql(300.0), size);
            let master = screen
                .iter()
                .find(|l| l.starts_with("  db-master") && l.contains("heartbeat"))
                .unwrap();
            assert!(master.contains("MySQL does not answer"), "{master}");
            let lines = replica_lines(&screen);
            assert_eq!(lines.len(), 2, "{screen:#?}");
            for line in &lines {
                assert!(
                    line.contains("s hb (") && line.contains("io … sql ✓"),
                    "{line}"
                );
            }
            let errant = lines.iter().find(|l| l.contains("db-replica-2")).unwrap();
            // The reason in full where there is room; at 80 columns the verdict at least.
            let said = if size.0 > 80 {
                "promote: no, errant transactions 0-3-41"
            } else {
                "promote: no"
            };
            assert!(errant.contains(said), "{errant}");
        }
    }
}
