#!/usr/bin/env bash
# The README's test command: installs what a fresh machine lacks (idempotently), then runs
# formatting, lints, the whole test suite, and a short fuzzing run of the trace reader.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests drive: stock zstd (traces must decode with it) and jq (dump --json).
missing=()
command -v zstd >/dev/null || missing+=(zstd)
command -v jq >/dev/null || missing+=(jq)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
echo "== fuzz (short run)"
scripts/fuzz.sh "${WTRACE_FUZZ_SECONDS:-10}"
