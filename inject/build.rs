//! Sets the one custom cfg of the crate, `wtrace_inject`, on the targets that have a
//! call-injection stub: what every item the stubs share keys on.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(wtrace_inject)");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let (os, arch) = (var("CARGO_CFG_TARGET_OS"), var("CARGO_CFG_TARGET_ARCH"));
    let supported = matches!(
        (os.as_str(), arch.as_str()),
        ("linux", "x86_64" | "aarch64" | "riscv64" | "s390x")
            | ("macos", "x86_64" | "aarch64")
            | ("windows", "x86_64")
    );
    if supported {
        println!("cargo::rustc-cfg=wtrace_inject");
    }
}
