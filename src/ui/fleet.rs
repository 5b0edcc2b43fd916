//! The fleet table. Only the rows on screen are built, so a 10,000-instance fleet draws as
//! fast as a ten-instance one.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Row, Table};

use super::format::{fit, ms, pct, sparkline};
use super::layout::WIDE;
use super::theme::Theme;
use crate::app::{App, SortColumn};
use crate::detect::Severity;
use crate::domain::{CheckStatus, Instance, InstanceState, Role};

pub fn render(app: &App, frame: &mut Frame, area: Rect, theme: &Theme) {
    let total = app.snapshot.as_ref().map_or(0, |s| s.instances.len());
    let arrow = if app.reverse { "▼" } else { "▲" };
    let mut title = vec![
        Span::styled(" Fleet ", theme.title()),
        Span::raw(format!("{}/{} ", app.rows.len(), total)),
        Span::styled(format!("sort {} {arrow} ", app.sort.label()), theme.dim()),
    ];
    if !app.filter.is_empty() {
        title.push(Span::styled(
            format!("filter \"{}\" ", app.filter),
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
    let visible = app.rows.iter().enumerate().skip(app.offset).take(body_rows);
    let spark_width = if wide {
        (area.width as usize).saturating_sub(100).clamp(8, 60)
    } else {
        0
    };
    // Sparklines share a scale per role, so a slow server stands out against its peers.
    let scale = |role: Role| {
        app.rows
            .iter()
            .skip(app.offset)
            .take(body_rows)
            .map(|&i| &snap.instances[i])
            .filter(|i| i.role == role)
            .filter_map(|i| i.health.p99_ms.max())
            .filter(|v| v.is_finite())
            .fold(0.0f32, f32::max)
    };
    let scales = [
        scale(Role::Web),
        scale(Role::DbMaster),
        scale(Role::DbReplica),
    ];
    let rows: Vec<Row> = visible
        .map(|(pos, &idx)| {
            let inst = &snap.instances[idx];
            let max = scales[match inst.role {
                Role::Web => 0,
                Role::DbMaster => 1,
                Role::DbReplica => 2,
            }];
            let row = build_row(app, inst, wide, spark_width, max, theme);
            if pos == app.selected {
                row.style(theme.selected())
            } else {
                row
            }
        })
        .collect();
    let mut widths = vec![
        Constraint::Length(1),
        Constraint::Length(7),
        Constraint::Length(12),
        Constraint::Length(19),
        Constraint::Length(if wide { 15 } else { 2 }),
        Constraint::Length(if wide { 13 } else { 8 }),
        Constraint::Length(4),
        Constraint::Length(4),
        Constraint::Length(6),
    ];
    let mut header = vec!["", "ROLE", "NAME", "ID", "AZ", "STATE", "CHK", "CPU", "P99"];
    if wide {
        widths.push(Constraint::Length(spark_width as u16));
        header.push("P99 HISTORY");
    }
    widths.push(Constraint::Length(4));
    header.push("DISP");
    let sorted = sort_header(app.sort);
    let header = Row::new(header.into_iter().map(|h| {
        let style = if !h.is_empty() && h == sorted {
            theme.title()
        } else {
            theme.dim()
        };
        Cell::from(h).style(style)
    }));
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .block(block);
    frame.render_widget(table, area);
}

fn sort_header(col: SortColumn) -> &'static str {
    match col {
        SortColumn::Role => "ROLE",
        SortColumn::Name => "NAME",
        SortColumn::Id => "ID",
        SortColumn::Zone => "AZ",
        SortColumn::State => "STATE",
        SortColumn::Checks => "CHK",
        SortColumn::Cpu => "CPU",
        SortColumn::P99 => "P99",
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
    let az = if wide {
        inst.az.clone()
    } else {
        inst.az
            .chars()
            .rev()
            .take(2)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect()
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
    let mut cells = vec![
        Cell::from(mark).style(mark_style),
        Cell::from(inst.role.short()),
        Cell::from(fit(&inst.name, 12)),
        Cell::from(inst.id.as_str()),
        Cell::from(az),
        Cell::from(fit(inst.state.as_str(), if wide { 13 } else { 8 })).style(state_style),
        Cell::from(chk).style(chk_style),
        Cell::from(pct(inst.latest_cpu())),
        Cell::from(ms(inst.latest_p99())).style(p99_style),
    ];
    if wide {
        cells.push(
            Cell::from(sparkline(inst.health.p99_ms.iter(), spark_width, spark_max))
                .style(p99_style),
        );
    }
    cells.push(if inst.disposable() {
        Cell::from("yes")
    } else {
        Cell::from("no").style(theme.warn())
    });
    Row::new(cells)
}
