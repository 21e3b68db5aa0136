//! Debug replay figures on a multi-second recording (`benches/guests` `ledger`: rounds of
//! bookkeeping with a host call each, ending in a trap on a value stored in an early round):
//!
//! - debug replay to the trap against plain replay of the same trace, with and without
//!   checkpoints (what taking them costs), and the checkpoints' count and memory;
//! - forward step latency;
//! - step-back latency early, in the middle and late in the recording: the first step back
//!   from a stop (which counts the steps since the last host call), and the ones after it;
//! - a reverse watchpoint from the trap to the store of the bad value.
//!
//! Target (README, Benchmarks): a step back anywhere <= 50 ms with checkpoints.
//! `cargo bench --bench debug [-- ROUNDS]` (default 400000 rounds, about 2 s recorded).
#![allow(clippy::print_stdout)]

mod common;

use std::time::{Duration, Instant};

use common::{guests, median, ms, ratio};
use wtrace::replayer::debug::{CheckpointOptions, Position, Session, SessionOptions, StopReason};
use wtrace::replayer::{OutputSink, ReplayOptions};
use wtrace::{RecordOptions, Trace};

fn timed<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let start = Instant::now();
    let out = f();
    (start.elapsed(), out)
}

/// How long a session request takes.
fn request<T, E: std::fmt::Debug>(f: impl FnOnce() -> Result<T, E>) -> Duration {
    let start = Instant::now();
    f().expect("the request succeeds");
    start.elapsed()
}

fn open(trace: &Trace, checkpoints: bool) -> Session {
    let checkpoints = CheckpointOptions { enabled: checkpoints, ..CheckpointOptions::default() };
    Session::open(trace, &SessionOptions { checkpoints, ..SessionOptions::default() })
        .expect("open a session")
}

/// Step-back latencies from the entry of host call `seq`: the first (which counts the steps
/// of the stretch before it), then the median and worst of ten more.
fn step_backs(session: &mut Session, seq: u64) -> (Duration, Duration, Duration) {
    session.run_to(seq).unwrap();
    let first = request(|| session.step_back().map(drop));
    let rest: Vec<Duration> = (0..10).map(|_| request(|| session.step_back().map(drop))).collect();
    let worst = rest.iter().copied().max().unwrap_or_default();
    (first, median(rest), worst)
}

fn main() {
    let rounds: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(400_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.zst");
    let module = guests().join("ledger.wasm");
    let options = RecordOptions::from_file(&module).unwrap().arg(rounds.to_string());
    let (recorded, _) = timed(|| wtrace::record(&options, &path).expect("record"));
    let trace = Trace::open(&path).unwrap();
    let host_calls = trace.kind_counts()[wtrace::traces::EventKind::HostCall.index()];
    println!("ledger, {rounds} rounds: recorded in {}, {host_calls} host calls", ms(recorded).trim());

    let replay_options = ReplayOptions { stdout: OutputSink::Capture, ..ReplayOptions::default() };
    let (plain, replay) = timed(|| wtrace::replayer::replay(&trace, replay_options).expect("replay"));
    let stdout = String::from_utf8_lossy(&replay.stdout);
    let slot = stdout
        .lines()
        .find_map(|l| l.strip_prefix("spare slot at 0x"))
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .expect("the guest prints where the spare slot is");

    let mut bare = open(&trace, false);
    let debug_bare = request(|| bare.continue_().map(drop));
    drop(bare);
    let mut session = open(&trace, true);
    let (debug, stop) = timed(|| session.continue_().unwrap().reason.clone());
    assert!(matches!(stop, StopReason::Trap(_)), "{stop:?}");
    let stats = session.checkpoint_stats();
    println!();
    println!("plain replay                         {}", ms(plain));
    println!(
        "debug replay to the trap             {}  {} of plain",
        ms(debug_bare),
        ratio(debug_bare, plain)
    );
    println!("  with checkpoints                   {}  {} of plain", ms(debug), ratio(debug, plain));
    println!(
        "checkpoints: {} holding {:.1} MiB (cap {} MiB)",
        stats.count,
        stats.memory.unwrap_or(0) as f64 / f64::from(1 << 20),
        stats.memory_cap >> 20
    );

    let middle = host_calls / 2;
    session.run_to(middle).unwrap();
    let steps: Vec<Duration> = (0..50).map(|_| request(|| session.step().map(drop))).collect();
    println!(
        "step forward                         {:8.3} ms  (median of 50)",
        median(steps).as_secs_f64() * 1e3
    );

    println!();
    println!("step back (target <= 50 ms)            first      median     worst");
    for (name, seq) in
        [("early (1%)", host_calls / 100), ("middle", middle), ("late (99%)", host_calls * 99 / 100)]
    {
        let (first, typical, worst) = step_backs(&mut session, seq);
        println!("  {name:<12}                   {} {} {}", ms(first), ms(typical), ms(worst));
    }
    session.continue_().unwrap();
    session.continue_().unwrap();
    let at_trap = request(|| session.step_back().map(drop));
    println!("  from the trap                      {}", ms(at_trap));

    session.continue_().unwrap();
    let watch = request(|| session.watch(slot, 4).reverse_continue().map(drop));
    let found = session.stop().clone();
    let at = found.frames.first().and_then(|f| f.name.clone()).unwrap_or_default();
    println!();
    println!(
        "reverse watch from the trap          {}  -> {at} after host call {} (of {host_calls})",
        ms(watch),
        found.position.seq
    );
    assert!(at.contains("book"), "the store is in Ledger::book: {found:?}");
    assert!(found.position < Position { seq: 64, steps: 0 }, "in round 7: {:?}", found.position);
    let stats = session.checkpoint_stats();
    println!(
        "checkpoints at the end: {} holding {:.1} MiB, {} dropped to stay under the caps",
        stats.count,
        stats.memory.unwrap_or(0) as f64 / f64::from(1 << 20),
        stats.dropped
    );
}
