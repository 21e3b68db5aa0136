//! `wtrace dump`: one line per event, as text or JSON lines.

use std::io::Write;
use std::path::PathBuf;

use wtrace::runtime::describe;
use wtrace::runtime::introspect::ModuleInfo;
use wtrace::traces::Event;
use wtrace::traces::display::EventLine;

use super::{CliError, json, open_trace, output, trace_dir};

/// An inclusive range of event seqs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SeqRange {
    pub(crate) first: u64,
    pub(crate) last: u64,
}

/// Parses `N`, `N-M`, `N-`, `N-end` and `end` against a trace of `len` events.
pub(crate) fn parse_range(text: &str, len: u64) -> Result<SeqRange, CliError> {
    let bad = || CliError::usage(format!("invalid event range `{text}`: use N, N-M, N-, N-end or end"));
    let last_event =
        || len.checked_sub(1).ok_or_else(|| CliError::usage("the trace has no events, so `end` names none"));
    let number = |part: &str| -> Result<u64, CliError> {
        match part.trim() {
            "end" => last_event(),
            digits => digits.parse::<u64>().map_err(|_| bad()),
        }
    };
    let range = match text.split_once('-') {
        None => {
            let n = number(text)?;
            SeqRange { first: n, last: n }
        }
        Some((first, "")) => SeqRange { first: number(first)?, last: last_event()? },
        Some((first, last)) => SeqRange { first: number(first)?, last: number(last)? },
    };
    if range.first > range.last {
        return Err(CliError::usage(format!("event range `{text}` is backwards")));
    }
    if range.first >= len {
        return Err(CliError::usage(format!(
            "event {} does not exist: the trace has {len} events (0..{len})",
            range.first
        )));
    }
    Ok(SeqRange { first: range.first, last: range.last.min(len - 1) })
}

/// The `wtrace dump` command line.
#[derive(Debug, clap::Args)]
pub(crate) struct DumpArgs {
    /// The trace file, or `latest`.
    trace: PathBuf,
    /// Which events: `N`, `N-M` (inclusive), `N-` or `N-end`, `end` (the last); all by default.
    range: Option<String>,
    /// Print JSON lines (one object per event) instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: &DumpArgs) -> Result<(), CliError> {
    let path = &trace_dir::resolve(&args.trace)?;
    let (range, as_json) = (args.range.as_deref(), args.json);
    let trace = open_trace(path)?;
    let range = match range {
        Some(text) => parse_range(text, trace.len())?,
        None if trace.is_empty() => return Ok(()),
        None => SeqRange { first: 0, last: trace.len() - 1 },
    };
    let header = trace.header();
    // Read when the first trap is printed, for function names and `file:line`.
    let mut module: Option<Option<ModuleInfo>> = None;
    let module_name = header.run.modules.first().map_or("<module>", |m| m.name.as_str());
    let mut out = output::stdout();
    let mut events = trace.range(range.first..=range.last);
    let mut event = Event::Exit { code: 0 };
    while let Some(seq) = events.next_into(&mut event) {
        let seq = seq.map_err(|e| CliError::from_trace(&e, path))?;
        let info = match &event {
            Event::Trap(_) => module
                .get_or_insert_with(|| trace.module_bytes(0).ok().and_then(|b| ModuleInfo::parse(b).ok()))
                .as_ref(),
            _ => None,
        };
        let written = if as_json {
            serde_json::to_writer(&mut out, &json::event(header, seq, &event, info))
                .map_err(std::io::Error::from)
                .and_then(|()| out.write_all(b"\n"))
        } else {
            writeln!(out, "{}", EventLine { header, seq, event: &event }).and_then(|()| match &event {
                Event::Trap(trap) => trap.frames.iter().enumerate().try_for_each(|(i, frame)| {
                    writeln!(out, "    {}", describe::frame_line(i, frame, module_name, info))
                }),
                _ => Ok(()),
            })
        };
        written.map_err(|e| CliError::from_output(&e))?;
    }
    output::finish(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse() {
        let r = |t| parse_range(t, 100).map(|r| (r.first, r.last)).map_err(|e| e.message);
        assert_eq!(r("5"), Ok((5, 5)));
        assert_eq!(r("5-9"), Ok((5, 9)));
        assert_eq!(r("5-"), Ok((5, 99)));
        assert_eq!(r("5-end"), Ok((5, 99)));
        assert_eq!(r("end"), Ok((99, 99)));
        assert_eq!(r("90-500"), Ok((90, 99)));
        assert!(r("100").unwrap_err().contains("does not exist"));
        assert!(r("9-5").unwrap_err().contains("backwards"));
        assert!(r("x").unwrap_err().contains("invalid event range"));
        assert!(r("-5").is_err());
        assert!(parse_range("end", 0).is_err());
    }
}
