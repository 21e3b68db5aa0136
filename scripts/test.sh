#!/usr/bin/env bash
# The README's test command: installs what a fresh machine lacks (idempotently), then runs
# formatting, lints, the whole test suite, and a short fuzzing run of the trace reader.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests drive: stock zstd (traces must decode with it) and jq (dump --json).
missing=()
command -v zstd >/dev/null || missing+=(zstd)
command -v jq >/dev/null || missing+=(jq)
# The terminal UI's end-to-end test drives the real binary in tmux.
command -v tmux >/dev/null || missing+=(tmux)
# The replay-isolation test watches the real binary's system calls.
command -v strace >/dev/null || missing+=(strace)
# Cross checks of the call-injection stubs: aarch64 runs under qemu-user, linked by the cross gcc.
command -v qemu-aarch64 >/dev/null || missing+=(qemu-user)
command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
# The guest programs under tests/guests are built for WASI preview 1 by the tests themselves.
for target in wasm32-wasip1 aarch64-unknown-linux-gnu x86_64-apple-darwin aarch64-apple-darwin; do
  rustup target list --installed 2>/dev/null | grep -qx "$target" || rustup target add "$target"
done
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"
echo "== call injection on aarch64 (cross-compiled, run under qemu-aarch64)"
cargo clippy -p wtrace-inject --target aarch64-unknown-linux-gnu --all-targets --locked -- -D warnings
cargo test -p wtrace-inject --target aarch64-unknown-linux-gnu --locked 2>&1 | tee -a "$log"
echo "== inject type-checks for macOS"
for target in x86_64-apple-darwin aarch64-apple-darwin; do
  cargo clippy -p wtrace-inject --target "$target" --locked -- -D warnings
done
echo "== fuzz (short run)"
scripts/fuzz.sh "${WTRACE_FUZZ_SECONDS:-10}"
# One closing line for the whole suite (cargo prints one per test binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "total: %d passed, %d failed\n", p, f }' "$log"
