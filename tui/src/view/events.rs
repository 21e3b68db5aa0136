//! The Events pane — one line per event, only the rows on screen decoded — and the timeline
//! strip over the whole trace.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use wtrace_traces::EventKind;

use super::{Styles, pane_block};
use crate::app::{App, Pane};
use crate::data::{self, Category};
use crate::filter::short_kind;
use crate::worker::CATEGORY_BUCKETS;

pub(super) fn events(app: &App, frame: &mut Frame<'_>, area: Rect) {
    let styles = Styles::of(app.theme);
    let rows = u64::from(area.height.saturating_sub(2));
    let count = app.list_len();
    let position = if count == 0 { 0 } else { app.position_of(app.selected) + 1 };
    let extra = match &app.filter {
        Some(_) => format!("{position}/{count} shown, seq {}/{}", app.selected, app.len),
        None => format!("{position}/{count}"),
    };
    let block = pane_block(app, Pane::Events, &extra);
    let width = app.len.saturating_sub(1).to_string().len();
    let mut lines = Vec::new();
    for position in app.top..(app.top + rows).min(count) {
        let Some(seq) = app.seq_at(position) else { break };
        let Some(line) = app.line(seq) else { break };
        let style = match line.kind {
            EventKind::Trap | EventKind::Interrupted => styles.trap(),
            EventKind::Exit | EventKind::Returned => styles.end(),
            EventKind::HostCall if line.failed => styles.failed(),
            EventKind::HostCall => Style::new(),
        };
        let marker = if seq == app.selected { "▶" } else { " " };
        let text = format!("{marker}{seq:>width$}  {:<5} {}", short_kind(line.kind), line.summary);
        let style = if seq == app.selected { style.patch(styles.selected()) } else { style };
        lines.push(Line::styled(text, style));
    }
    if count == 0 {
        let why = if app.len == 0 {
            "the trace holds no events"
        } else {
            "no event passes the filter (f, then Enter on nothing, clears it)"
        };
        lines.push(Line::styled(why, styles.dim()));
    }
    if let Some(error) = &app.store.borrow().error {
        lines.push(Line::styled(format!("cannot read further: {error}"), styles.notice()));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// Density glyphs, lowest to highest.
const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

pub(super) fn timeline(app: &App, frame: &mut Frame<'_>, area: Rect) {
    let styles = Styles::of(app.theme);
    let width = usize::from(area.width);
    let categories = app.categories.as_ref().map(|buckets| {
        (0..width)
            .map(|c| buckets[(c * CATEGORY_BUCKETS / width.max(1)).min(CATEGORY_BUCKETS - 1)])
            .collect::<Vec<_>>()
    });
    let mut columns = data::columns(&app.trace, width, categories.as_deref());
    data::mark(&mut columns, app.len, &app.traps, &app.ends);
    let most = columns.iter().map(|c| c.bytes).max().unwrap_or(0).max(1);
    let current = if app.len == 0 {
        usize::MAX
    } else {
        ((u128::from(app.selected) * width as u128 / u128::from(app.len)) as usize)
            .min(width.saturating_sub(1))
    };
    let spans: Vec<Span<'_>> = columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let (glyph, mut style) = if column.trap {
                ('T', styles.trap())
            } else if column.end {
                ('E', styles.end())
            } else {
                let level = ((column.bytes.saturating_mul(7)) / most) as usize;
                (LEVELS[level.min(7)], category_style(&styles, column.category))
            };
            if i == current {
                style = style.patch(styles.selected());
            }
            Span::styled(glyph.to_string(), style)
        })
        .collect();
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn category_style(styles: &Styles, category: Option<Category>) -> Style {
    if !styles.color {
        return Style::new();
    }
    match category {
        Some(Category::Io) => Style::new().fg(Color::Blue),
        Some(Category::Files) => Style::new().fg(Color::Magenta),
        Some(Category::Time) => Style::new().fg(Color::Cyan),
        Some(Category::Process) => Style::new().fg(Color::Green),
        Some(Category::Other) => Style::new().fg(Color::White),
        None => Style::new().fg(Color::DarkGray),
    }
}
