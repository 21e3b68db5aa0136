//! The engine configuration shared by recording and replay: Wasm feature flags spelled as
//! `wasmtime run -W` spells them, the fixed settings that make a run reproducible, and their
//! round trip through the trace header.
//!
//! Replay must compile the module to the same machine code as the recording (same stack
//! depths, same traps), so the header stores every setting and replay rebuilds the engine
//! from the header alone, refusing settings it does not know.

use std::fmt::Write as _;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use wasmtime::{Config, Engine};

/// How often an [`EpochTicker`] advances the epoch: the most an interruptible run computes
/// before it looks at a stop request or a time limit.
pub const TICK: Duration = Duration::from_millis(50);

/// Advances an engine's epoch every [`TICK`] while it lives, from a thread of its own: what an
/// [`EngineSettings::interruptible`] run's store sees as its clock.
pub struct EpochTicker {
    ticks: Arc<AtomicU64>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EpochTicker {
    pub fn start(engine: &Engine) -> EpochTicker {
        let (stop, stopped) = mpsc::channel::<()>();
        let engine = engine.clone();
        let ticks = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&ticks);
        let thread = std::thread::Builder::new()
            .name("wtrace-ticker".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(TICK) {
                    engine.increment_epoch();
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            })
            .ok();
        EpochTicker { ticks, stop: Some(stop), thread }
    }

    /// Starts a ticker for `store`'s engine and has `store` call `on_tick` at every tick it
    /// sees while running Wasm: how an [`EngineSettings::interruptible`] run is driven.
    pub fn drive<T: 'static>(
        store: &mut wasmtime::Store<T>,
        on_tick: impl FnMut(wasmtime::StoreContextMut<'_, T>) -> wasmtime::Result<wasmtime::UpdateDeadline>
        + Send
        + Sync
        + 'static,
    ) -> EpochTicker {
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(on_tick);
        EpochTicker::start(store.engine())
    }

