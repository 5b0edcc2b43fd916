//! Performance report for DESIGN.md "Performance targets": `cargo bench --bench perf`.
//! It prints what it measured and never judges timings; it exits nonzero only when something
//! actually breaks (a draw fails, the binary does not start, a key is never answered).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../it/fixtures.rs"]
mod fixtures;
// The integration tests' emulators and proxy, shared: each is used here only in part.
#[allow(dead_code)]
#[path = "../it/emulator.rs"]
mod emulator;
#[allow(dead_code)]
#[path = "../it/fault_server.rs"]
mod fault_server;
mod refresh;

use anyhow::{Context, Result, ensure};
use chrono::Utc;
use dake::app::{App, Arming, Msg, update};
use dake::config::Config;
use dake::console::{MSG_CHANNEL_CAPACITY, drive, spawn_provider_poll};
use dake::i18n::Lang;
use dake::provider::Provider;
use dake::provider::sim::{SimFleet, SimProvider};
use dake::ui::view;
use fixtures::epoch;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Virtual second the in-process fleets are fed from: web-3 has been slow long enough to be
/// detected, so the banner, the table marks and the timeline all have something to draw.
const FEED_FROM_SECS: f64 = 100.0;
const DRAWS: usize = 200;
const WARMUP: usize = 20;

type Section = fn() -> Result<()>;

