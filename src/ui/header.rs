//! The header line: fleet, provider and region, the fleet's clock, the arming badge and how
//! fresh the data is.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::theme::Theme;
use crate::app::{App, Arming, DataAge};
use crate::i18n::{tr, trf};
use crate::text::fit;

pub fn render(app: &App, frame: &mut Frame, area: Rect, theme: &Theme) {
    let fleet = app
        .snapshot
        .as_ref()
        .map_or(app.config.fleet.name.as_str(), |s| s.fleet.as_str());
    let region = app
        .snapshot
        .as_ref()
        .map_or(app.config.fleet.region.as_str(), |s| s.region.as_str());
    let clock = app.snapshot.as_ref().map_or(app.now, |s| s.taken_at);
    let local = if app.local_offset.local_minus_utc() == 0 {
        String::new()
    } else {
        format!(
            " ({} local)",
            clock.with_timezone(&app.local_offset).format("%H:%M")
        )
    };
    let following = app.arming == Arming::Following;
    let left = if following {
        format!(
            " dake │ follow │ {} UTC{local} ",
            app.fleet_now().format("%H:%M:%S")
        )
    } else {
        format!(
            " dake │ {fleet} │ {} {region} │ {} UTC{local} ",
            app.provider_name,
            clock.format("%H:%M:%S")
        )
    };
    let badge_style = match app.arming {
        Arming::Drill => theme.badge_drill(),
        Arming::ReadOnly | Arming::Following => theme.badge_read_only(),
        Arming::Armed => theme.badge_armed(),
    };
    let label = badge_label(app, clock, crate::text::width(&left), area.width as usize);
    let badge = Span::styled(format!(" {label} "), badge_style);
    // A followed journal grows when the run does something: quiet is not stale.
    let data = match (following, app.fetched_at) {
        (true, Some(at)) => Span::raw(format!(
            " {} ",
            trf(
                app.lang,
                "last record {age} ago",
                &[("age", &crate::text::age((app.now - at).num_seconds()))]
            )
        )),
        (true, None) => Span::raw(format!(" {} ", tr(app.lang, "no record yet"))),
        _ => data_span(app, theme),
    };
    // Read in part: the rest of the screen is current, these parts are missing.
    let partial = app
        .snapshot
        .as_ref()
        .filter(|s| !s.unread.is_empty())
        .map(|s| {
            let parts: Vec<&str> = s.unread.keys().map(String::as_str).collect();
            Span::styled(
                format!(
                    " {} ",
                    trf(
                        app.lang,
                        "PARTIAL: no {parts}",
                        &[("parts", &parts.join(", "))]
                    )
                ),
                theme.warning(),
            )
        })
        .unwrap_or_default();
    let right_width = badge.width() + partial.width() + data.width();
    let left = fit(&left, (area.width as usize).saturating_sub(right_width));
    let pad = (area.width as usize).saturating_sub(crate::text::width(&left) + right_width);
    let line = Line::from(vec![
        Span::raw(left),
        Span::raw(" ".repeat(pad)),
        badge,
        partial,
        data,
    ]);
    frame.render_widget(Paragraph::new(line).style(theme.header()), area);
}

/// How fresh the provider's data is.
fn data_span<'a>(app: &App, theme: &Theme) -> Span<'a> {
    let l = app.lang;
    match app.data_age() {
        DataAge::Waiting => Span::raw(format!(" {} ", tr(l, "waiting for data"))),
        DataAge::Failing(None) => {
            Span::styled(format!(" ✗ {} ", tr(l, "PROVIDER ERROR")), theme.critical())
        }
        DataAge::Failing(Some(label)) => Span::styled(
            format!(" ✗ {} ", trf(l, "STALE data {age}", &[("age", &label)])),
            theme.critical(),
        ),
        DataAge::Stale(label) => Span::styled(
            format!(" {} ", trf(l, "STALE data {age}", &[("age", &label)])),
            theme.warning(),
        ),
        DataAge::Fresh(label) => {
            Span::raw(format!(" {} ", trf(l, "data {age}", &[("age", &label)])))
        }
    }
}

/// The arming badge; a scored drill adds which, and how long it has been going (also while
/// incidents fill the banner), the scenario's name only where the clock still fits beside it.
fn badge_label(
    app: &App,
    clock: chrono::DateTime<chrono::Utc>,
    left_width: usize,
    area_width: usize,
) -> String {
    // A scored drill says which, and how long it has been going (also while incidents fill
    // the banner); the scenario's name only where the clock still fits beside it.
    match &app.drill {
        Some(d) => {
            let secs = d
                .scorecard
                .as_ref()
                .map_or_else(|| d.secs(clock), |c| c.drill_secs);
            let took = crate::text::age(secs);
            let named = format!(
                "{} {} {took}",
                tr(app.lang, app.arming.label()),
                d.scenario.id
            );
            let room = area_width.saturating_sub(left_width + 12);
            if named.chars().count() + 2 <= room {
                named
            } else {
                format!("{} {took}", tr(app.lang, app.arming.label()))
            }
        }
        None => tr(app.lang, app.arming.label()).to_string(),
    }
}
