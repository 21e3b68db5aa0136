//! The Code pane — the source lines around a frame's location when the module has DWARF and the
//! file exists here (as gdb's TUI shows them), else the function's disassembly with Wasm
//! offsets, `->` at the Wasm PC either way — and the Frames pane, in Wasmtime's backtrace format.

use std::path::Path;

use ratatui::Frame as TermFrame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use wtrace_runtime::describe;
use wtrace_traces::{Event, Frame, SourceLocation};

use super::{Styles, pane_block};
use crate::app::{App, CodeView, ModuleState, Pane};

/// A backtrace line for frame `index`, as Wasmtime writes one, with `file:line` when known.
pub(super) fn frame_text(app: &App, index: usize, frame: &Frame) -> String {
    let module = app.trace.header().run.modules.first().map_or("<module>", |m| m.name.as_str());
    describe::frame_line(index, frame, module, app.module_info().map(AsRef::as_ref))
}

fn location(app: &App, frame: &Frame) -> Option<SourceLocation> {
    describe::frame_location(frame, app.module_info().map(AsRef::as_ref))
}

pub(super) fn frames(app: &App, frame: &mut TermFrame<'_>, area: Rect) {
    let styles = Styles::of(app.theme);
    let event = app.selected_event();
    let lines: Vec<Line<'_>> = match event.as_deref() {
        Some(Event::Trap(trap)) if !trap.frames.is_empty() => trap
            .frames
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let style = if i == app.frame { styles.selected() } else { Style::new() };
                Line::styled(frame_text(app, i, f), style)
            })
            .collect(),
        Some(Event::Trap(_)) => vec![Line::styled("the trap has no Wasm frames", styles.dim())],
        Some(Event::HostCall(_)) => {
            vec![Line::styled("a host call: the trace records no Wasm stack here", styles.dim())]
        }
        _ => vec![Line::styled("no Wasm stack at this event", styles.dim())],
    };
    let scroll = (app.frame as u16).saturating_sub(area.height.saturating_sub(3));
    frame.render_widget(
        Paragraph::new(lines).scroll((scroll, 0)).block(pane_block(app, Pane::Frames, "")),
        area,
    );
}

pub(super) fn code(app: &App, frame: &mut TermFrame<'_>, area: Rect) {
    let styles = Styles::of(app.theme);
    let rows = usize::from(area.height.saturating_sub(2));
    let event = app.selected_event();
    let target = match event.as_deref() {
        Some(Event::Trap(trap)) => trap.frames.get(app.frame).cloned(),
        _ => None,
    };
    let (extra, lines) = match (&target, &app.module) {
        (None, _) => (String::new(), vec![Line::styled(no_code_reason(event.as_deref()), styles.dim())]),
        (Some(_), ModuleState::Loading) => {
            (String::new(), vec![Line::styled("loading the module…", styles.dim())])
        }
        (Some(f), ModuleState::Failed(error)) if f.module_offset.is_some() => {
            (String::new(), vec![Line::styled(format!("no module to show: {error}"), styles.notice())])
        }
        (Some(f), _) => {
            let source = (app.code_view == CodeView::Source)
                .then(|| location(app, f))
                .flatten()
                .and_then(|loc| app.source(Path::new(&loc.file)).map(|text| (loc, text)));
            match source {
                Some((loc, text)) => source_lines(app, &styles, &loc, &text, rows),
                None => disassembly_lines(app, &styles, f, rows),
            }
        }
    };
    frame.render_widget(Paragraph::new(lines).block(pane_block(app, Pane::Code, &extra)), area);
}

fn no_code_reason(event: Option<&Event>) -> String {
    match event {
        Some(Event::HostCall(_)) => "a host call: no Wasm position is recorded here (traps have one)".into(),
        Some(Event::Trap(_)) => "the trap has no frame to show".into(),
        _ => "no Wasm position at this event".into(),
    }
}

/// Source lines around `loc`, the line marked.
fn source_lines(
    app: &App,
    styles: &Styles,
    loc: &SourceLocation,
    text: &[String],
    rows: usize,
) -> (String, Vec<Line<'static>>) {
    let at = (loc.line as usize).saturating_sub(1).min(text.len().saturating_sub(1));
    let start = at.saturating_sub(rows / 2);
    let start =
        start.saturating_add(usize::from(app.scroll_of(Pane::Code))).min(text.len().saturating_sub(1));
    let digits = (start + rows).to_string().len();
    let lines = text
        .iter()
        .enumerate()
        .skip(start)
        .take(rows)
        .map(|(i, line)| {
            let current = i == at;
            let marker = if current { "->" } else { "  " };
            let style = if current { styles.current() } else { Style::new() };
            Line::from(vec![
                Span::styled(
                    format!("{marker}{:>digits$} ", i + 1),
                    if current { style } else { styles.dim() },
                ),
                Span::styled(line.replace('\t', "    "), style),
            ])
        })
        .collect();
    let file = Path::new(&loc.file)
        .file_name()
        .map_or_else(|| loc.file.clone(), |n| n.to_string_lossy().into_owned());
    (format!("{file}:{} (source; v: disassembly)", loc.line), lines)
}

/// The disassembly of the frame's function, the Wasm PC marked.
fn disassembly_lines(app: &App, styles: &Styles, f: &Frame, rows: usize) -> (String, Vec<Line<'static>>) {
    let Some(pc) = f.module_offset else {
        return (String::new(), vec![Line::styled("this frame has no Wasm offset", styles.dim())]);
    };
    let Some(info) = app.module_info() else {
        return (String::new(), vec![Line::styled("loading the module…", styles.dim())]);
    };
    let index = info.function_at(pc).unwrap_or(f.func_index);
    let name = info.name(index);
    let why = if app.code_view == CodeView::Disassembly {
        "v: source"
    } else if info.has_dwarf() {
        "the source file is not here"
    } else {
        "no DWARF in the module"
    };
    let extra = format!("{name} (disassembly; {why})");
    let Some(disassembly) = app.disassembly(index) else { return (extra, Vec::new()) };
    let listing = match disassembly.as_ref() {
        Ok(listing) => listing,
        Err(error) => {
            return (extra, vec![Line::styled(format!("cannot disassemble: {error}"), styles.notice())]);
        }
    };
    let at = listing.iter().rposition(|l| l.offset.is_some_and(|o| o <= pc)).unwrap_or(0);
    let start = at.saturating_sub(rows / 2).saturating_add(usize::from(app.scroll_of(Pane::Code)));
    let start = start.min(listing.len().saturating_sub(1));
    let lines = listing
        .iter()
        .enumerate()
        .skip(start)
        .take(rows)
        .map(|(i, line)| {
            let current = i == at;
            let offset = line.offset.map_or_else(|| "        ".to_owned(), |o| format!("{o:>#8x}"));
            let style = if current { styles.current() } else { Style::new() };
            Line::from(vec![
                Span::styled(if current { "-> " } else { "   " }, style),
                Span::styled(format!("{offset}  "), if current { style } else { styles.dim() }),
                Span::styled(line.text.clone(), style),
            ])
        })
        .collect();
    (extra, lines)
}
