# Sourced by the test and cross-build scripts: how cargo links and runs each target that is not
# this machine's, with Debian's cross gccs and qemu-user (Linux) or mingw and Wine (Windows).
# The qemu runners take a `-cpu` option where a test needs a particular CPU (with or without
# vector registers).
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export AARCH64_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="$AARCH64_RUNNER"
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export CARGO_TARGET_RISCV64GC_UNKNOWN_LINUX_GNU_LINKER=riscv64-linux-gnu-gcc
export RISCV64_RUNNER="qemu-riscv64 -L /usr/riscv64-linux-gnu"
# The two riscv64 harts the stub variants are run on: without V, and with it (VLEN 256).
RISCV64_CPUS=("rv64,v=false" "rv64,v=true,vlen=256,vext_spec=v1.0")
# s390x with and without the vector facility.
S390X_CPUS=("qemu" "qemu,vx=off,vxeh=off")
export CARGO_TARGET_RISCV64GC_UNKNOWN_LINUX_GNU_RUNNER="$RISCV64_RUNNER"
export CC_riscv64gc_unknown_linux_gnu=riscv64-linux-gnu-gcc
export CARGO_TARGET_S390X_UNKNOWN_LINUX_GNU_LINKER=s390x-linux-gnu-gcc
export S390X_RUNNER="qemu-s390x -L /usr/s390x-linux-gnu"
export CARGO_TARGET_S390X_UNKNOWN_LINUX_GNU_RUNNER="$S390X_RUNNER"
export CC_s390x_unknown_linux_gnu=s390x-linux-gnu-gcc
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine
