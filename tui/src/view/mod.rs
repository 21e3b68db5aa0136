//! Drawing: [`draw`] renders the whole screen from an [`App`], and changes nothing in it (the
//! event line cache aside). Each pane has its own module; this one has the title line, the hint
//! bar, the prompt, the help popup, the writers list and the styles every pane shares.

mod code;
mod details;
mod events;
mod locals;
mod machine;

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout as Split, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph, Wrap};

use crate::app::{App, Mode, Pane, ReplayState, Theme};
use crate::keymap::{self, BINDINGS, Scope};

/// The styles of one theme.
pub(crate) struct Styles {
    pub(crate) color: bool,
}

impl Styles {
    pub(crate) fn of(theme: Theme) -> Styles {
        Styles { color: theme.color }
    }

    fn fg(&self, color: Color) -> Style {
        if self.color { Style::new().fg(color) } else { Style::new() }
    }

    pub(crate) fn selected(&self) -> Style {
        let _ = self.color;
        Style::new().add_modifier(Modifier::REVERSED)
    }

    pub(crate) fn trap(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    pub(crate) fn failed(&self) -> Style {
        self.fg(Color::Yellow)
    }

    pub(crate) fn end(&self) -> Style {
        self.fg(Color::Green)
    }

    pub(crate) fn dim(&self) -> Style {
        if self.color { Style::new().fg(Color::DarkGray) } else { Style::new().add_modifier(Modifier::DIM) }
    }

    pub(crate) fn label(&self) -> Style {
        self.fg(Color::Cyan)
    }

    pub(crate) fn changed(&self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    pub(crate) fn current(&self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    pub(crate) fn notice(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
}

/// The bordered block of a pane: its number and name, then `extra`; the focused one stands out.
pub(crate) fn pane_block<'a>(app: &App, pane: Pane, extra: &str) -> Block<'a> {
    let focused = app.focus == pane;
    let styles = Styles::of(app.theme);
    let mut title = format!(" {} {} ", pane.number(), pane.title());
    if !extra.is_empty() {
        title.push_str(extra);
        title.push(' ');
    }
    let block = Block::new().borders(Borders::ALL).title(title);
    if focused {
        block
            .border_type(BorderType::Thick)
            .border_style(styles.label().add_modifier(Modifier::BOLD))
            .title_style(Style::new().add_modifier(Modifier::BOLD))
    } else {
        block.border_style(styles.dim())
    }
}

/// Draws the whole screen.
pub fn draw(app: &App, frame: &mut Frame<'_>) {
    let layout = app.layout();
    title(app, frame, layout.title);
    if layout.timeline.height > 0 {
        events::timeline(app, frame, layout.timeline);
    }
    for (pane, area) in &layout.panes {
        match pane {
            Pane::Events => events::events(app, frame, *area),
            Pane::Details => details::details(app, frame, *area),
            Pane::Code => code::code(app, frame, *area),
            Pane::Frames => code::frames(app, frame, *area),
            Pane::Registers => machine::registers(app, frame, *area),
            Pane::Memory => machine::memory(app, frame, *area),
            Pane::Locals => locals::locals(app, frame, *area),
        }
    }
    bottom_line(app, frame, layout.hint);
    match &app.mode {
        Mode::Help => help(app, frame),
        Mode::Writers { address, writers, selected } => {
            machine::writers(app, frame, *address, writers, *selected);
        }
        _ => {}
    }
}

fn title(app: &App, frame: &mut Frame<'_>, area: Rect) {
    let styles = Styles::of(app.theme);
    let module = app.trace.header().run.modules.first().map_or("?", |m| m.name.as_str());
    let mut spans = vec![
        Span::styled("wtrace ", Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(format!("{}  {module}  {} events", app.name, app.len)),
    ];
    if let Some((filter, set)) = &app.filter {
        spans.push(Span::styled(format!("  [filter {}: {}]", filter.text, set.len()), styles.label()));
    }
    if let Some((what, fraction)) = app.busy {
        spans.push(Span::styled(
            format!("  {what}… {:.0}% (Esc cancels)", fraction * 100.0),
            styles.current(),
        ));
    }
    if matches!(app.replay, ReplayState::Running) {
        spans.push(Span::styled("  replaying…", styles.current()));
    }
    if let Some((_, what)) = app.debug.running {
        spans.push(Span::styled(format!("  replaying… ({what}; Esc cancels)"), styles.current()));
    } else if let Some(view) = &app.debug.view {
        spans.push(Span::styled(
            format!("  [debug {}]", crate::app::position_label(&view.stop)),
            styles.label(),
        ));
    }
    if let Some(notice) = &app.notice {
        spans.push(Span::styled(format!("  {notice}"), styles.notice()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The hint bar, or the prompt being typed, or a status message.
fn bottom_line(app: &App, frame: &mut Frame<'_>, area: Rect) {
    let styles = Styles::of(app.theme);
    let line = match &app.mode {
        Mode::Prompt { kind, text } => Line::from(vec![
            Span::styled(kind.label(), styles.label()),
            Span::raw(text.clone()),
            Span::styled("█", Style::new().add_modifier(Modifier::SLOW_BLINK)),
            Span::styled("   Enter: go  Esc: cancel", styles.dim()),
        ]),
        Mode::Writers { .. } => {
            Line::from(Span::styled("j/k move  Enter: go to that call  Esc: close", styles.dim()))
        }
        _ => {
            if let Some(status) = &app.status {
                Line::from(Span::styled(status.clone(), styles.current()))
            } else {
                let mut spans = Vec::new();
                for (key, hint) in keymap::hints(app.focus) {
                    spans.push(Span::styled(key, styles.label().add_modifier(Modifier::BOLD)));
                    spans.push(Span::raw(format!(" {hint}  ")));
                }
                Line::from(spans)
            }
        }
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// A box of `width` × `height` centred in `area`, no larger than it.
pub(crate) fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [row] = Split::vertical([Constraint::Length(height.min(area.height))]).flex(Flex::Center).areas(area);
    let [cell] = Split::horizontal([Constraint::Length(width.min(area.width))]).flex(Flex::Center).areas(row);
    cell
}

/// The help popup, from the same keymap as the hint bar.
fn help(app: &App, frame: &mut Frame<'_>) {
    let styles = Styles::of(app.theme);
    let mut lines = Vec::new();
    let mut scope = None;
    for binding in BINDINGS {
        if scope != Some(binding.scope) {
            scope = Some(binding.scope);
            let heading = match binding.scope {
                Scope::Global => "Everywhere".to_owned(),
                Scope::Pane(pane) => format!("In {}", pane.title()),
            };
            if !lines.is_empty() {
                lines.push(Line::raw(""));
            }
            lines.push(Line::styled(heading, Style::new().add_modifier(Modifier::BOLD)));
        }
        lines.push(Line::from(vec![
            Span::styled(format!("  {:<14}", keymap::keys_label(binding)), styles.label()),
            Span::raw(binding.help),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("Mouse: click selects, the wheel scrolls the pane under it.", styles.dim()));
    lines.push(Line::styled("j/k scroll this help; any other key closes it.", styles.dim()));
    let screen = frame.area();
    let block = Block::new().borders(Borders::ALL).title(" wtrace — keys ");
    // Two columns side by side when one is taller than the screen and the screen is wide.
    if lines.len() as u16 + 2 > screen.height && screen.width >= 120 {
        let right = lines.split_off(lines.len().div_ceil(2));
        let height = (lines.len().max(right.len()) as u16 + 6).min(screen.height);
        let area = centered(screen, screen.width.min(170), height);
        frame.render_widget(Clear, area);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let [left_area, right_area] =
            Split::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(inner);
        for (column, area) in [(lines, left_area), (right, right_area)] {
            let paragraph = Paragraph::new(column).wrap(Wrap { trim: false }).scroll((app.help_scroll, 0));
            frame.render_widget(paragraph, area);
        }
        return;
    }
    let area = centered(screen, 84, lines.len() as u16 + 2);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).scroll((app.help_scroll, 0)).block(block),
        area,
    );
}

/// A hex dump line: `0x00001040  48 65 6c 6c 6f 0a ...  Hello.`, the byte at `cursor` marked.
pub(crate) fn hex_line(
    styles: &Styles,
    offset: u64,
    bytes: &[u8],
    cursor: Option<u64>,
    width: usize,
) -> Line<'static> {
    let mut spans = vec![Span::styled(format!("{offset:#010x}  "), styles.dim())];
    for i in 0..width {
        let at = offset + i as u64;
        let text = bytes.get(i).map_or_else(|| "  ".to_owned(), |b| format!("{b:02x}"));
        let style = if cursor == Some(at) { styles.selected() } else { Style::new() };
        spans.push(Span::styled(text, style));
        spans.push(Span::raw(if i + 1 == width / 2 { "  " } else { " " }));
    }
    spans.push(Span::raw(" "));
    for (i, b) in bytes.iter().enumerate() {
        let c = if (0x20..0x7f).contains(b) { char::from(*b) } else { '.' };
        let style = if cursor == Some(offset + i as u64) { styles.selected() } else { Style::new() };
        spans.push(Span::styled(c.to_string(), style));
    }
    Line::from(spans)
}
