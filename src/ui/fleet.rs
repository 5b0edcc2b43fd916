//! The fleet table. Only the rows on screen are built, so a 10,000-instance fleet draws as
//! fast as a ten-instance one.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Row, Table};

use super::sparkline::sparkline;
use super::theme::Theme;
use crate::app::viewport::WIDE;
use crate::app::{App, SortColumn};
use crate::detect::Severity;
use crate::domain::call::TAG_QUARANTINE;
use crate::domain::{CheckStatus, Instance, InstanceState, Role};
use crate::i18n::{Lang, said, tr};
use crate::text::{fit, fit_name, ms, pct, tail};

pub fn render(app: &App, frame: &mut Frame, area: Rect, theme: &Theme) {
    let total = app.snapshot.as_ref().map_or(0, |s| s.instances.len());
    // Not "▲"/"▼": "▲" is the warning mark in the same table.
    let arrow = if app.reverse { "↓" } else { "↑" };
    let l = app.lang;
    let mut title = vec![
        Span::styled(format!(" {} ", tr(l, "Fleet")), theme.title()),
        Span::raw(format!("{}/{} ", app.rows.len(), total)),
        Span::styled(
            format!("{} {} {arrow} ", tr(l, "sort"), tr(l, app.sort.label())),
            theme.dim(),
        ),
    ];
    if !app.filter.is_empty() {
        title.push(Span::styled(
            format!("{} \"{}\" ", tr(l, "filter"), app.filter),
            theme.warn(),
        ));
    }
    let block = Block::new().borders(Borders::TOP).title(Line::from(title));
    let Some(snap) = app.snapshot.as_ref() else {
        frame.render_widget(block, area);
        return;
    };
    let wide = area.width >= WIDE;
    let body_rows = area.height.saturating_sub(2) as usize;
    let start = app.offset.min(app.rows.len());
    let end = start.saturating_add(body_rows).min(app.rows.len());
    // Only the rows on screen: per-frame work must not grow with the fleet.
    let shown = &app.rows[start..end];
    let spark_width = if wide {
        (area.width as usize).saturating_sub(100).clamp(8, 60)
    } else {
        0
    };
    let scales = if wide {
        spark_scales(shown.iter().map(|&i| &snap.instances[i]), spark_width)
    } else {
        [0.0; Role::ALL.len()]
    };
    let rows: Vec<Row> = shown
        .iter()
        .enumerate()
        .map(|(n, &idx)| {
            let pos = start + n;
            let inst = &snap.instances[idx];
            let max = scales[inst.role.index()];
            let row = build_row(app, inst, wide, spark_width, max, theme);
            if pos == app.selected {
                row.style(theme.selected())
            } else {
                row
            }
        })
        .collect();
    // The mark column, then one column per sort column, in their order.
    let mut widths: Vec<Constraint> = [1]
        .into_iter()
        .chain(SortColumn::ALL.map(|c| width(c, wide, l)))
        .map(Constraint::Length)
        .collect();
    let mut header: Vec<&str> = [""]
        .into_iter()
        .chain(SortColumn::ALL.map(SortColumn::heading))
        .collect();
    if wide {
        widths.push(Constraint::Length(spark_width as u16));
        header.push("P99 HISTORY");
    }
    widths.push(Constraint::Length(4));
    header.push("DISP");
    let sorted = app.sort.heading();
    let header = Row::new(header.into_iter().map(|h| {
        let style = if !h.is_empty() && h == sorted {
            theme.title()
        } else {
            theme.dim()
        };
        Cell::from(tr(app.lang, h)).style(style)
    }));
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .block(block);
    frame.render_widget(table, area);
}

/// Highest drawn samples of one row that may be noise without setting its role's scale.
const SPIKE_SAMPLES: usize = 2;

