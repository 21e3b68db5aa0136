#!/usr/bin/env bash
# The README's test command: installs what a fresh machine lacks (idempotently), then runs
# formatting, lints, the whole test suite — with the call-injection round trips on every
# architecture (aarch64, riscv64 and s390x under qemu-user, Windows under Wine) and the trap
# fixtures recorded by wtrace built for those three (`scripts/cross.sh`) — and a short fuzzing
# run of the trace reader.
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
# Cross checks of the call-injection stubs: aarch64, riscv64 and s390x run under qemu-user,
# linked by the cross gccs.
command -v qemu-aarch64 >/dev/null || missing+=(qemu-user)
command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v riscv64-linux-gnu-gcc >/dev/null || missing+=(gcc-riscv64-linux-gnu libc6-dev-riscv64-cross)
command -v s390x-linux-gnu-gcc >/dev/null || missing+=(gcc-s390x-linux-gnu libc6-dev-s390x-cross)
# The Windows stub: linked by mingw, run under Wine.
command -v x86_64-w64-mingw32-gcc >/dev/null || missing+=(gcc-mingw-w64-x86-64)
command -v wine >/dev/null || missing+=(wine wine64)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
# The guest programs under tests/guests are built for WASI preview 1 by the tests themselves.
for target in wasm32-wasip1 aarch64-unknown-linux-gnu riscv64gc-unknown-linux-gnu s390x-unknown-linux-gnu \
  x86_64-pc-windows-gnu x86_64-apple-darwin aarch64-apple-darwin; do
  rustup target list --installed 2>/dev/null | grep -qx "$target" || rustup target add "$target"
done
source scripts/cross-env.sh

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
echo "== call injection on riscv64, with and without V (qemu-riscv64)"
cargo clippy -p wtrace-inject --target riscv64gc-unknown-linux-gnu --all-targets --locked -- -D warnings
for cpu in "${RISCV64_CPUS[@]}"; do
  CARGO_TARGET_RISCV64GC_UNKNOWN_LINUX_GNU_RUNNER="$RISCV64_RUNNER -cpu $cpu" \
    cargo test -p wtrace-inject --target riscv64gc-unknown-linux-gnu --locked 2>&1 | tee -a "$log"
done
echo "== call injection on s390x, with and without the vector facility (qemu-s390x)"
cargo clippy -p wtrace-inject --target s390x-unknown-linux-gnu --all-targets --locked -- -D warnings
for cpu in "${S390X_CPUS[@]}"; do
  CARGO_TARGET_S390X_UNKNOWN_LINUX_GNU_RUNNER="$S390X_RUNNER -cpu $cpu" \
    cargo test -p wtrace-inject --target s390x-unknown-linux-gnu --locked 2>&1 | tee -a "$log"
done
echo "== call injection on Windows x86_64 (mingw, run under Wine)"
cargo clippy -p wtrace-inject --target x86_64-pc-windows-gnu --all-targets --locked -- -D warnings
# The runtime too: it hands Wasmtime's Windows hook to the stub.
cargo clippy -p wtrace-runtime --target x86_64-pc-windows-gnu --locked -- -D warnings
# A Wine prefix of the project's own, with the one DLL Wine 8 lacks that Rust programs need.
export WINEPREFIX="$PWD/target/wine" WINEDEBUG=-all
if [ ! -f "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" ]; then
  # wineboot complains about the missing display and services it does not need; the prefix is
  # what counts.
  wineboot --init >/dev/null 2>&1 || true
  [ -d "$WINEPREFIX/drive_c/windows/system32" ] || { echo "wineboot did not create $WINEPREFIX" >&2; exit 1; }
  x86_64-w64-mingw32-gcc -shared -O2 -o "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" \
    scripts/wine/bcryptprimitives.c scripts/wine/bcryptprimitives.def -ladvapi32
fi
cargo test -p wtrace-inject --target x86_64-pc-windows-gnu --locked 2>&1 | tee -a "$log"
echo "== inject type-checks for macOS"
for target in x86_64-apple-darwin aarch64-apple-darwin; do
  cargo clippy -p wtrace-inject --target "$target" --locked -- -D warnings
done
echo "== trap fixtures recorded by wtrace for aarch64, riscv64 and s390x (qemu-user)"
scripts/cross.sh 2>&1 | tee -a "$log"
echo "== fuzz (short run)"
scripts/fuzz.sh "${WTRACE_FUZZ_SECONDS:-10}"
# One closing line for the whole suite (cargo prints one per test binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "total: %d passed, %d failed\n", p, f }' "$log"
