//! `wtrace replay --debug`: a scripted debug replay. Sets breakpoints, runs gdb-style commands
//! (`--ex`) one after another, and prints every stop with its frames (and, asked, their locals
//! and operand stacks), as text or as one JSON object per line.

use std::fmt::Write as _;
use std::io::Write as _;

use serde_json::json;
use wtrace::Trace;
use wtrace::exit_codes;
use wtrace::replayer::debug::{BreakAt, Position, Session, SessionError, SessionOptions, Stop, StopReason};
use wtrace::traces::Value;

use super::{CliError, json as render, output};

/// What `--debug` runs: the breakpoints, the commands, and how stops print.
pub(crate) struct Script<'a> {
    pub breaks: &'a [String],
    pub commands: &'a [String],
    pub print_locals: bool,
    pub json: bool,
    pub max_stops: Option<u64>,
}

/// A command of `--ex`, as gdb names it (short forms too).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Command {
    Continue,
    Step,
    Next,
    Finish,
    ReverseStep,
    ReverseNext,
    ReverseFinish,
    ReverseContinue,
    Break(BreakAt),
    Delete,
    Watch { address: u64, len: u64 },
    ReverseWatch { address: u64, len: u64 },
    Goto(Position),
    RunTo(u64),
    Backtrace,
    Locals,
    Memory { address: u64, len: u64 },
    Globals,
}

/// The commands, for `--help` and for the error on an unknown one.
pub(crate) const COMMANDS: &str = "continue (c), step (s), next (n), finish, reverse-step (rs), \
    reverse-next (rn), reverse-finish, reverse-continue (rc), break PLACE (b), delete, \
    watch ADDR[:LEN], reverse-watch ADDR[:LEN], goto SEQ[+STEPS], run-to SEQ, backtrace (bt), \
    locals, x ADDR[:LEN], globals";

fn number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// `ADDR[:LEN]`, the length 4 when left out.
fn range(text: &str) -> Option<(u64, u64)> {
    match text.split_once(':') {
        Some((address, len)) => Some((number(address)?, number(len)?)),
        None => Some((number(text)?, 4)),
    }
}

impl std::str::FromStr for Command {
    type Err = String;

    fn from_str(text: &str) -> Result<Command, String> {
        let text = text.trim();
        let (word, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        let rest = rest.trim();
        let bad = || format!("`{text}`: expected {word} {}", usage(word));
        let command = match word {
            "continue" | "c" => Command::Continue,
            "step" | "s" => Command::Step,
            "next" | "n" => Command::Next,
            "finish" => Command::Finish,
            "reverse-step" | "rs" => Command::ReverseStep,
            "reverse-next" | "rn" => Command::ReverseNext,
            "reverse-finish" => Command::ReverseFinish,
            "reverse-continue" | "rc" => Command::ReverseContinue,
            "break" | "b" => Command::Break(rest.parse()?),
            "delete" => Command::Delete,
            "watch" => range(rest).map(|(address, len)| Command::Watch { address, len }).ok_or_else(bad)?,
            "reverse-watch" => {
                range(rest).map(|(address, len)| Command::ReverseWatch { address, len }).ok_or_else(bad)?
            }
            "goto" => {
                let (seq, steps) = rest.split_once('+').unwrap_or((rest, "0"));
                let position = number(seq).zip(number(steps)).map(|(seq, steps)| Position { seq, steps });
                Command::Goto(position.ok_or_else(bad)?)
            }
            "run-to" => Command::RunTo(number(rest).ok_or_else(bad)?),
            "backtrace" | "bt" => Command::Backtrace,
            "locals" => Command::Locals,
            "x" => range(rest).map(|(address, len)| Command::Memory { address, len }).ok_or_else(bad)?,
            "globals" => Command::Globals,
            _ => return Err(format!("unknown command `{text}`; the commands: {COMMANDS}")),
        };
        Ok(command)
    }
}

fn usage(word: &str) -> &'static str {
    match word {
        "watch" | "reverse-watch" | "x" => "ADDR[:LEN] (a number, or 0x hex)",
        "goto" => "SEQ[+STEPS]",
        _ => "SEQ",
    }
}