/// The p99 sparkline scale per role (indexed by `Role::index`) for the rows on screen.
///
/// Rows of a role share a scale so a slow server stands out against its peers. Each row
/// contributes its third-highest drawn sample (its 97th percentile at the full 60 columns),
/// not its maximum: a spike of one or two samples then no longer flattens everyone else, while a
/// sustained slow server, which has many high samples, still sets the scale. Samples above the
/// scale draw as the top bar. A pooled percentile over all rows would not do: with one slow
/// server among twenty or more rows its samples are under 5% of the pool and the scale would
/// settle on the healthy servers, drawing them as high as the slow one.
fn spark_scales<'a>(
    rows: impl Iterator<Item = &'a Instance>,
    width: usize,
) -> [f32; Role::ALL.len()] {
    let (mut robust, mut max) = ([0.0f32; Role::ALL.len()], [0.0f32; Role::ALL.len()]);
    let mut samples = Vec::with_capacity(width);
    for inst in rows {
        samples.clear();
        samples.extend(inst.health.p99_ms.last_n(width).filter(|v| v.is_finite()));
        let Some(top) = samples.iter().copied().reduce(f32::max) else {
            continue;
        };
        let slot = inst.role.index();
        // Index of the (SPIKE_SAMPLES + 1)-th highest, or the lowest of a short series.
        let nth = samples.len().saturating_sub(SPIKE_SAMPLES + 1);
        let (_, peak, _) = samples.select_nth_unstable_by(nth, f32::total_cmp);
        robust[slot] = robust[slot].max(*peak);
        max[slot] = max[slot].max(top);
    }
    // All-zero peaks with a few spikes above: scale to the spikes rather than draw nothing.
    std::array::from_fn(|i| if robust[i] > 0.0 { robust[i] } else { max[i] })
}

/// Columns a sort column's cells take, the zone and state wider on a wide screen.
fn width(col: SortColumn, wide: bool, l: Lang) -> u16 {
    match col {
        // As wide as the widest role in the language on screen ("replica", "マスター").
        SortColumn::Role => Role::ALL
            .iter()
            .map(|r| crate::text::width(tr(l, r.short())) as u16)
            .max()
            .unwrap_or(7),
        SortColumn::Name => 12,
        SortColumn::Id => 19,
        SortColumn::Zone if wide => 15,
        SortColumn::Zone => 2,
        SortColumn::State if wide => 13,
        SortColumn::State => 8,
        SortColumn::Checks | SortColumn::Cpu => 4,
        SortColumn::P99 => 6,
    }
}

