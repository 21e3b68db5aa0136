//! The Details pane: everything the trace holds about the selected event — a host call's
//! arguments decoded by the WASI table, its outcome, the values it wrote out and the bytes it
//! wrote and read; a trap's code, message, fault address and frames; an exit's status.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use wtrace_runtime::describe;
use wtrace_traces::display::quote_bytes;
use wtrace_traces::{Event, MemoryBytes};

use super::{Styles, hex_line, pane_block};
use crate::app::{App, Pane};

pub(super) fn details(app: &App, frame: &mut Frame<'_>, area: Rect) {
    let styles = Styles::of(app.theme);
    let lines = match app.selected_event() {
        Some(event) => lines(app, &styles, &event),
        None => vec![Line::styled("no event selected", styles.dim())],
    };
    let block = pane_block(app, Pane::Details, &format!("event {}", app.selected));
    let scroll = app.scroll_of(Pane::Details).min(lines.len().saturating_sub(1) as u16);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).scroll((scroll, 0)).block(block),
        area,
    );
}

fn field(styles: &Styles, name: &str, value: String) -> Line<'static> {
    Line::from(vec![Span::styled(format!("  {name:<12} "), styles.label()), Span::raw(value)])
}

fn lines(app: &App, styles: &Styles, event: &Event) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    match event {
        Event::HostCall(call) => {
            let imports = app.store.borrow().imports().clone();
            let d = describe::call(&imports, call);
            let import = imports.get(call.import.0 as usize).map_or_else(String::new, ToString::to_string);
            out.push(Line::styled(
                format!("host call {import}"),
                ratatui::style::Style::new().add_modifier(ratatui::style::Modifier::BOLD),
            ));
            for (name, value) in &d.args {
                out.push(field(styles, name, value.clone()));
            }
            let outcome_style = if d.failed { styles.failed() } else { ratatui::style::Style::new() };
            out.push(Line::from(vec![
                Span::styled("  outcome      ", styles.label()),
                Span::styled(d.outcome.clone(), outcome_style),
            ]));
            for (name, value) in &d.outs {
                out.push(field(styles, &format!("→ {name}"), value.clone()));
            }
            spans(&mut out, styles, "written to memory", &d.writes);
            spans(&mut out, styles, "read from memory", &d.reads);
        }
        Event::Trap(trap) => {
            out.push(Line::styled(format!("trap: {}", trap.code.name()), styles.trap()));
            out.push(field(styles, "message", trap.message.clone()));
            if let Some(address) = trap.wasm_fault_address {
                let size =
                    trap.memory_size.map_or_else(String::new, |s| format!(" (memory is {s:#x} bytes)"));
                out.push(field(styles, "fault at", format!("{address:#x}{size}")));
            }
            match &trap.native {
                wtrace_traces::NativeCapture::Captured(s) => out.push(field(
                    styles,
                    "native",
                    format!("{} {} (si_code {}), pc {:#x}", s.arch.name(), s.signal.name(), s.si_code, s.pc),
                )),
                wtrace_traces::NativeCapture::Missing(reason) => {
                    out.push(field(styles, "native", reason.describe()));
                }
            }
            out.push(Line::raw(""));
            out.push(Line::styled("backtrace (4 Frames, 3 Code):", styles.label()));
            for (i, f) in trap.frames.iter().enumerate() {
                out.push(Line::raw(format!("  {}", super::code::frame_text(app, i, f))));
            }
        }
        Event::Exit { code } => {
            out.push(Line::styled(format!("the guest exited with status {code}"), styles.end()));
        }
        Event::Returned { values } => {
            let values: Vec<String> = values.iter().map(ToString::to_string).collect();
            out.push(Line::styled(
                format!("the invoked function returned [{}]", values.join(", ")),
                styles.end(),
            ));
        }
        Event::Interrupted(interruption) => {
            out.push(Line::styled(
                format!("the recording was interrupted by {}", interruption.cause_name()),
                styles.trap(),
            ));
            let imports = app.store.borrow().imports().clone();
            let doing = match interruption.in_host_call.and_then(|i| imports.get(i.0 as usize)) {
                Some(import) => format!("waiting in a call of {import} (not recorded: it never returned)"),
                None => "running Wasm code".into(),
            };
            out.push(field(styles, "guest was", doing));
            out.push(field(styles, "after", format!("{} ms since the event before", interruption.after_ms)));
            out.push(Line::raw(""));
            out.push(Line::styled("backtrace (4 Frames, 3 Code):", styles.label()));
            for (i, f) in interruption.frames.iter().enumerate() {
                out.push(Line::raw(format!("  {}", super::code::frame_text(app, i, f))));
            }
        }
    }
    out
}

fn spans(
    out: &mut Vec<Line<'static>>,
    styles: &Styles,
    title: &str,
    spans: &[(Option<&'static str>, MemoryBytes)],
) {
    if spans.is_empty() {
        return;
    }
    out.push(Line::raw(""));
    let total: usize = spans.iter().map(|(_, s)| s.bytes.len()).sum();
    out.push(Line::styled(format!("{title}: {total} bytes in {} span(s)", spans.len()), styles.label()));
    for (name, span) in spans.iter().take(32) {
        let name = name.map(|n| format!(" ({n})")).unwrap_or_default();
        out.push(Line::raw(format!(
            "  {:#x}{name}: {} bytes {}",
            span.offset,
            span.bytes.len(),
            quote_bytes(&span.bytes, 48)
        )));
        for (row, chunk) in span.bytes.chunks(16).take(4).enumerate() {
            out.push(hex_line(styles, span.offset + row as u64 * 16, chunk, None, 16));
        }
        if span.bytes.len() > 64 {
            out.push(Line::styled(
                format!("    … {} more bytes (6 Memory shows them all)", span.bytes.len() - 64),
                styles.dim(),
            ));
        }
    }
}