    /// How many ticks have passed, shared: a clock that costs one load to read, where
    /// `Instant::now` on a per-host-call path would cost more than the rest of the call.
    pub fn ticks(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.ticks)
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A Wasm proposal that `-W NAME=y|n` switches, with its `wasmtime::Config` setter.
struct Proposal {
    name: &'static str,
    set: fn(&mut Config, bool) -> &mut Config,
}

/// Every Wasm proposal Wasmtime 48 supports for core modules (tiers 1 to 3 of its proposal
/// table, `stack-switching` on `x86_64` Linux only), by the name `wasmtime run -W` uses. The
/// component-model proposals do not apply: wtrace runs core modules.
const PROPOSALS: &[Proposal] = &[
    Proposal { name: "bulk-memory", set: Config::wasm_bulk_memory },
    Proposal { name: "custom-page-sizes", set: Config::wasm_custom_page_sizes },
    Proposal { name: "exceptions", set: Config::wasm_exceptions },
    Proposal { name: "extended-const", set: Config::wasm_extended_const },
    Proposal { name: "function-references", set: Config::wasm_function_references },
    Proposal { name: "gc", set: Config::wasm_gc },
    Proposal { name: "memory64", set: Config::wasm_memory64 },
    Proposal { name: "multi-memory", set: Config::wasm_multi_memory },
    Proposal { name: "multi-value", set: Config::wasm_multi_value },
    Proposal { name: "reference-types", set: Config::wasm_reference_types },
    Proposal { name: "relaxed-simd", set: Config::wasm_relaxed_simd },
    Proposal { name: "shared-everything-threads", set: Config::wasm_shared_everything_threads },
    Proposal { name: "shared-memory", set: Config::shared_memory },
    Proposal { name: "simd", set: Config::wasm_simd },
    Proposal { name: "stack-switching", set: Config::wasm_stack_switching },
    Proposal { name: "tail-call", set: Config::wasm_tail_call },
    Proposal { name: "threads", set: Config::wasm_threads },
    Proposal { name: "wide-arithmetic", set: Config::wasm_wide_arithmetic },
];

/// `-W` options that are accepted but fixed, because replay depends on them.
const FIXED: &[(&str, &str)] = &[
    ("nan-canonicalization", "NaN bit patterns must not depend on the CPU for replay to be exact"),
    ("relaxed-simd-deterministic", "relaxed SIMD results must not depend on the CPU for replay to be exact"),
];

/// Header keys of the settings wtrace fixes for every run.
const FIXED_SETTINGS: &[(&str, &str)] = &[
    ("strategy", "cranelift"),
    ("signals-based-traps", "y"),
    ("nan-canonicalization", "y"),
    ("relaxed-simd-deterministic", "y"),
];

/// Wasm features and limits chosen for a run, on top of Wasmtime's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineSettings {
    /// Proposals switched explicitly, in the order given, later ones winning.
    proposals: Vec<(&'static str, bool)>,
    /// `-W max-wasm-stack=N`.
    max_wasm_stack: Option<usize>,
    /// Epoch checks in the compiled code ([`EngineSettings::interruptible`]).
    epochs: bool,
}

/// Header key of [`EngineSettings::interruptible`].
const EPOCHS_KEY: &str = "epoch-interruption";

/// A setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SettingError(pub String);

impl EngineSettings {
    /// Applies one `-W` argument: comma-separated `NAME`, `NAME=y|n|yes|no|true|false`, or
    /// `max-wasm-stack=BYTES`.
    pub fn apply_flag(&mut self, flag: &str) -> Result<(), SettingError> {
        for item in flag.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, value) = item.split_once('=').map_or((item, None), |(n, v)| (n, Some(v)));
            if name == "max-wasm-stack" {
                let bytes =
                    value.and_then(|v| v.parse::<usize>().ok()).filter(|b| *b > 0).ok_or_else(|| {
                        SettingError(format!(
                            "`-W {item}` needs a size in bytes, e.g. max-wasm-stack=1048576"
                        ))
                    })?;
                self.max_wasm_stack = Some(bytes);
                continue;
            }
            let on = match value {
                None | Some("y" | "yes" | "true") => true,
                Some("n" | "no" | "false") => false,
                Some(other) => {
                    return Err(SettingError(format!("`-W {name}={other}`: expected y or n")));
                }
            };
            if let Some((_, why)) = FIXED.iter().find(|(fixed, _)| *fixed == name) {
                if on {
                    continue;
                }
                return Err(SettingError(format!("`-W {name}` is always on when recording: {why}")));
            }
            let Some(proposal) = PROPOSALS.iter().find(|p| p.name == name) else {
                return Err(SettingError(format!(
                    "unknown -W option `{name}`; known: {}, max-wasm-stack, {}",
                    PROPOSALS.iter().map(|p| p.name).collect::<Vec<_>>().join(", "),
                    FIXED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                )));
            };
            self.proposals.retain(|(n, _)| *n != proposal.name);
            self.proposals.push((proposal.name, on));
        }
        Ok(())
    }

    /// The settings as header key/value pairs, fixed ones first.
    pub fn to_header(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> =
            FIXED_SETTINGS.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect();
        for (name, on) in &self.proposals {
            out.push(((*name).to_string(), if *on { "y" } else { "n" }.to_string()));
        }
        if let Some(bytes) = self.max_wasm_stack {
            out.push(("max-wasm-stack".into(), bytes.to_string()));
        }
        if self.epochs {
            out.push((EPOCHS_KEY.into(), "y".into()));
        }
        out
    }

    /// These settings with epoch checks compiled in (a load and a compare at each function
    /// entry and loop header), so that a running guest can be stopped from another thread: how
    /// recording stops at Ctrl-C and hands over buffered events while the guest computes, and
    /// how replay stops at a recorded interruption or a time limit. A store of such an engine
    /// must set an epoch deadline. Replay compiles a trace with the setting it was recorded
    /// with, so the machine code, and with it stack depths, stays the same.
    #[must_use]
    pub fn interruptible(&self) -> EngineSettings {
        EngineSettings { epochs: true, ..self.clone() }
    }

    /// Whether epoch checks are compiled in.
    pub fn is_interruptible(&self) -> bool {
        self.epochs
    }

    /// Rebuilds the settings a trace was recorded with, refusing any this build cannot honour.
    pub fn from_header(pairs: &[(String, String)]) -> Result<EngineSettings, SettingError> {
        let mut settings = EngineSettings::default();
        for (key, value) in pairs {
            if let Some((_, fixed)) = FIXED_SETTINGS.iter().find(|(k, _)| k == key) {
                if value != fixed {
                    return Err(SettingError(format!(
                        "the trace was recorded with engine setting {key}={value}, which this wtrace cannot replay (it uses {key}={fixed})"
                    )));
                }
                continue;
            }
            if key == EPOCHS_KEY && value == "y" {
                settings.epochs = true;
                continue;
            }
            if key == "max-wasm-stack" {
                let bytes = value.parse().map_err(|_| {
                    SettingError(format!("engine setting max-wasm-stack={value} is not a size"))
                })?;
                settings.max_wasm_stack = Some(bytes);
                continue;
            }
            let Some(proposal) = PROPOSALS.iter().find(|p| p.name == key) else {
                return Err(SettingError(format!(
                    "the trace was recorded with engine setting {key}={value}, which this wtrace does not know"
                )));
            };
            let on = match value.as_str() {
                "y" => true,
                "n" => false,
                other => return Err(SettingError(format!("engine setting {key}={other} is not y or n"))),
            };
            settings.proposals.push((proposal.name, on));
        }
        Ok(settings)
    }

    /// A one-line summary for people, e.g. `threads=y, max-wasm-stack=65536`, or `defaults`.
    pub fn describe(&self) -> String {
        let mut text = String::new();
        for (name, on) in &self.proposals {
            let _ = write!(
                text,
                "{}{name}={}",
                if text.is_empty() { "" } else { ", " },
                if *on { "y" } else { "n" }
            );
        }
        if let Some(bytes) = self.max_wasm_stack {
            let _ = write!(text, "{}max-wasm-stack={bytes}", if text.is_empty() { "" } else { ", " });
        }
        if text.is_empty() { "defaults".into() } else { text }
    }

    /// Whether `-W name` was switched on or off explicitly; `None` leaves Wasmtime's default.
    pub fn explicit(&self, name: &str) -> Option<bool> {
        self.proposals.iter().rev().find(|(n, _)| *n == name).map(|(_, on)| *on)
    }

    /// These settings with one proposal switched on, when `name` is one.
    pub(crate) fn with_proposal(&self, name: &str) -> Option<EngineSettings> {
        let proposal = PROPOSALS.iter().find(|p| p.name == name)?;
        let mut settings = self.clone();
        settings.proposals.retain(|(n, _)| *n != proposal.name);
        settings.proposals.push((proposal.name, true));
        Some(settings)
    }

    /// The `-W` names of every proposal these settings do not switch on explicitly.
    pub(crate) fn proposals_not_on(&self) -> impl Iterator<Item = &'static str> + '_ {
        PROPOSALS.iter().map(|p| p.name).filter(|name| self.explicit(name) != Some(true))
    }

    /// The Wasmtime configuration for recording and plain replay.
    pub fn config(&self) -> Config {
        let mut config = Config::new();
        config.strategy(wasmtime::Strategy::Cranelift);
        config.signals_based_traps(true);
        config.cranelift_nan_canonicalization(true);
        config.relaxed_simd_deterministic(true);
        config.wasm_backtrace_max_frames(std::num::NonZeroUsize::new(BACKTRACE_FRAMES));
        // On macOS wtrace's own thread-level Mach port takes a fault first and hands it back;
        // Wasmtime then gets it as a POSIX signal, so its own Mach ports stay off.
        #[cfg(target_vendor = "apple")]
        config.macos_use_mach_ports(false);
        for (name, on) in &self.proposals {
            if let Some(proposal) = PROPOSALS.iter().find(|p| p.name == *name) {
                (proposal.set)(&mut config, *on);
            }
        }
        if let Some(bytes) = self.max_wasm_stack {
            config.max_wasm_stack(bytes);
        }
        config.epoch_interruption(self.epochs);
        config
    }

    /// Builds the engine; fails when Wasmtime rejects the combination (e.g. `gc` without
    /// `reference-types`).
    pub fn engine(&self) -> Result<Engine, SettingError> {
        self.build(&self.config())
    }

    fn build(&self, config: &Config) -> Result<Engine, SettingError> {
        Engine::new(config)
            .map_err(|e| SettingError(format!("engine settings {} were rejected: {e:#}", self.describe())))
    }

    /// The engine for debug replay: these settings with guest debugging on (every trap a
    /// runtime call, breakpoints, single-stepping, frames with their locals and operand stack)
    /// and epoch interruption, so that a session that is closed can stop its guest. The machine
    /// code differs from the recording's, so stack depths may too.
    pub fn debug_engine(&self) -> Result<Engine, SettingError> {
        let mut config = self.interruptible().config();
        config.signals_based_traps(false).guest_debug(true);
        self.build(&config)
    }
}

