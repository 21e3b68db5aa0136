//! `wtrace info`: what a trace holds, read from its header and index only.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;
use wtrace::traces::{Completeness, EventKind, ModuleEntry, ModuleStore, Trace};

use super::{CliError, open_trace, output, trace_dir};

/// The `wtrace info` command line.
#[derive(Debug, clap::Args)]
pub(crate) struct InfoArgs {
    /// The trace file, or `latest`.
    trace: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: &InfoArgs) -> Result<(), CliError> {
    let path = &trace_dir::resolve(&args.trace)?;
    let as_json = args.json;
    let trace = open_trace(path)?;
    let mut out = output::stdout();
    let written = if as_json {
        serde_json::to_writer_pretty(&mut out, &summary_json(&trace))
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"))
    } else {
        write_text(&mut out, path, &trace)
    };
    written.map_err(|e| CliError::from_output(&e))?;
    output::finish(out)
}

struct Sizes {
    file: u64,
    compressed: u64,
    decompressed: u64,
}

fn sizes(trace: &Trace) -> Sizes {
    let frames = trace.frames();
    Sizes {
        file: trace.file_len(),
        compressed: frames.iter().map(|f| u64::from(f.compressed_len)).sum(),
        decompressed: frames.iter().map(|f| u64::from(f.content_len)).sum(),
    }
}

fn status(trace: &Trace) -> String {
    match trace.completeness() {
        Completeness::Complete => "complete".into(),
        Completeness::Recovered { index_problem, stopped_at, scan_stop } => {
            let stop = scan_stop
                .as_ref()
                .map_or_else(String::new, |why| format!("; scan stopped at byte {stopped_at}: {why}"));
            format!("incomplete trace: {} events recovered ({index_problem}{stop})", trace.len())
        }
    }
}

fn write_text(out: &mut impl Write, path: &Path, trace: &Trace) -> std::io::Result<()> {
    let header = trace.header();
    let run = &header.run;
    let sizes = sizes(trace);
    writeln!(out, "trace:      {}", path.display())?;
    writeln!(out, "status:     {}", status(trace))?;
    writeln!(out, "format:     {} (written by wtrace {})", header.format, header.writer)?;
    writeln!(out, "recorded:   {}", format_utc(run.created_unix_ms))?;
    writeln!(out, "wasmtime:   {}", or_unknown(&run.wasmtime_version))?;
    writeln!(out, "target:     {}", or_unknown(&run.target))?;
    let settings: Vec<String> = run.engine_config.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if settings.is_empty() {
        writeln!(out, "engine:     (not recorded)")?;
    } else {
        writeln!(out, "engine:     {} ({})", header.engine_fingerprint(), settings.join(", "))?;
    }
    writeln!(out, "command:    {}", run.command_line.join(" "))?;
    writeln!(out, "args:       {}", run.args.join(" "))?;
    if let Some(invoke) = &run.invoke {
        writeln!(out, "invoke:     {invoke}")?;
    }
    let redacted = run.env.iter().filter(|v| v.value.is_none()).count();
    let names: Vec<&str> = run.env.iter().map(|v| v.name.as_str()).collect();
    if names.is_empty() {
        writeln!(out, "env:        (empty)")?;
    } else {
        writeln!(out, "env:        {} ({} variables, {redacted} redacted)", names.join(" "), run.env.len())?;
    }
    for preopen in &run.preopens {
        writeln!(out, "preopen:    {} -> {}", preopen.host, preopen.guest)?;
    }
    for (i, module) in run.modules.iter().enumerate() {
        writeln!(
            out,
            "module {i}:   {} ({} bytes, sha256 {}, {})",
            module.name,
            module.size,
            module.sha256_hex(),
            module_place(trace, module).describe()
        )?;
    }
    writeln!(out, "imports:    {}", run.imports.len())?;
    let generic: Vec<String> = generic_imports(run).map(ToString::to_string).collect();
    if !generic.is_empty() {
        writeln!(
            out,
            "capture:    {} recorded by the generic memory diff (no write-set table): {}",
            generic.len(),
            generic.join(", ")
        )?;
    }
    let counts = trace.kind_counts();
    let by_kind: Vec<String> =
        EventKind::ALL.iter().map(|k| format!("{} {}", k.name(), counts[k.index()])).collect();
    writeln!(out, "events:     {} ({})", trace.len(), by_kind.join(", "))?;
    writeln!(
        out,
        "size:       {} file; {} of events in {} data frame(s), {} compressed ({:.1}x, {:.2} bytes/event)",
        bytes(sizes.file),
        bytes(sizes.decompressed),
        trace.frames().len(),
        bytes(sizes.compressed),
        ratio(sizes.decompressed, sizes.compressed),
        ratio(sizes.compressed, trace.len()),
    )
}