fn build_row<'a>(
    app: &App,
    inst: &'a Instance,
    wide: bool,
    spark_width: usize,
    spark_max: f32,
    theme: &Theme,
) -> Row<'a> {
    let severity = app
        .incidents
        .iter()
        .filter(|i| i.instance_id == inst.id)
        .map(|i| i.severity)
        .max();
    let (mark, mark_style) = match severity {
        Some(Severity::Critical) => ("✖", theme.bad()),
        Some(Severity::Warning) => ("▲", theme.warn()),
        None => (" ", Style::new()),
    };
    let state_style = match inst.state {
        InstanceState::Running => Style::new(),
        InstanceState::Pending | InstanceState::Stopping | InstanceState::ShuttingDown => {
            theme.warn()
        }
        InstanceState::Stopped | InstanceState::Terminated => theme.dim(),
    };
    let checks = &inst.health.checks;
    let (chk, chk_style) = if checks.any_impaired() {
        (format!("✗{}/2", checks.passed()), theme.bad())
    } else if checks.passed() == 2 {
        ("✓2/2".to_string(), theme.ok())
    } else if [checks.system, checks.instance].contains(&CheckStatus::Initializing) {
        (format!("…{}/2", checks.passed()), theme.warn())
    } else {
        (format!("?{}/2", checks.passed()), theme.dim())
    };
    let p99_style = if severity.is_some() && inst.role == Role::Web {
        theme.bad()
    } else {
        Style::new()
    };
    let room = |col| usize::from(width(col, wide, app.lang));
    let column = |col| match col {
        SortColumn::Role => Cell::from(tr(app.lang, inst.role.short())),
        SortColumn::Name => Cell::from(fit_name(&inst.name, room(col))),
        SortColumn::Id => Cell::from(inst.id.as_str()),
        SortColumn::Zone if wide => Cell::from(inst.az.as_str()),
        // The zone's letter and the digit before it ("1a"): the region is in the header.
        SortColumn::Zone => Cell::from(tail(&inst.az, room(col))),
        SortColumn::State => {
            Cell::from(fit(&said(app.lang, inst.state.as_str()), room(col))).style(state_style)
        }
        SortColumn::Checks => Cell::from(chk.clone()).style(chk_style),
        SortColumn::Cpu => Cell::from(pct(inst.latest_cpu())),
        SortColumn::P99 => Cell::from(ms(inst.latest_p99())).style(p99_style),
    };
    let mut cells: Vec<Cell> = [Cell::from(mark).style(mark_style)]
        .into_iter()
        .chain(SortColumn::ALL.map(column))
        .collect();
    if wide {
        cells.push(
            Cell::from(sparkline(inst.health.p99_ms.iter(), spark_width, spark_max))
                .style(p99_style),
        );
    }
    // A quarantined instance is kept on purpose, for forensics: not to be thrown away, and
    // out of the fleet's work.
    cells.push(if inst.tags.contains_key(TAG_QUARANTINE) {
        Cell::from(tr(app.lang, "held")).style(theme.warn())
    } else if inst.disposable() {
        Cell::from(tr(app.lang, "yes"))
    } else {
        Cell::from(tr(app.lang, "no")).style(theme.warn())
    });
    Row::new(cells)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::domain::TimeSeries;
    use crate::provider::sim::SimFleet;

    /// Web servers with the given p99 series, oldest sample first.
    fn webs(series: &[Vec<f32>]) -> Vec<Instance> {
        let epoch = chrono::DateTime::UNIX_EPOCH;
        let snap = SimFleet::new(&Config::builtin(), epoch).snapshot();
        let web = snap.instances.into_iter().find(|i| i.role == Role::Web);
        let web = web.expect("the built-in fleet has web servers");
        let with = |values: &Vec<f32>| {
            let mut inst = web.clone();
            inst.health.p99_ms = TimeSeries::new(120);
            values.iter().for_each(|&v| inst.health.p99_ms.push(v));
            inst
        };
        series.iter().map(with).collect()
    }

    #[test]
    fn a_noise_spike_does_not_flatten_a_slow_server() {
        let mut rows = vec![vec![100.0; 60]; 30];
        rows[3][40] = 5000.0;
        rows[7] = [vec![100.0; 54], vec![500.0; 6]].concat();
        let insts = webs(&rows);
        let scales = spark_scales(insts.iter(), 60);
        assert_eq!(scales, [500.0, 0.0, 0.0]);
        let draw = |i: &Instance| sparkline(i.health.p99_ms.iter(), 8, scales[0]);
        assert_eq!(draw(&insts[7]), "▂▂██████");
        assert_eq!(draw(&insts[0]), "▂".repeat(8));
        // Above the scale: clipped to the top bar, not off the chart.
        assert_eq!(sparkline([5000.0].into_iter(), 1, scales[0]), "█");
        // Only what is drawn counts: an old slow spell scrolled out of view sets nothing.
        let recovered = webs(&[[vec![500.0; 6], vec![100.0; 54]].concat()]);
        assert_eq!(spark_scales(recovered.iter(), 54), [100.0, 0.0, 0.0]);
    }

    #[test]
    fn spike_only_rows_and_gaps_still_scale() {
        let mut zeros = vec![0.0; 20];
        zeros[5] = 40.0;
        let gaps = vec![f32::NAN; 20];
        let insts = webs(&[zeros, gaps, vec![7.0]]);
        assert_eq!(spark_scales(insts[..2].iter(), 20), [40.0, 0.0, 0.0]);
        assert_eq!(spark_scales(insts[1..2].iter(), 20), [0.0; 3]);
        assert_eq!(spark_scales(insts[2..].iter(), 20), [7.0, 0.0, 0.0]);
    }
}
