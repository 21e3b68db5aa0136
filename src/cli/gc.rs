//! `wtrace gc`: keep the trace directory bounded — remove traces beyond a count or an age, then
//! the modules of its store that no remaining trace references. The trace `latest` names is
//! always kept.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use wtrace::traces::{ModuleStore, STORE_DIR, Trace};

use super::info::bytes;
use super::{CliError, output, trace_dir};

/// The `wtrace gc` command line.
#[derive(Debug, clap::Args)]
pub(crate) struct GcArgs {
    /// Keep the N newest traces.
    #[arg(long, value_name = "N", default_value_t = 100)]
    keep: usize,
    /// Also remove traces older than this (`30m`, `12h`, `7d`, `2w`).
    #[arg(long, value_name = "AGE", value_parser = super::flags::parse_duration)]
    older_than: Option<Duration>,
    /// Say what would be removed, and remove nothing.
    #[arg(long)]
    dry_run: bool,
}

struct Found {
    path: PathBuf,
    modified: SystemTime,
    len: u64,
}

pub(crate) fn run(args: &GcArgs) -> Result<(), CliError> {
    let dir = trace_dir::dir()?;
    let latest = trace_dir::resolve(Path::new("latest")).ok();
    let mut traces = files(&dir, |p| p.extension().is_some_and(|e| e == "zst"));
    traces.sort_by_key(|t| std::cmp::Reverse(t.modified));
    let now = SystemTime::now();
    let (mut kept, mut removed): (Vec<Found>, Vec<Found>) = (Vec::new(), Vec::new());
    for (i, trace) in traces.into_iter().enumerate() {
        let old =
            args.older_than.is_some_and(|age| now.duration_since(trace.modified).is_ok_and(|d| d > age));
        let is_latest = latest.as_deref().is_some_and(|l| same_file(l, &trace.path));
        if (i >= args.keep || old) && !is_latest { removed.push(trace) } else { kept.push(trace) }
    }
    let referenced: HashSet<String> = kept
        .iter()
        .filter_map(|t| Trace::open(&t.path).ok())
        .flat_map(|t| {
            t.header().run.modules.iter().map(wtrace::traces::ModuleEntry::sha256_hex).collect::<Vec<_>>()
        })
        .collect();
    let store = ModuleStore::at(dir.join(STORE_DIR));
    let modules = files(store.dir(), |p| p.to_string_lossy().ends_with(".wasm.zst"));
    let (kept_modules, unreferenced): (Vec<Found>, Vec<Found>) = modules.into_iter().partition(|m| {
        let name = m.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        referenced.contains(name.trim_end_matches(".wasm.zst"))
    });
    if !args.dry_run {
        for found in removed.iter().chain(&unreferenced) {
            std::fs::remove_file(&found.path).map_err(|e| {
                CliError::new(
                    wtrace::exit_codes::OUTPUT_FAILED,
                    format!("cannot remove {}: {e}", found.path.display()),
                    Some("check the trace directory's permissions".to_string()),
                )
            })?;
        }
    }
    let size = |found: &[Found]| bytes(found.iter().map(|f| f.len).sum());
    let mut out = output::stdout();
    writeln!(
        out,
        "{} {} trace(s) ({}) and {} module(s) ({}) from {}; kept {} trace(s) and {} module(s)",
        if args.dry_run { "would remove" } else { "removed" },
        removed.len(),
        size(&removed),
        unreferenced.len(),
        size(&unreferenced),
        dir.display(),
        kept.len(),
        kept_modules.len(),
    )
    .map_err(|e| CliError::from_output(&e))?;
    output::finish(out)
}

/// The regular files of `dir` whose path passes `keep`.
fn files(dir: &Path, keep: impl Fn(&Path) -> bool) -> Vec<Found> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|entry| {
            let meta = entry.metadata().ok()?;
            let path = entry.path();
            (meta.is_file() && keep(&path)).then(|| Found {
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                len: meta.len(),
                path,
            })
        })
        .collect()
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
