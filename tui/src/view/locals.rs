//! The Locals pane: at a debug stop, the selected frame's locals (named from the name section)
//! and operand stack with their types, values that changed since the previous stop marked;
//! while the debug replay runs, that it does; before the first stop, the keys that start it.

use ratatui::Frame as TermFrame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use wtrace_replayer::debug::{DebugFrame, Stop};
use wtrace_traces::Value;

use super::{Styles, pane_block};
use crate::app::{App, Pane, position_label};

/// The frame of `previous` that is `frame`'s: the same function at the same depth from the
/// outermost frame.
fn same_frame<'a>(previous: &'a Stop, stop: &Stop, index: usize) -> Option<&'a DebugFrame> {
    let from_outermost = stop.frames.len().checked_sub(index + 1)?;
    let at = previous.frames.len().checked_sub(from_outermost + 1)?;
    let frame = previous.frames.get(at)?;
    (frame.func_index == stop.frames[index].func_index).then_some(frame)
}

fn value_line(styles: &Styles, label: &str, value: &Value, before: Option<&Value>) -> Line<'static> {
    let changed = before.is_some_and(|b| b != value);
    let style = if changed { styles.changed() } else { Style::new() };
    Line::from(vec![
        Span::styled(format!("  {label:<14}"), styles.label()),
        Span::styled(format!("{:<5}", value.type_name()), styles.dim()),
        Span::styled(format!("{value}{}", if changed { " *" } else { "" }), style),
    ])
}

pub(super) fn locals(app: &App, frame: &mut TermFrame<'_>, area: Rect) {
    let styles = Styles::of(app.theme);
    let mut lines = Vec::new();
    let mut extra = String::new();
    if let Some((_, what)) = app.debug.running {
        lines.push(Line::styled(format!("replaying… ({what}; Esc cancels)"), styles.current()));
    }
    match (app.debug_stop(), &app.debug.view) {
        (Some(view), _) => {
            let stop = &view.stop;
            extra = format!("stop {}", position_label(stop));
            lines.push(Line::styled(stop.reason.to_string(), styles.label()));
            if let Some(recorded) = stop.recorded_depth {
                lines.push(Line::styled(
                    format!(
                        "this replay overflowed at depth {}, the recording at {recorded}: debug code uses more \
                         stack; a plain replay (r) reproduces the recorded depth",
                        stop.depth
                    ),
                    styles.notice(),
                ));
            }
            match stop.frames.get(app.frame) {
                Some(shown) => {
                    let info = app.module_info();
                    let name =
                        shown.name.clone().unwrap_or_else(|| format!("<wasm function {}>", shown.func_index));
                    lines.push(Line::from(format!("frame {}: {name} at {:#x}", app.frame, shown.pc)));
                    let before = app.debug.previous.as_ref().and_then(|p| same_frame(p, stop, app.frame));
                    lines.push(Line::styled("locals", styles.dim()));
                    if shown.locals.is_empty() {
                        lines.push(Line::styled("  (none)", styles.dim()));
                    }
                    for (i, value) in shown.locals.iter().enumerate() {
                        let name = info.and_then(|m| m.local_name(shown.func_index, i as u32));
                        let label = name.map_or_else(|| i.to_string(), |n| format!("{i} ${n}"));
                        lines.push(value_line(&styles, &label, value, before.and_then(|b| b.locals.get(i))));
                    }
                    lines.push(Line::styled("operand stack (bottom first)", styles.dim()));
                    if shown.stack.is_empty() {
                        lines.push(Line::styled("  (empty)", styles.dim()));
                    }
                    for (i, value) in shown.stack.iter().enumerate() {
                        lines.push(value_line(
                            &styles,
                            &i.to_string(),
                            value,
                            before.and_then(|b| b.stack.get(i)),
                        ));
                    }
                }
                None => lines.push(Line::styled("no Wasm frame here", styles.dim())),
            }
            let stats = &view.checkpoints;
            lines.push(Line::styled(
                format!(
                    "checkpoints: {} holding {:.1} MiB",
                    stats.count,
                    stats.memory.unwrap_or(0) as f64 / f64::from(1 << 20)
                ),
                styles.dim(),
            ));
        }
        (None, Some(view)) => {
            lines.push(Line::styled(
                format!(
                    "the debug replay is stopped at {} (event {}); a debug key goes to the selected event first",
                    position_label(&view.stop),
                    view.stop.position.seq
                ),
                styles.dim(),
            ));
        }
        (None, None) => {
            for text in [
                "debug replay from the selected event:",
                "s step  o over  u out  c continue",
                "(capitals: backwards)",
                "b breakpoint at the Code cursor",
                "W watch the Memory cursor's bytes",
            ] {
                lines.push(Line::styled(text, styles.dim()));
            }
        }
    }
    if let Some((address, len)) = app.debug.watch {
        lines.push(Line::styled(format!("watching {len} bytes at {address:#x}"), styles.label()));
    }
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((app.scroll_of(Pane::Locals), 0))
            .block(pane_block(app, Pane::Locals, &extra)),
        area,
    );
}
