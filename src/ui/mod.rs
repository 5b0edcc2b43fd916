//! `view(state, frame)`: draws the whole screen from `App`. Pure: no clock, no I/O. One file
//! per thing drawn; where each goes is `app::viewport`'s arithmetic.

mod api_calls;
mod banner;
mod fleet;
mod follow;
mod footer;
mod header;
mod help;
mod present;
mod prompt;
mod replication;
mod run_panel;
mod scorecard;
mod sparkline;
pub mod theme;
mod timeline;

use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::widgets::{Paragraph, Wrap};

use crate::app::App;
use crate::app::viewport::{MIN_HEIGHT, MIN_WIDTH, areas, too_small};
use theme::Theme;

pub fn view(app: &App, frame: &mut Frame) {
    let theme = Theme::new(app.color);
    let area = frame.area();
    if too_small(area) {
        let msg = format!(
            "terminal too small: {}x{}\ndake needs at least {MIN_WIDTH}x{MIN_HEIGHT}\n\nenlarge the window, or use `dake status`",
            area.width, area.height
        );
        let y = area.height.saturating_sub(4) / 2;
        let r = Rect {
            y: area.y + y,
            height: area.height.saturating_sub(y),
            ..area
        };
        frame.render_widget(
            Paragraph::new(msg)
                .alignment(Alignment::Center)
                .wrap(Wrap { trim: true }),
            r,
        );
        return;
    }
    if app.arming == crate::app::Arming::Following {
        follow::render(app, frame, area, &theme);
        overlays(app, frame, area, &theme);
    } else {
        console(app, frame, area, &theme);
    }
    // Whatever drew it, a shared screen shows no account id or address.
    if app.present {
        present::mask(frame.buffer_mut());
    }
}

fn console(app: &App, frame: &mut Frame, area: Rect, theme: &Theme) {
    let a = areas(app, area);
    header::render(app, frame, a.header, theme);
    banner::render(app, frame, a.banner, theme);
    fleet::render(app, frame, a.table, theme);
    if a.run.height > 0 {
        run_panel::render(app, frame, a.run, theme);
    }
    if a.replicas.height > 0 {
        replication::render(app, frame, a.replicas, theme);
    }
    if a.timeline.height > 0 {
        timeline::render(app, frame, a.timeline, theme);
    }
    if a.debug.height > 0 {
        api_calls::render(app, frame, a.debug, theme);
    }
    footer::render(app, frame, a.footer, theme);
    overlays(app, frame, area, theme);
}

/// Help, the scorecard and the open prompt, over whatever is drawn.
fn overlays(app: &App, frame: &mut Frame, area: Rect, theme: &Theme) {
    if app.show_help {
        help::render(app, frame, area, theme);
    }
    if app.show_scorecard {
        scorecard::render(app, frame, area, theme);
    }
    prompt::render(app, frame, area, theme);
}

/// Clears `r` for an overlay, and a wide character just left of it whose second half it
/// would otherwise leave behind (the terminal draws the whole character over the border).
fn clear(frame: &mut Frame, r: Rect) {
    frame.render_widget(ratatui::widgets::Clear, r);
    if r.x == 0 {
        return;
    }
    let buf = frame.buffer_mut();
    for y in r.top()..r.bottom() {
        let cell = &mut buf[(r.x - 1, y)];
        if crate::text::width(cell.symbol()) > 1 {
            cell.set_symbol(" ");
        }
    }
}

/// A box of at most `width` x `height` in the middle of `area`, for overlays.
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let (width, height) = (width.min(area.width), height.min(area.height));
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}