fn main() -> ExitCode {
    let sections: [(&str, Section); 5] = [
        ("1+2. Render and update() by fleet size", render_and_update),
        ("3. Key latency while the provider is busy", key_latency),
        ("4. Startup to first frame (release binary)", startup),
        ("5. Idle CPU and peak RSS (release binary)", idle),
        (
            "6. A 1,000-instance refresh over a slow link (emulators)",
            refresh::refresh,
        ),
    ];
    // `cargo bench --bench perf -- 3` runs only the sections whose title contains "3".
    let args = std::env::args().skip(1);
    let only: Vec<String> = args.filter(|a| !a.starts_with('-')).collect();
    println!("dake performance report (release build; wall-clock timings on this machine)");
    let mut broken = Vec::new();
    for (name, section) in sections {
        if !only.is_empty() && !only.iter().any(|o| name.contains(o.as_str())) {
            continue;
        }
        println!("\n== {name} ==");
        if let Err(e) = section() {
            println!("  BROKEN: {e:#}");
            broken.push(format!("{name}: {e:#}"));
        }
    }
    if broken.is_empty() {
        println!("\nall sections ran");
        return ExitCode::SUCCESS;
    }
    println!("\nsomething broke:\n  {}", broken.join("\n  "));
    ExitCode::FAILURE
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// Prints n, min, median, p99 (nearest rank) and max of the samples.
fn report(label: &str, mut v: Vec<Duration>) {
    v.sort();
    let Some(&max) = v.last() else {
        return println!("  {label:<28} no samples");
    };
    let at = |q: f64| ms(v[((q * v.len() as f64).ceil() as usize).max(1) - 1]);
    let (n, min, med, p99, max) = (v.len(), ms(v[0]), at(0.5), at(0.99), ms(max));
    println!(
        "  {label:<28} n={n:<4} min {min:>11}  median {med:>11}  p99 {p99:>11}  max {max:>11}"
    );
}

#[repr(C)]
struct Timespec {
    sec: std::ffi::c_long,
    nsec: std::ffi::c_long,
}

unsafe extern "C" {
    fn clock_gettime(clock: std::ffi::c_int, tp: *mut Timespec) -> std::ffi::c_int;
}

/// CPU time of this thread (Linux CLOCK_THREAD_CPUTIME_ID): unlike wall time it does not grow
/// while other builds on this small machine preempt the bench.
fn thread_cpu() -> Duration {
    let mut t = Timespec { sec: 0, nsec: 0 };
    // SAFETY: clock_gettime only writes one timespec through a valid, exclusive pointer.
    let rc = unsafe { clock_gettime(3, &mut t) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(t.sec as u64, t.nsec as u32)
}

/// The built-in config resized so web servers + 1 master + the replicas total `total`.
fn fleet_config(total: usize) -> Config {
    let mut c = Config::builtin();
    c.sim.web_servers = total.saturating_sub(1 + c.sim.replicas).max(2);
    c.sim.history = 120;
    c
}

fn key(c: char) -> Msg {
    Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

fn snapshot_msg(fleet: &SimFleet) -> Msg {
    let snapshot = Box::new(fleet.snapshot());
    let fetched_at = snapshot.taken_at;
    Msg::Snapshot {
        snapshot,
        fetched_at,
    }
}

fn render_and_update() -> Result<()> {
    println!("  draw: terminal.draw(|f| ui::view(&app, f)), TestBackend, j/k between (untimed)");
    println!("  update: update(&mut app, Msg::Snapshot): detect + rank_replicas + row sort");
    for (total, feeds, budget) in [(10, 20, 5), (1_000, 20, 20), (10_000, 6, 20)] {
        let config = fleet_config(total);
        let webs = config.sim.web_servers;
        let t = Instant::now();
        let mut fleet = SimFleet::new(&config, epoch());
        let build = ms(t.elapsed());
        fleet.advance_to(FEED_FROM_SECS);
        let mut app = App::new(config, "sim", Arming::Drill, epoch());
        let (mut updates, mut clones) = (Vec::new(), Vec::new());
        let started = Instant::now();
        for k in 1..=feeds {
            let t = Instant::now();
            let msg = snapshot_msg(&fleet);
            clones.push(t.elapsed());
            let t = Instant::now();
            update(&mut app, msg);
            updates.push(t.elapsed());
            fleet.advance_to(FEED_FROM_SECS + 5.0 * k as f64);
            if started.elapsed() > Duration::from_secs(budget) {
                break;
            }
        }
        let n = app.snapshot.as_ref().map_or(0, |s| s.instances.len());
        ensure!(n == total, "fleet of {total} came out as {n} instances");
        clones.sort();
        let clone = ms(clones[clones.len() / 2]);
        let incidents = app.incidents.len();
        println!("\n  fleet {total} instances ({webs} web), {incidents} incidents detected");
        println!(
            "  {:<28} {build}; snapshot() clone median {clone}",
            "SimFleet::new"
        );
        println!("  {:<28} {}", "update() first snapshot", ms(updates[0]));
        if updates.len() > 1 {
            report("update() later snapshots", updates[1..].to_vec());
        } else {
            println!(
                "  {:<28} skipped: the first overran {budget} s",
                "update() later"
            );
        }
        for (w, h) in [(160, 48), (80, 24)] {
            let (wall, cpu) = time_draws(&mut app, w, h)?;
            report(&format!("draw {w}x{h} wall"), wall);
            report(&format!("draw {w}x{h} thread CPU"), cpu);
        }
        // In Japanese what dake says is matched against the catalog where it is shown: the
        // first time a text is seen (cold), then from the texts already said (a frame).
        let shown: Vec<String> = app.timeline.iter().map(|e| e.text.clone()).collect();
        let cold: Vec<Duration> = shown
            .iter()
            .map(|text| {
                let t = Instant::now();
                let _ = dake::i18n::said(Lang::Ja, text);
                t.elapsed()
            })
            .collect();
        report(&format!("said, {} timeline texts, cold", cold.len()), cold);
        app.lang = Lang::Ja;
        let (wall, cpu) = time_draws(&mut app, 80, 24)?;
        report("draw 80x24 Japanese wall", wall);
        report("draw 80x24 Japanese CPU", cpu);
        app.lang = Lang::En;
    }
    println!("\n  target: draw < 2 ms at 10,000 instances");
    Ok(())
}

/// (wall times, thread CPU times) of the timed draws.
fn time_draws(app: &mut App, w: u16, h: u16) -> Result<(Vec<Duration>, Vec<Duration>)> {
    update(app, Msg::Resize(w, h));
    let mut term = Terminal::new(TestBackend::new(w, h))?;
    let (mut wall, mut cpu) = (Vec::with_capacity(DRAWS), Vec::with_capacity(DRAWS));
    for i in 0..WARMUP + DRAWS {
        update(app, key(if i % 2 == 0 { 'j' } else { 'k' }));
        let (t, c) = (Instant::now(), thread_cpu());
        term.draw(|f| view(app, f))?;
        if i >= WARMUP {
            cpu.push(thread_cpu().saturating_sub(c));
            wall.push(t.elapsed());
        }
    }
    let cells = term.backend().buffer().content();
    let text: String = cells.iter().map(|c| c.symbol()).collect();
    let total = app.snapshot.as_ref().map_or(0, |s| s.instances.len());
    let title = format!("{total}/{total}");
    ensure!(text.contains(&title), "{w}x{h}: no '{title}' fleet title");
    Ok((wall, cpu))
}

fn key_latency() -> Result<()> {
    // ~3 s of keys: one whole poll cycle (1 s refresh + 2 s provider delay), so the keys meet
    // both the call in flight and the snapshot it delivers being applied.
    const KEYS: usize = 600;
    const SPACING: Duration = Duration::from_millis(5);
    println!("  SimProvider with_delay(2 s) polled into the key channel; console::drive on 80x24");
    println!("  {KEYS} j/k keys {SPACING:?} apart once the first snapshot is on screen (~3 s,");
    println!("  a whole poll cycle); latency = key sent -> end of the next frame drawn");
    for total in [7, 1_000] {
        let (lat, snaps, unanswered) = latency_run(fleet_config(total), KEYS, SPACING)?;
        ensure!(unanswered == 0, "{unanswered} keys never got a frame");
        report(&format!("fleet {total}: key->frame"), lat);
        println!("  {:<28} snapshots applied meanwhile: {snaps}", "");
    }
    println!("  target: < 50 ms");
    Ok(())
}

/// (latencies, snapshots applied while keys were arriving, keys never answered)
type Latencies = (Vec<Duration>, usize, usize);

fn latency_run(config: Config, keys: usize, gap: Duration) -> Result<Latencies> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let sim = SimProvider::new(&config, epoch(), 0.0).with_delay(Duration::from_secs(2));
    let provider: Arc<dyn Provider> = Arc::new(sim);
    let mut app = App::new(config, "sim", Arming::Drill, Utc::now());
    let (sent, frames, snaps) = rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel(MSG_CHANNEL_CAPACITY);
        let mut term = Terminal::new(TestBackend::new(80, 24))?;
        let poll = spawn_provider_poll(provider, tx.clone());
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
        let sender = tokio::spawn(async move {
            let mut sent = Vec::with_capacity(keys);
            if ready_rx.await.is_err() {
                return sent;
            }
            let mut tick = tokio::time::interval(gap);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            for i in 0..keys {
                tick.tick().await;
                sent.push(Instant::now());
                let k = key(if i % 2 == 0 { 'j' } else { 'k' });
                if tx.send(k).await.is_err() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            let _ = tx.send(key('q')).await;
            sent
        });
        let mut ready = Some(ready_tx);
        let (mut frames, mut snaps, mut last_fetch) = (Vec::new(), Vec::new(), None);
        let run = drive(&mut term, &mut app, &mut rx, None, |app| {
            let now = Instant::now();
            frames.push(now);
            if app.fetched_at != last_fetch {
                last_fetch = app.fetched_at;
                snaps.push(now);
            }
            if app.snapshot.is_some()
                && let Some(r) = ready.take()
            {
                let _ = r.send(());
            }
            true
        });
        let done = tokio::time::timeout(Duration::from_secs(60), run).await;
        done.context("drive never returned after 'q'")??;
        poll.abort();
        let sent = sender.await?;
        anyhow::Ok((sent, frames, snaps))
    })?;
    ensure!(!sent.is_empty(), "no snapshot drawn, no keys sent");
    let (first, last) = (sent[0], sent[sent.len() - 1] + Duration::from_millis(200));
    let snaps = snaps.iter().filter(|&&s| s > first && s <= last).count();
    let mut lat = Vec::with_capacity(sent.len());
    for s in &sent {
        if let Some(f) = frames.get(frames.partition_point(|f| f < s)) {
            lat.push(*f - *s);
        }
    }
    let unanswered = sent.len() - lat.len();
    Ok((lat, snaps, unanswered))
}

fn tool(name: &str, version_arg: &str) -> bool {
    let out = Command::new(name).arg(version_arg).output();
    out.is_ok_and(|o| o.status.success())
}

/// The release `dake` cargo builds alongside this bench, built here if it is missing.
pub(crate) fn dake_binary() -> Result<PathBuf> {
    if let Some(p) = option_env!("CARGO_BIN_EXE_dake").map(PathBuf::from)
        && p.exists()
    {
        return Ok(p);
    }
    let exe = std::env::current_exe()?;
    let bin = exe
        .ancestors()
        .nth(2)
        .context("no target dir")?
        .join("dake");
    if !bin.exists() {
        let shown = bin.display();
        println!("  {shown} missing: running `cargo build --release --bin dake`");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "--release", "--bin", "dake"]);
        let ok = build.current_dir(env!("CARGO_MANIFEST_DIR")).status()?;
        ensure!(ok.success() && bin.exists(), "building dake failed");
    }
    Ok(bin)
}