/// Runs the script on `trace`; returns the exit status.
pub(crate) fn run(
    trace: &Trace,
    trace_name: &str,
    options: &SessionOptions,
    script: &Script<'_>,
) -> Result<i32, CliError> {
    let commands: Vec<Command> = script
        .commands
        .iter()
        .map(|c| c.parse::<Command>().map_err(|e| CliError::usage(format!("--ex {e}"))))
        .collect::<Result<_, _>>()?;
    let breaks: Vec<BreakAt> = script
        .breaks
        .iter()
        .map(|b| b.parse::<BreakAt>().map_err(|e| CliError::usage(format!("--break {e}"))))
        .collect::<Result<_, _>>()?;
    let module_name = trace.header().run.modules.first().map_or_else(String::new, |m| m.name.clone());
    let failed = |e: &SessionError| session_error(e, trace_name, &module_name);
    let mut session = Session::open(trace, options).map_err(|e| failed(&e))?;
    let mut printer = Printer {
        module_name: module_name.clone(),
        print_locals: script.print_locals,
        json: script.json,
        stops: 0,
    };
    let mut places = breaks;
    if !places.is_empty() {
        session.set_breakpoints(&places).map_err(|e| failed(&e))?;
    }
    if commands.is_empty() {
        // As a script of `continue`s: every breakpoint hit, then the trap or the end.
        loop {
            let stop = session.continue_().map_err(|e| failed(&e))?.clone();
            printer.stop(&stop)?;
            if !matches!(stop.reason, StopReason::Breakpoint { .. })
                || script.max_stops.is_some_and(|max| printer.stops >= max)
            {
                break;
            }
        }
    } else {
        for command in &commands {
            execute(&mut session, command, &mut places, &mut printer)
                .map_err(|e| e.unwrap_or_else(|e| failed(&e)))?;
        }
    }
    Ok(match &session.stop().reason {
        StopReason::Diverged(_) => exit_codes::DIVERGED,
        _ => exit_codes::SUCCESS,
    })
}

/// Why a command failed: the session could not do it, or its output could not be written.
type Failed = Result<CliError, SessionError>;

fn printed(result: Result<(), CliError>) -> Result<(), Failed> {
    result.map_err(Ok)
}

