//! The machine's state: the Registers pane (the native snapshot of a trap, flags decoded, the
//! registers that differ from the previous trap's marked, vector registers on request, and a
//! replay's comparison) and the Memory pane (hex and text of the bytes the trace holds at the
//! selected event), with the list of host calls that wrote an address.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use wtrace_traces::{Arch, Event, NativeCapture, NativeSnapshot, RegisterValue};

use super::{Styles, centered, hex_line, pane_block};
use crate::app::{App, Pane, ReplayState};
use crate::worker::Writer;

/// The set flags of a snapshot's flags register, by name; s390x's condition code.
pub(crate) fn decode_flags(arch: Arch, flags: u64) -> String {
    let bits: &[(u32, &str)] = match arch {
        Arch::X86_64 => {
            &[(11, "OF"), (10, "DF"), (9, "IF"), (7, "SF"), (6, "ZF"), (4, "AF"), (2, "PF"), (0, "CF")]
        }
        Arch::Aarch64 => &[(31, "N"), (30, "Z"), (29, "C"), (28, "V")],
        // PSW bits 18–19, counted from the most significant.
        Arch::S390x => return format!("cc {}", (flags >> 44) & 3),
        Arch::Riscv64 => &[],
    };
    let set: Vec<&str> = bits.iter().filter(|(bit, _)| flags & (1 << bit) != 0).map(|(_, n)| *n).collect();
    if set.is_empty() { "none".into() } else { set.join(" ") }
}

pub(super) fn registers(app: &App, frame: &mut Frame<'_>, area: Rect) {
    let styles = Styles::of(app.theme);
    let event = app.selected_event();
    let mut lines = Vec::new();
    let mut extra = String::new();
    match event.as_deref() {
        Some(Event::Trap(trap)) => match &trap.native {
            NativeCapture::Captured(snapshot) => {
                let previous = app.previous_trap().and_then(|e| match &*e {
                    Event::Trap(t) => match &t.native {
                        NativeCapture::Captured(s) => Some(s.clone()),
                        NativeCapture::Missing(_) => None,
                    },
                    _ => None,
                });
                extra = if previous.is_some() {
                    "* changed since the previous trap".into()
                } else {
                    String::new()
                };
                snapshot_lines(
                    app,
                    &styles,
                    snapshot,
                    previous.as_deref(),
                    usize::from(area.width.saturating_sub(2)),
                    &mut lines,
                );
            }
            NativeCapture::Missing(reason) => {
                lines.push(Line::styled(format!("no native snapshot: {}", reason.describe()), styles.dim()));
            }
        },
        _ => lines.push(Line::styled(
            "native registers are recorded at traps; t jumps to the next one",
            styles.dim(),
        )),
    }
    match &app.replay {
        ReplayState::Idle => {}
        ReplayState::Running => lines.push(Line::styled("replaying…", styles.current())),
        ReplayState::Done(Err(error)) => {
            lines.push(Line::styled(format!("replay failed: {error}"), styles.notice()));
        }
        ReplayState::Done(Ok(report)) => {
            lines.push(Line::raw(""));
            lines.push(Line::styled(format!("replay {}", report.outcome), styles.label()));
            if let Some(c) = &report.registers {
                lines.push(Line::raw(format!(
                    "  {} signal, {} Wasm PCs; {} of {} address-independent registers match",
                    if c.same_signal { "same" } else { "different" },
                    if c.same_wasm_pcs { "same" } else { "different" },
                    c.compared - c.differing.len(),
                    c.compared
                )));
                for (name, recorded, replayed) in &c.differing {
                    lines.push(Line::styled(
                        format!("  {name}: recorded {recorded}, replayed {replayed}"),
                        styles.changed(),
                    ));
                }
            }
        }
    }
    let scroll = app.scroll_of(Pane::Registers).min(lines.len().saturating_sub(1) as u16);
    frame.render_widget(
        Paragraph::new(lines).scroll((scroll, 0)).block(pane_block(app, Pane::Registers, &extra)),
        area,
    );
}

fn snapshot_lines(
    app: &App,
    styles: &Styles,
    s: &NativeSnapshot,
    previous: Option<&NativeSnapshot>,
    width: usize,
    lines: &mut Vec<Line<'static>>,
) {
    let [_, _, flags_name] = s.arch.pc_sp_flags_names();
    lines.push(Line::from(vec![
        Span::styled(format!("{} ", s.signal.name()), styles.trap()),
        Span::raw(format!(
            "si_code {}{}",
            s.si_code,
            s.fault_address.map(|a| format!("  fault address {a:#x}")).unwrap_or_default()
        )),
    ]));
    lines.push(Line::raw(format!(
        "pc {:#x}  sp {:#x}  fp {:#x}{}",
        s.pc,
        s.sp,
        s.fp,
        s.wasm_pc.map(|p| format!("  (Wasm PC {p:#x})")).unwrap_or_default()
    )));
    if !flags_name.is_empty() {
        lines.push(Line::raw(format!("{flags_name} {:#x}  [{}]", s.flags, decode_flags(s.arch, s.flags))));
    }
    let before: Vec<(String, RegisterValue)> = previous.map(NativeSnapshot::registers).unwrap_or_default();
    let cell = 27;
    let per_row = (width / cell).max(1);
    let mut row: Vec<Span<'static>> = Vec::new();
    for (name, value) in s.registers() {
        let vector = value.is_vector();
        if vector && !app.vectors {
            continue;
        }
        let changed = before.iter().any(|(n, v)| *n == name && *v != value);
        let mark = if changed { "*" } else { " " };
        let text = format!("{mark}{name:>6} {value}");
        let style = if changed { styles.changed() } else { Style::new() };
        let text = if vector { text } else { format!("{text:<cell$}") };
        if (vector || row.len() >= per_row) && !row.is_empty() {
            lines.push(Line::from(std::mem::take(&mut row)));
        }
        row.push(Span::styled(text, style));
        if vector {
            lines.push(Line::from(std::mem::take(&mut row)));
        }
    }
    if !row.is_empty() {
        lines.push(Line::from(row));
    }
    if !app.vectors {
        let (prefix, count) = s.arch.vector_registers();
        lines.push(Line::styled(format!("{prefix}0–{prefix}{}: x shows them", count - 1), styles.dim()));
    }
}

