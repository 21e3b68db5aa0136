//! The Code pane — the source lines around a frame's location when the module has DWARF and the
//! file exists here (as gdb's TUI shows them), else the function's disassembly with Wasm
//! offsets, `->` at the Wasm PC either way, `●` at breakpoints, the cursor line (for `b`)
//! reversed when moved — and the Frames pane, in Wasmtime's backtrace format. Both show the
//! debug stop's frames when the debug replay is stopped at the selected event, else the
//! selected trap's backtrace.

use std::path::Path;

use ratatui::Frame as TermFrame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use wtrace_runtime::describe;
use wtrace_traces::{Event, Frame, SourceLocation};

use super::{Styles, pane_block};
use crate::app::{App, ModuleState, Pane, disassembly_index, position_label};

/// A backtrace line for frame `index`, as Wasmtime writes one, with `file:line` when known.
pub(super) fn frame_text(app: &App, index: usize, frame: &Frame) -> String {
    let module = app.trace.header().run.modules.first().map_or("<module>", |m| m.name.as_str());
    describe::frame_line(index, frame, module, app.module_info().map(AsRef::as_ref))
}

pub(super) fn frames(app: &App, frame: &mut TermFrame<'_>, area: Rect) {
    let styles = Styles::of(app.theme);
    let event = app.selected_event();
    let shown = app.shown_frames();
    let extra =
        app.debug_stop().map(|v| format!("debug stop {}", position_label(&v.stop))).unwrap_or_default();
    let lines: Vec<Line<'_>> = if shown.is_empty() {
        let why = match event.as_deref() {
            _ if app.debug_stop().is_some() => "the debug stop has no Wasm frames",
            Some(Event::Trap(_)) => "the trap has no Wasm frames",
            Some(Event::HostCall(_)) => {
                "a host call: the trace records no Wasm stack here (s: debug from here)"
            }
            _ => "no Wasm stack at this event",
        };
        vec![Line::styled(why, styles.dim())]
    } else {
        shown
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let style = if i == app.frame { styles.selected() } else { Style::new() };
                Line::styled(frame_text(app, i, f), style)
            })
            .collect()
    };
    let scroll = (app.frame as u16).saturating_sub(area.height.saturating_sub(3));
    frame.render_widget(
        Paragraph::new(lines).scroll((scroll, 0)).block(pane_block(app, Pane::Frames, &extra)),
        area,
    );
}

pub(super) fn code(app: &App, frame: &mut TermFrame<'_>, area: Rect) {
    let styles = Styles::of(app.theme);
    let rows = usize::from(area.height.saturating_sub(2));
    let event = app.selected_event();
    let target = app.shown_frames().get(app.frame).cloned();
    let (extra, lines) = match (&target, &app.module) {
        (None, _) => (String::new(), vec![Line::styled(no_code_reason(event.as_deref()), styles.dim())]),
        (Some(_), ModuleState::Loading) => {
            (String::new(), vec![Line::styled("loading the module…", styles.dim())])
        }
        (Some(f), ModuleState::Failed(error)) if f.module_offset.is_some() => {
            (String::new(), vec![Line::styled(format!("no module to show: {error}"), styles.notice())])
        }
        (Some(f), _) => match app.source_of(f) {
            Some((loc, text)) => source_lines(app, &styles, &loc, &text, rows),
            None => disassembly_lines(app, &styles, f, rows),
        },
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
    let cursor = (at as i64 + app.code_offset).clamp(0, text.len().saturating_sub(1) as i64) as usize;
    let start = cursor.saturating_sub(rows / 2);
    let digits = (start + rows).to_string().len();
    // The lines that hold a breakpoint, from the breakpoints' own locations.
    let breakpoint_lines: Vec<u32> = app
        .module_info()
        .map(|info| {
            app.debug
                .breakpoints
                .iter()
                .filter_map(|pc| info.location(*pc))
                .filter(|l| l.file == loc.file)
                .map(|l| l.line)
                .collect()
        })
        .unwrap_or_default();
    let lines = text
        .iter()
        .enumerate()
        .skip(start)
        .take(rows)
        .map(|(i, line)| {
            let current = i == at;
            let marker = if current { "->" } else { "  " };
            let mut style = if current { styles.current() } else { Style::new() };
            if i == cursor && app.code_offset != 0 {
                style = style.patch(styles.selected());
            }
            let mark = if breakpoint_lines.contains(&(i as u32 + 1)) { "●" } else { " " };
            Line::from(vec![
                Span::styled(
                    format!("{marker}{:>digits$}", i + 1),
                    if current { style } else { styles.dim() },
                ),
                Span::styled(mark, styles.trap()),
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
    let why = if app.code_view == crate::app::CodeView::Disassembly {
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
    let at = disassembly_index(listing, pc);
    let cursor = (at as i64 + app.code_offset).clamp(0, listing.len().saturating_sub(1) as i64) as usize;
    let start = cursor.saturating_sub(rows / 2);
    let lines = listing
        .iter()
        .enumerate()
        .skip(start)
        .take(rows)
        .map(|(i, line)| {
            let current = i == at;
            let offset = line.offset.map_or_else(|| "        ".to_owned(), |o| format!("{o:>#8x}"));
            let mut style = if current { styles.current() } else { Style::new() };
            if i == cursor && app.code_offset != 0 {
                style = style.patch(styles.selected());
            }
            let mark =
                if line.offset.is_some_and(|o| app.debug.breakpoints.contains(&o)) { "●" } else { " " };
            Line::from(vec![
                Span::styled(if current { "->" } else { "  " }, style),
                Span::styled(mark, styles.trap()),
                Span::styled(format!("{offset}  "), if current { style } else { styles.dim() }),
                Span::styled(line.text.clone(), style),
            ])
        })
        .collect();
    (extra, lines)
}
