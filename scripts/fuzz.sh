#!/usr/bin/env bash
# Builds the trace-reader fuzz targets and runs each for a while: `reader` (arbitrary bytes as a
# trace), `event_stream` (arbitrary bytes as decompressed records) and `structures` (one part of
# a valid trace replaced, checksums recomputed, so the decoders behind them are reached).
#   scripts/fuzz.sh            # 60 s per target
#   scripts/fuzz.sh 10         # 10 s per target (what the test script runs)
# cargo-fuzz needs nightly-only flags; RUSTC_BOOTSTRAP lets the stable toolchain accept them,
# and `-s none` skips the sanitizer runtime, which is all this memory-safe code needs.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
# Seeds: a real trace for the reader, its decompressed events for the event-stream target.
mkdir -p fuzz/corpus/reader fuzz/corpus/event_stream fuzz/corpus/structures
cargo build --quiet --example sample_trace --example fuzz_seeds
target/debug/examples/sample_trace fuzz/corpus/reader/sample.zst >/dev/null
zstd -q -d -f fuzz/corpus/reader/sample.zst -o fuzz/corpus/event_stream/sample.bin
target/debug/examples/fuzz_seeds fuzz/corpus/structures
for target in reader event_stream structures; do
  cargo fuzz build -s none "$target"
  cargo fuzz run -s none "$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 2>&1 | tail -n 3
done