/// Runs one command and prints what it shows.
fn execute(
    session: &mut Session,
    command: &Command,
    places: &mut Vec<BreakAt>,
    printer: &mut Printer,
) -> Result<(), Failed> {
    let stop = match command {
        Command::Continue => session.continue_().map_err(Err)?.clone(),
        Command::Step => session.step().map_err(Err)?.clone(),
        Command::Next => session.step_over().map_err(Err)?.clone(),
        Command::Finish => session.step_out().map_err(Err)?.clone(),
        Command::ReverseStep => session.step_back().map_err(Err)?.clone(),
        Command::ReverseNext => session.step_over_back().map_err(Err)?.clone(),
        Command::ReverseFinish => session.step_out_back().map_err(Err)?.clone(),
        Command::ReverseContinue => session.reverse_continue().map_err(Err)?.clone(),
        Command::Watch { address, len } => session.watch(*address, *len).continue_().map_err(Err)?.clone(),
        Command::ReverseWatch { address, len } => {
            session.watch(*address, *len).reverse_continue().map_err(Err)?.clone()
        }
        Command::Goto(position) => session.goto(*position).map_err(Err)?.clone(),
        Command::RunTo(seq) => session.run_to(*seq).map_err(Err)?.clone(),
        Command::Break(place) => {
            places.push(place.clone());
            session.set_breakpoints(places).map_err(Err)?;
            let pcs: Vec<String> =
                session.resolve(place).map_err(Err)?.iter().map(|pc| format!("{pc:#x}")).collect();
            return printed(
                printer.line(&format!("breakpoint at {}", pcs.join(", ")), &json!({"breakpoints": pcs})),
            );
        }
        Command::Delete => {
            places.clear();
            session.set_breakpoints(places).map_err(Err)?;
            return printed(printer.line("breakpoints deleted", &json!({"breakpoints": []})));
        }
        Command::Backtrace | Command::Locals => {
            let stop = session.stop().clone();
            let locals = printer.print_locals;
            printer.print_locals = *command == Command::Locals;
            let shown = printer.frames(&stop);
            printer.print_locals = locals;
            return printed(shown);
        }
        Command::Memory { address, len } => {
            let bytes = session.read_memory(*address, *len).map_err(Err)?;
            let text = match &bytes {
                Some(bytes) => format!("{address:#x}: {}", hex(bytes)),
                None => format!("{address:#x}: past the end of memory"),
            };
            return printed(
                printer.line(&text, &json!({"address": address, "bytes": bytes.as_deref().map(hex)})),
            );
        }
        Command::Globals => {
            let globals = session.globals().map_err(Err)?;
            let text: Vec<String> =
                globals.iter().enumerate().map(|(i, v)| format!("{i}: {}", typed(v))).collect();
            let values: Vec<_> = globals.iter().map(render::value).collect();
            return printed(
                printer.line(&format!("globals: {}", text.join(", ")), &json!({"globals": values})),
            );
        }
    };
    printed(printer.stop(&stop))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

fn typed(value: &Value) -> String {
    format!("{} {value}", value.type_name())
}

/// Prints stops and answers, as text or JSON lines.
struct Printer {
    module_name: String,
    print_locals: bool,
    json: bool,
    stops: u64,
}

impl Printer {
    fn line(&self, text: &str, json: &serde_json::Value) -> Result<(), CliError> {
        if self.json { emit(json) } else { output::print_stdout(&format!("{text}\n")) }
    }

    fn stop(&mut self, stop: &Stop) -> Result<(), CliError> {
        self.stops += 1;
        if self.json {
            return emit(&self.stop_json(stop));
        }
        let at = if stop.exact { stop.position.to_string() } else { format!("{}+?", stop.position.seq) };
        let mut text = format!("stop {} at {at}: {}", self.stops, stop.reason);
        if let Some(recorded) = stop.recorded_depth {
            let _ = write!(
                text,
                "\n  note: this replay overflowed at depth {}, the recording at {recorded}; debug code uses more \
                 stack per frame, a plain replay reproduces the recorded depth",
                stop.depth
            );
        }
        text.push('\n');
        text.push_str(&self.frames_text(stop));
        output::print_stdout(&text)
    }

    fn frames(&self, stop: &Stop) -> Result<(), CliError> {
        if self.json {
            return emit(&json!({"frames": self.frames_json(stop)}));
        }
        output::print_stdout(&self.frames_text(stop))
    }

    /// Wasmtime's backtrace format, with `file:line` and, asked, locals and stack.
    fn frames_text(&self, stop: &Stop) -> String {
        let mut text = String::new();
        for (i, frame) in stop.frames.iter().enumerate() {
            let name = frame.name.clone().unwrap_or_else(|| format!("<wasm function {}>", frame.func_index));
            let _ = write!(text, "{i:>5}: {:>#8x} - {}!{name}", frame.pc, self.module_name);
            if let Some(source) = &frame.source {
                let _ = write!(text, " at {}:{}", source.file, source.line);
            }
            text.push('\n');
            if self.print_locals {
                let values = |vs: &[Value]| vs.iter().map(typed).collect::<Vec<_>>().join(", ");
                let _ = writeln!(text, "         locals: [{}]", values(&frame.locals));
                let _ = writeln!(text, "         stack:  [{}]", values(&frame.stack));
            }
        }
        if stop.frames.len() < stop.depth {
            let _ = writeln!(text, "  ... {} more frames", stop.depth - stop.frames.len());
        }
        text
    }

    fn frames_json(&self, stop: &Stop) -> Vec<serde_json::Value> {
        stop.frames
            .iter()
            .map(|f| {
                let mut frame = json!({
                    "func_index": f.func_index,
                    "func_name": f.name,
                    "pc": f.pc,
                    "file": f.source.as_ref().map(|s| s.file.clone()),
                    "line": f.source.as_ref().map(|s| s.line),
                });
                if self.print_locals {
                    frame["locals"] = f.locals.iter().map(render::value).collect();
                    frame["stack"] = f.stack.iter().map(render::value).collect();
                }
                frame
            })
            .collect()
    }

    fn stop_json(&self, stop: &Stop) -> serde_json::Value {
        let reason = match &stop.reason {
            StopReason::Start => json!({"kind": "start"}),
            StopReason::Step => json!({"kind": "step"}),
            StopReason::Breakpoint { pc } => json!({"kind": "breakpoint", "pc": pc}),
            StopReason::HostCall { seq } => json!({"kind": "host_call", "seq": seq}),
            StopReason::Trap(code) => json!({"kind": "trap", "code": code.name()}),
            StopReason::Watch { address, old, new, by_host_call } => json!({
                "kind": "watch", "address": address, "old": hex(old), "new": hex(new),
                "by_host_call": by_host_call, "writer_pc": stop.writer_pc,
            }),
            StopReason::LastChange { address, old, new, by_host_call } => json!({
                "kind": "last_change", "address": address, "old": hex(old), "new": hex(new),
                "by_host_call": by_host_call, "writer_pc": stop.writer_pc,
            }),
            StopReason::End(end) => {
                json!({"kind": "end", "describe": end.describe(), "status": end.exit_status()})
            }
            StopReason::Diverged(why) => json!({"kind": "diverged", "why": why}),
        };
        json!({
            "stop": self.stops,
            "position": {"seq": stop.position.seq, "steps": stop.exact.then_some(stop.position.steps)},
            "reason": reason,
            "depth": stop.depth,
            "recorded_depth": stop.recorded_depth.map(|d| d.to_string()),
            "frames": self.frames_json(stop),
        })
    }
}

fn emit(value: &serde_json::Value) -> Result<(), CliError> {
    let mut out = output::stdout();
    serde_json::to_writer(&mut out, value).map_err(|e| CliError::internal(e.to_string()))?;
    let _ = out.write_all(b"\n");
    output::finish(out)
}

fn session_error(error: &SessionError, trace: &str, module: &str) -> CliError {
    match error {
        SessionError::Replay(replay) => super::replay::replay_error(replay, std::path::Path::new(trace), module),
        SessionError::NoSuchPlace(place) => CliError::new(
            exit_codes::USAGE,
            format!("no breakpoint can be set at {place}"),
            Some("name a function (its name or index), a Wasm PC (0x1a3) or FILE:LINE from the module's debug info".into()),
        ),
        _ => CliError::internal(format!("debug replay of {trace}: {error}")),
    }
}
