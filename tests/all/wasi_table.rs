//! The one WASI preview 1 table links in every mode: a module that imports all 46 functions,
//! with the types the table gives, records and replays, and each function's recording shim and
//! replay shim is called once. A module that imports one of them with another type is refused
//! before anything runs, in both modes.

use std::fmt::Write as _;

use wtrace::runtime::wasi::{FUNCTIONS, MODULE, ParamType, Returns};
use wtrace::{RecordError, RecordOptions, RunEnd, SetupError, Trace};

/// A module importing every WASI function; `_start` calls each one that returns an errno
/// with all-zero arguments (which fail harmlessly or touch only memory at 0) and then exits 3.
fn every_function_module() -> String {
    let mut imports = String::new();
    let mut calls = String::new();
    for (index, function) in FUNCTIONS.iter().enumerate() {
        let params: Vec<&str> = function
            .params
            .iter()
            .map(|param| match param.ty {
                ParamType::I32 => "i32",
                ParamType::I64 => "i64",
            })
            .collect();
        let result = if function.returns == Returns::Errno { "(result i32)" } else { "" };
        let _ = writeln!(
            imports,
            "  (import \"{MODULE}\" \"{}\" (func $f{index} (param {}) {result}))",
            function.name,
            params.join(" ")
        );
        // proc_raise ends the run with a host error; proc_exit ends it below.
        if function.returns == Returns::Errno && function.name != "proc_raise" {
            let args: Vec<String> = params.iter().map(|ty| format!("({ty}.const 0)")).collect();
            let _ = writeln!(calls, "    (drop (call $f{index} {}))", args.join(" "));
        }
    }
    let exit = FUNCTIONS.iter().position(|f| f.returns == Returns::Exit).unwrap();
    format!(
        "(module\n{imports}  (memory (export \"memory\") 1)\n  (func (export \"_start\")\n{calls}    (call $f{exit} (i32.const 3))))\n"
    )
}

#[test]
fn every_function_records_and_replays_through_the_table() {
    assert_eq!(FUNCTIONS.len(), 46);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wasi.zst");
    let options = RecordOptions { module: every_function_module().into_bytes(), ..RecordOptions::default() };
    let recorded = wtrace::record(&options, &path).unwrap();
    assert_eq!(recorded.end, RunEnd::Exited(3));
    // Every errno function but proc_raise, then proc_exit, then the exit event.
    assert_eq!(recorded.events, 44 + 1 + 1);

    let trace = Trace::open(&path).unwrap();
    assert_eq!(trace.header().run.imports.len(), 46);
    assert!(trace.header().run.imports.iter().all(wtrace::runtime::wasi::is_wasi));
    let replay = wtrace::replay(&trace).unwrap();
    replay.assert_matched().assert_exit(3);
    assert_eq!(replay.host_calls, 45);
}

#[test]
fn a_wasi_import_with_another_type_is_refused_in_both_modes() {
    let module = |clock_params: &str| {
        format!(
            r#"(module (import "{MODULE}" "clock_time_get" (func (param {clock_params}) (result i32)))
                 (memory (export "memory") 1) (func (export "_start")))"#
        )
        .into_bytes()
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.zst");
    let options = RecordOptions { module: module("i32 i32 i32"), ..RecordOptions::default() };
    let error = wtrace::record(&options, &path).unwrap_err();
    let RecordError::Setup(SetupError::ImportType { name, .. }) = &error else { panic!("{error:?}") };
    assert_eq!(name, "clock_time_get");

    let options = RecordOptions { module: module("i32 i64 i32"), ..RecordOptions::default() };
    wtrace::record(&options, &path).unwrap();
    let trace = Trace::open(&path).unwrap();
    let replay_options = wtrace::ReplayOptions {
        module: Some(module("i32 i32 i32")),
        allow_modified_module: true,
        ..wtrace::ReplayOptions::default()
    };
    let error = wtrace::replayer::replay(&trace, replay_options).unwrap_err();
    let wtrace::ReplayError::Setup(SetupError::ImportType { name, .. }) = &error else { panic!("{error:?}") };
    assert_eq!(name, "clock_time_get");
}
