#!/usr/bin/env bash
# The README's first command: build wtrace, write the bundled sample trace, and show it.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/demo
mkdir -p "$out"
cargo build --quiet --bin wtrace --example sample_trace
target/debug/examples/sample_trace "$out/sample.zst"
echo
echo '$ wtrace info target/demo/sample.zst'
target/debug/wtrace info "$out/sample.zst"
echo
echo '$ wtrace dump target/demo/sample.zst'
target/debug/wtrace dump "$out/sample.zst"
