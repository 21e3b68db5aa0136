#!/usr/bin/env bash
# The README's first command: build wtrace, record the bundled example (a header parser that
# reads a file and traps), look at the trace, and replay it with no access to the file.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/demo
mkdir -p "$out"
cargo build --quiet --locked --bin wtrace
wtrace=target/debug/wtrace
show() { echo; echo "\$ wtrace $*"; "$wtrace" "$@"; }

# Record: the guest's output and Wasmtime's trap report pass through; exit status 134 is the
# trap, as with `wasmtime run`.
status=0
show record -o "$out/header_parser.zst" --dir examples/data::/data examples/header_parser.wat || status=$?
[ "$status" = 134 ] || { echo "demo: expected the example to trap (exit 134), got $status" >&2; exit 1; }

show info "$out/header_parser.zst"
show dump "$out/header_parser.zst"

# Replay reads nothing from the host: hide the data directory to prove it.
mv examples/data "$out/data.hidden"
trap 'mv "$out/data.hidden" examples/data' EXIT
status=0
show replay "$out/header_parser.zst" --expect-trap memory-out-of-bounds || status=$?
[ "$status" = 134 ] || { echo "demo: replay did not reproduce the trap (exit $status)" >&2; exit 1; }
echo
echo "demo: recorded, inspected and replayed; the trace is $out/header_parser.zst"
echo "demo: step through it in the terminal UI (t jumps to the trap, ? lists the keys):"
echo "  $wtrace tui $out/header_parser.zst"