fn quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// Run inside the pty by bash: sizes the pty (with no terminal on stdin `script` leaves it at
/// 0x0) and times the command from exec to exit with bash's own microsecond clock.
const PTY_TIMER: &str = r#"stty rows 48 cols 160
s=$EPOCHREALTIME; "$@"; e=$EPOCHREALTIME
printf '\nRAN_US=%s\n' $(( ${e/./} - ${s/./} ))
"#;

fn startup() -> Result<()> {
    for (tool_name, arg) in [("script", "--version"), ("bash", "--version")] {
        if !tool(tool_name, arg) {
            println!("  skipped: `{tool_name}` not found");
            return Ok(());
        }
    }
    let dake = dake_binary()?;
    let tmp = tempfile::tempdir()?;
    let timer = tmp.path().join("timer.sh");
    std::fs::write(&timer, PTY_TIMER)?;
    // (script wall time, command's own start-to-exit inside the pty, pty output)
    let pty = |cmd: &str| -> Result<(Duration, Duration, String)> {
        let line = format!("bash {} {cmd}", quote(&timer));
        let mut script = Command::new("script");
        script
            .args(["-qec", &line, "/dev/null"])
            .stdin(Stdio::null());
        for var in ["XDG_CONFIG_HOME", "XDG_STATE_HOME"] {
            script.env(var, tmp.path());
        }
        let t = Instant::now();
        let out = script.output()?;
        let took = t.elapsed();
        ensure!(out.status.success(), "`{cmd}` under script: {}", out.status);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let us = text
            .split("RAN_US=")
            .nth(1)
            .and_then(|r| r.split_whitespace().next());
        let us: u64 = us.context("no RAN_US from the pty timer")?.parse()?;
        Ok((took, Duration::from_micros(us), text))
    };
    let first = format!("{} --exit-after-first-frame", quote(&dake));
    let (.., screen) = pty(&first)?; // also warms the page cache
    ensure!(screen.contains("DRILL"), "no first frame on the pty");
    let (mut wall, mut inner, mut base) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..10 {
        let (w, i, _) = pty(&first)?;
        wall.push(w);
        inner.push(i);
        base.push(pty("true")?.0);
    }
    println!("  binary: {}", dake.display());
    report("script wall: dake", wall);
    report("script wall: true (baseline)", base);
    report("in pty: dake exec to exit", inner);
    println!("  script's wall time is dominated by its own pty setup/teardown (the baseline);");
    println!("  'exec to exit' (bash $EPOCHREALTIME around dake, teardown included) bounds dake's");
    println!("  own start to first frame. That first frame is the 'waiting for data' screen.");
    // In-process, default fleet: from loading the config to a frame that shows data.
    let t = Instant::now();
    let config = Config::builtin();
    let fleet = SimFleet::new(&config, epoch());
    let mut app = App::new(config, "sim", Arming::Drill, epoch());
    update(&mut app, snapshot_msg(&fleet));
    Terminal::new(TestBackend::new(160, 48))?.draw(|f| view(&app, f))?;
    let took = ms(t.elapsed());
    println!("  in-process, config to first frame with data (default fleet, 160x48): {took}");
    println!("  target: < 100 ms");
    Ok(())
}

