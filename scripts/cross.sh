#!/usr/bin/env bash
# Records and replays every trap fixture with wtrace built for aarch64, riscv64 and s390x
# Linux, run under qemu-user: the same checks as on this machine (`tests/all/traps.rs`: the trap code,
# Wasmtime's report and backtrace, the native snapshot's Wasm PC and frame walk, replay),
# against the other architecture's binary. riscv64 runs once without the V extension and once
# with it. s390x runs with the vector facility only: Wasmtime's code for s390x assumes it (a
# float-to-integer conversion dies of an uncaught SIGFPE without it, wtrace or not), so the
# stub variant without vector registers is checked by the round trips of `scripts/test.sh`.
#
# Each target builds Wasmtime once more (the README gives the figures). `scripts/cross.sh
# riscv64` (or `aarch64`, `s390x`) runs one; `scripts/test.sh` installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cross-env.sh

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(aarch64 riscv64 s390x)
for name in "${targets[@]}"; do
  case "$name" in
    aarch64) triple=aarch64-unknown-linux-gnu runner="$AARCH64_RUNNER"
             cpus=("max") ;;
    riscv64) triple=riscv64gc-unknown-linux-gnu runner="$RISCV64_RUNNER"
             cpus=("${RISCV64_CPUS[@]}") ;;
    s390x)   triple=s390x-unknown-linux-gnu runner="$S390X_RUNNER"
             cpus=("${S390X_CPUS[0]}") ;;
    *) echo "unknown target $name (aarch64, riscv64 or s390x)" >&2; exit 2 ;;
  esac
  rustup target list --installed 2>/dev/null | grep -qx "$triple" || rustup target add "$triple"
  echo "== wtrace for $triple"
  start=$(date +%s)
  cargo build --locked --target "$triple" --bin wtrace
  echo "built in $(( $(date +%s) - start )) s"
  for cpu in "${cpus[@]}"; do
    echo "== trap fixtures on $name (-cpu $cpu)"
    start=$(date +%s)
    WTRACE_TEST_BINARY="target/$triple/debug/wtrace" WTRACE_TEST_RUNNER="$runner -cpu $cpu" \
      WTRACE_TEST_ARCH="$name" cargo test --locked --test all traps:: -- --test-threads 2
    echo "ran in $(( $(date +%s) - start )) s"
  done
done
