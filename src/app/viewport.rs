//! Where each pane goes, in terminal cells: `view` draws into these areas, and `update` pages
//! and scrolls the fleet table by the same arithmetic.

use ratatui::layout::Rect;

use super::App;

pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;
/// Width from which the table grows a latency sparkline and full zone names.
pub const WIDE: u16 = 110;
/// The most lines the `D` line of API calls wraps over.
pub const API_CALL_LINES: u16 = 3;
/// Lines the run panel needs below its step list, at most.
pub const RUN_DETAIL_LINES: u16 = 7;
/// The banner of `--present`: the incident, the run's step, the clock and the key pressed.
pub const PRESENT_BANNER_LINES: u16 = 3;
/// The timeline keeps at least its title and this many entries.
const TIMELINE_MIN_ENTRIES: u16 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub header: Rect,
    pub banner: Rect,
    pub table: Rect,
    pub replicas: Rect,
    pub timeline: Rect,
    /// The run panel; zero height when no run is on screen.
    pub run: Rect,
    /// The API calls of the last refresh (`D`); zero height when hidden.
    pub debug: Rect,
    pub footer: Rect,
}

pub fn too_small(area: Rect) -> bool {
    area.width < MIN_WIDTH || area.height < MIN_HEIGHT
}

fn banner_lines(app: &App, height: u16) -> u16 {
    if app.present {
        return PRESENT_BANNER_LINES;
    }
    let max = if height < 32 { 2 } else { 4 };
    (app.incidents.len() as u16).clamp(1, max)
}

fn replica_lines(app: &App) -> u16 {
    // Title, the master, then one line per replica (at least one, to say there are none).
    2 + (app.replicas.len() as u16).clamp(1, 6)
}

/// The fleet table keeps its title, header and this many rows while a run is on screen.
const TABLE_ROWS_DURING_RUN: u16 = 3;

pub fn areas(app: &App, area: Rect) -> Areas {
    let h = area.height;
    let banner = banner_lines(app, h);
    let debug = if app.show_api_calls {
        let lines = app.api_call_lines(area.width as usize).len();
        (lines as u16).clamp(1, API_CALL_LINES)
    } else {
        0
    };
    let avail = h.saturating_sub(1 + banner + 1 + debug);
    let wanted_table = 2 + app.rows.len().max(1) as u16;
    let (table, replicas, run, timeline) = match &app.run {
        None => {
            let replicas = replica_lines(app);
            let rest = avail.saturating_sub(replicas);
            let table = wanted_table
                .min(rest.saturating_sub(1 + TIMELINE_MIN_ENTRIES))
                .max(3);
            (table, replicas, 0, rest.saturating_sub(table))
        }
        Some(run) => {
            // The run comes first: every step, its detail and a gauge, then what room is left
            // goes to the fleet, the replicas and the timeline, in that order.
            let wanted_run = 1 + run.steps.len() as u16 + RUN_DETAIL_LINES + 1;
            let min_table = 2 + TABLE_ROWS_DURING_RUN;
            let run_h = wanted_run.min(avail.saturating_sub(min_table));
            let rest = avail.saturating_sub(run_h);
            let table = wanted_table.min(rest).max(min_table.min(rest));
            let rest = rest.saturating_sub(table);
            let replicas = if rest >= replica_lines(app) + 3 {
                replica_lines(app)
            } else {
                0
            };
            (table, replicas, run_h, rest.saturating_sub(replicas))
        }
    };
    let mut y = area.y;
    let mut take = |rows: u16| {
        let r = Rect {
            x: area.x,
            y,
            width: area.width,
            height: rows,
        };
        y += rows;
        r
    };
    Areas {
        header: take(1),
        banner: take(banner),
        table: take(table),
        run: take(run),
        replicas: take(replicas),
        timeline: take(timeline),
        debug: take(debug),
        footer: take(1),
    }
}

/// Data rows the fleet table can show at the current terminal size.
pub fn fleet_table_rows(app: &App) -> usize {
    let (w, h) = app.size;
    let a = areas(app, Rect::new(0, 0, w, h));
    a.table.height.saturating_sub(2) as usize
}