/// How many frames a trap's Wasm backtrace keeps, innermost first (Wasmtime's default, as
/// `wasmtime run` has it): a deeper stack is cut there.
pub const BACKTRACE_FRAMES: usize = 20;

/// The version of the Wasmtime this build links, as stored in trace headers. Wasmtime pins
/// `wasmtime-environ` to its own exact version, so this is the linked Wasmtime's.
pub const WASMTIME_VERSION: &str = wasmtime_environ::VERSION;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip_through_the_header() {
        let mut settings = EngineSettings::default();
        settings.apply_flag("threads=y,shared-memory").unwrap();
        settings.apply_flag("simd=n").unwrap();
        settings.apply_flag("max-wasm-stack=65536").unwrap();
        settings.apply_flag("threads=n").unwrap();
        let header = settings.to_header();
        assert_eq!(EngineSettings::from_header(&header).unwrap(), settings);
        assert_eq!(settings.describe(), "shared-memory=y, simd=n, threads=n, max-wasm-stack=65536");
    }

    #[test]
    fn unknown_and_fixed_flags_are_refused() {
        let mut settings = EngineSettings::default();
        assert!(
            settings.apply_flag("warp-drive=y").unwrap_err().0.contains("unknown -W option `warp-drive`")
        );
        assert!(settings.apply_flag("nan-canonicalization=n").is_err());
        assert!(settings.apply_flag("nan-canonicalization=y").is_ok());
        assert!(settings.apply_flag("simd=maybe").is_err());
        let header = vec![("signals-based-traps".to_string(), "n".to_string())];
        assert!(EngineSettings::from_header(&header).is_err());
        let header = vec![("warp-drive".to_string(), "y".to_string())];
        assert!(EngineSettings::from_header(&header).unwrap_err().0.contains("does not know"));
    }

    #[test]
    fn every_proposal_builds_an_engine_alone() {
        for proposal in PROPOSALS {
            let mut settings = EngineSettings::default();
            settings.apply_flag(&format!("{}=y", proposal.name)).unwrap();
            // Some proposals need others; the error must name the settings, never panic.
            if let Err(e) = settings.engine() {
                assert!(e.0.contains(proposal.name), "{}", e.0);
            }
        }
    }
}