fn summary_json(trace: &Trace) -> serde_json::Value {
    let header = trace.header();
    let run = &header.run;
    let sizes = sizes(trace);
    let counts = trace.kind_counts();
    let by_kind: serde_json::Map<String, serde_json::Value> =
        EventKind::ALL.iter().map(|k| (k.name().to_string(), json!(counts[k.index()]))).collect();
    json!({
        "complete": matches!(trace.completeness(), Completeness::Complete),
        "status": status(trace),
        "format": header.format.to_string(),
        "writer": header.writer,
        "created_unix_ms": run.created_unix_ms,
        "wasmtime_version": run.wasmtime_version,
        "target": run.target,
        "engine_fingerprint": header.engine_fingerprint(),
        "engine_config": run.engine_config.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "command_line": run.command_line,
        "args": run.args,
        "invoke": run.invoke,
        "env": run.env.iter().map(|v| json!({"name": v.name, "value": v.value})).collect::<Vec<_>>(),
        "preopens": run.preopens.iter().map(|p| json!({"host": p.host, "guest": p.guest})).collect::<Vec<_>>(),
        "modules": run.modules.iter().map(|m| {
            let place = module_place(trace, m);
            json!({"name": m.name, "size": m.size, "sha256": m.sha256_hex(), "embedded": m.embedded, "stored": place.name(), "store": place.store()})
        }).collect::<Vec<_>>(),
        "self_contained": run.modules.iter().all(|m| m.embedded),
        "imports": run.imports.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "generic_capture": generic_imports(run).map(ToString::to_string).collect::<Vec<_>>(),
        "events": trace.len(),
        "events_by_kind": by_kind,
        "file_bytes": sizes.file,
        "data_frames": trace.frames().len(),
        "compressed_bytes": sizes.compressed,
        "decompressed_bytes": sizes.decompressed,
    })
}

/// Where a trace's module is: in the trace, in the module store beside it, or nowhere here.
enum ModulePlace {
    Embedded,
    Stored(PathBuf),
    Missing(PathBuf),
}

impl ModulePlace {
    fn describe(&self) -> String {
        match self {
            ModulePlace::Embedded => "embedded".into(),
            ModulePlace::Stored(store) => format!("referenced, in the module store {}", store.display()),
            ModulePlace::Missing(store) => {
                format!("referenced, MISSING from {}: replay needs --module PATH", store.display())
            }
        }
    }

    fn name(&self) -> &'static str {
        match self {
            ModulePlace::Embedded => "embedded",
            ModulePlace::Stored(_) => "store",
            ModulePlace::Missing(_) => "missing",
        }
    }

    fn store(&self) -> Option<String> {
        match self {
            ModulePlace::Embedded => None,
            ModulePlace::Stored(store) | ModulePlace::Missing(store) => Some(store.display().to_string()),
        }
    }
}

fn module_place(trace: &Trace, module: &ModuleEntry) -> ModulePlace {
    if module.embedded {
        return ModulePlace::Embedded;
    }
    let store = ModuleStore::beside(trace.path().unwrap_or(Path::new("trace")));
    if store.contains(&module.sha256) {
        ModulePlace::Stored(store.dir().to_path_buf())
    } else {
        ModulePlace::Missing(store.dir().to_path_buf())
    }
}

fn or_unknown(text: &str) -> &str {
    if text.is_empty() { "(unknown)" } else { text }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// Formats milliseconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC`.
fn format_utc(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm), valid for the whole u64 range we store.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Imports the recorder has no write-set table for: every host function outside WASI preview 1
/// is recorded by diffing all of linear memory around the call.
fn generic_imports(run: &wtrace::traces::RunInfo) -> impl Iterator<Item = &wtrace::traces::ImportName> {
    run.imports.iter().filter(|i| !wtrace::runtime::wasi::is_wasi(i))
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::format_utc(1_795_542_506_000), "2026-11-24 17:48:26 UTC");
        assert_eq!(super::format_utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
    }
}
