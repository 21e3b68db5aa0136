//! Flags that several subcommands take, defined once: how modules are compiled (the
//! compiled-code cache) for `record` and `replay`, and how durations are written
//! (`replay --timeout`, `gc --older-than`).

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

/// `500ms`, `30s`, `2m`, `12h`, `7d`, `2w` (fractions allowed), or a number of seconds.
pub(crate) fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 =
        number.parse().map_err(|_| format!("`{text}` is not a duration such as 500ms, 30s, 12h or 7d"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86_400.0,
        "w" => value * 7.0 * 86_400.0,
        other => return Err(format!("unknown unit `{other}` in `{text}`: use ms, s, m, h, d or w")),
    };
    std::time::Duration::try_from_secs_f64(seconds).map_err(|_| format!("`{text}` is out of range"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn durations_and_ages() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_mins(30));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_hours(7 * 24));
        assert_eq!(parse_duration("2w").unwrap(), Duration::from_hours(14 * 24));
        assert!(parse_duration("7y").is_err());
        assert!(parse_duration("d").is_err());
    }
}
