//! Flags that several subcommands take, defined once: how modules are compiled (the
//! compiled-code cache) for `record` and `replay`.

use std::path::PathBuf;

use wtrace::runtime::CacheOptions;
use wtrace::runtime::module::CompileOptions;

use super::output;

/// The compiled-code cache.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct CompileFlags {
    /// Compile the module even when the compiled-code cache has it, and cache nothing (as
    /// `WTRACE_CACHE=0`).
    #[arg(long)]
    no_cache: bool,
    /// Keep compiled code in DIR (default: `$WTRACE_CACHE_DIR`, else `$XDG_CACHE_HOME/wtrace`,
    /// else `~/.cache/wtrace`).
    #[arg(long, value_name = "DIR", conflicts_with = "no_cache")]
    cache_dir: Option<PathBuf>,
}

impl CompileFlags {
    /// The compile options these flags ask for; `quiet` silences the compiling status line.
    pub(crate) fn options(&self, quiet: bool) -> CompileOptions {
        let cache = match (&self.cache_dir, self.no_cache) {
            (_, true) => CacheOptions::off(),
            (Some(dir), false) => CacheOptions::at(dir),
            (None, false) => CacheOptions::from_env(),
        };
        CompileOptions { cache, notice: if quiet { None } else { output::compiling_status() } }
    }
}