fn clock_ticks() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().ok();
    out.and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime (fields 14 and 15 of /proc/<pid>/stat) of the whole process, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).context("dake exited")?;
    let rest = stat.rsplit_once(')').context("odd /proc stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Ok(f[11].parse::<u64>()? + f[12].parse::<u64>()?)
}

fn status_kb(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with(field));
    let kb = line.and_then(|l| l.split_whitespace().nth(1));
    Ok(kb.context("no such field in /proc status")?.parse()?)
}

fn idle() -> Result<()> {
    if !tool("tmux", "-V") {
        println!("  skipped: tmux not found");
        return Ok(());
    }
    let dake = dake_binary()?.canonicalize()?;
    let tmp = tempfile::tempdir()?;
    let hz = clock_ticks();
    println!("  dake in a private tmux server at 160x48; 3 s to settle, then 10 s of /proc stats");
    let configs = [
        ("defaults", "", 7),
        ("1,000 instances", "[sim]\nweb_servers = 997\n", 1_000),
    ];
    for (label, toml, total) in configs {
        let file = tmp.path().join(format!("c{total}.toml"));
        std::fs::write(&file, toml)?;
        let sock = tmp.path().join(format!("tmux{total}.sock"));
        let tmux = |args: &[&str]| {
            Command::new("tmux")
                .arg("-S")
                .arg(&sock)
                .args(args)
                .output()
        };
        let (bin, conf, xdg) = (quote(&dake), quote(&file), quote(tmp.path()));
        let cmd =
            format!("exec env XDG_CONFIG_HOME={xdg} XDG_STATE_HOME={xdg} {bin} --config {conf}");
        let out = tmux(&["new-session", "-d", "-x", "160", "-y", "48", &cmd])?;
        let err = String::from_utf8_lossy(&out.stderr);
        ensure!(out.status.success(), "tmux new-session: {err}");
        let measured = (|| -> Result<(f64, u64, String)> {
            std::thread::sleep(Duration::from_secs(3));
            let panes = String::from_utf8(tmux(&["list-panes", "-F", "#{pane_pid}"])?.stdout)?;
            let pane: u32 = panes.trim().parse().context("no pane: dake exited?")?;
            // The pane's command execs into dake, so the pane's process is dake itself.
            let exe = std::fs::read_link(format!("/proc/{pane}/exe"))?;
            ensure!(exe == dake, "the tmux pane is not running dake");
            let pid = pane;
            let (c0, t0) = (cpu_ticks(pid)?, Instant::now());
            std::thread::sleep(Duration::from_secs(10));
            let (c1, wall) = (cpu_ticks(pid)?, t0.elapsed());
            let cpu = (c1 - c0) as f64 / hz / wall.as_secs_f64() * 100.0;
            let screen = String::from_utf8(tmux(&["capture-pane", "-p"])?.stdout)?;
            let title = screen.lines().find(|l| l.contains(" Fleet ")).unwrap_or("");
            let title = title.trim().chars().take(30).collect();
            Ok((cpu, status_kb(pid, "VmHWM")?, title))
        })();
        let _ = tmux(&["kill-server"]);
        let (cpu, hwm, title) = measured?;
        let fleet = format!("{total}/{total}");
        ensure!(title.contains(&fleet), "{label}: no {fleet} on screen");
        let hwm = hwm as f64 / 1024.0;
        println!(
            "  {label:<16} CPU {cpu:>5.2}% of a core  peak RSS (VmHWM) {hwm:>5.1} MB  [{title}]"
        );
    }
    let tick = 100.0 / hz / 10.0;
    println!("  (CPU resolution: one clock tick in 10 s = {tick:.2}%)");
    println!("  targets: idle CPU < 0.5% of a core; peak RSS < 30 MB at 1,000 instances");
    Ok(())
}