pub(super) fn memory(app: &App, frame: &mut Frame<'_>, area: Rect) {
    let styles = Styles::of(app.theme);
    let regions = app.memory_regions();
    let cursor = app.memory_cursor.or_else(|| app.memory_start());
    let inner = usize::from(area.width.saturating_sub(2));
    let width = if inner >= 16 * 4 + 14 { 16 } else { 8 };
    let mut lines = Vec::new();
    let mut cursor_line = 0;
    let fault = match app.selected_event().as_deref() {
        Some(Event::Trap(trap)) => trap.wasm_fault_address,
        _ => None,
    };
    for (title, region) in &regions {
        lines.push(Line::styled(
            format!("{title}: {} bytes at {:#x}", region.bytes.len(), region.offset),
            styles.label(),
        ));
        let start = region.offset - region.offset % width as u64;
        let end = region.offset + region.bytes.len() as u64;
        let mut row = start;
        while row < end {
            let bytes: Vec<u8> = (row..row + width as u64)
                .map(|a| {
                    a.checked_sub(region.offset)
                        .and_then(|i| region.bytes.get(i as usize))
                        .copied()
                        .unwrap_or(0)
                })
                .collect();
            let shown = (end - row).min(width as u64) as usize;
            if cursor.is_some_and(|c| (row..row + width as u64).contains(&c)) {
                cursor_line = lines.len();
            }
            let mut line = hex_line(&styles, row, &bytes[..shown.max(1)], cursor, width);
            if fault.is_some_and(|f| (row..row + width as u64).contains(&f)) {
                line.spans.push(Span::styled("  ← fault", styles.trap()));
            }
            lines.push(line);
            row += width as u64;
        }
        if fault.is_some_and(|f| f >= end) {
            lines.push(Line::styled(
                format!("  the fault at {:#x} is past the end of memory", fault.unwrap_or(0)),
                styles.trap(),
            ));
        }
    }
    if regions.is_empty() {
        match app.selected_event().as_deref() {
            Some(Event::Trap(trap)) if trap.wasm_fault_address.is_some() => {
                lines.push(Line::styled(
                    format!(
                        "fault at {:#x}: outside memory ({:#x} bytes)",
                        trap.wasm_fault_address.unwrap_or(0),
                        trap.memory_size.unwrap_or(0)
                    ),
                    styles.trap(),
                ));
            }
            _ => lines.push(Line::styled("this event touched no memory the trace records", styles.dim())),
        }
    }
    let rows = usize::from(area.height.saturating_sub(2));
    let scroll = cursor_line.saturating_sub(rows.saturating_sub(2)) as u16;
    let extra = cursor.map(|c| format!("cursor {c:#x}; w: who wrote it")).unwrap_or_default();
    frame.render_widget(
        Paragraph::new(lines).scroll((scroll, 0)).block(pane_block(app, Pane::Memory, &extra)),
        area,
    );
}

pub(super) fn writers(app: &App, frame: &mut Frame<'_>, address: u64, writers: &[Writer], selected: usize) {
    let styles = Styles::of(app.theme);
    let area = centered(frame.area(), 96, (writers.len() as u16 + 4).min(24));
    let rows = usize::from(area.height.saturating_sub(2));
    let start = selected.saturating_sub(rows.saturating_sub(1));
    let lines: Vec<Line<'_>> = writers
        .iter()
        .enumerate()
        .skip(start)
        .take(rows)
        .map(|(i, w)| {
            let index = usize::try_from(address - w.offset).unwrap_or(0);
            let byte = w.bytes.get(index).map_or_else(String::new, |b| format!(" wrote {b:#04x}"));
            let style = if i == selected { styles.selected() } else { Style::new() };
            Line::styled(format!("{:>8}  {}{byte}", w.seq, w.summary), style)
        })
        .collect();
    frame.render_widget(Clear, area);
    let title = format!(" host calls that wrote {address:#x}, newest first ");
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::new()
                .borders(Borders::ALL)
                .title(title)
                .title_style(Style::new().add_modifier(Modifier::BOLD)),
        ),
        area,
    );
}
