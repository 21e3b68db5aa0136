//! Why a module cannot be run as asked: the typed setup errors that recording, replay and debug
//! replay share, raised before any of the guest's code has run.

/// Why a module cannot be run as asked. Nothing of the guest ran.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The bytes are not a valid WebAssembly module (binary or WAT).
    #[error("`{name}` is not a valid WebAssembly module: {detail}")]
    InvalidModule {
        /// The module's name.
        name: String,
        /// What is wrong, as the validator says it.
        detail: String,
    },
    /// The module uses a Wasm feature the engine settings switch off.
    #[error("`{name}` needs the Wasm feature `{feature}`, which is switched off: {detail}")]
    FeatureDisabled {
        /// The module's name.
        name: String,
        /// The `-W` name of the feature.
        feature: &'static str,
        /// What Wasmtime said.
        detail: String,
    },
    /// The module imports something nobody provides.
    #[error("unknown import: `{module}::{name}` has not been defined")]
    UnknownImport {
        /// The import's module.
        module: String,
        /// The import's name.
        name: String,
    },
    /// The module imports a provided function with another type.
    #[error("import `{module}::{name}` has type {found}, but the host provides {expected}")]
    ImportType {
        /// The import's module.
        module: String,
        /// The import's name.
        name: String,
        /// The provided function's type.
        expected: String,
        /// The type the module asks for.
        found: String,
    },
    /// The function to invoke is not exported.
    #[error("the module has no exported function `{name}` to invoke; it exports: {}",
        if exports.is_empty() { "no functions".to_string() } else { exports.join(", ") })]
    NoSuchExport {
        /// The name asked for.
        name: String,
        /// The functions it does export.
        exports: Vec<String>,
    },
    /// The function to invoke takes another number of arguments.
    #[error("`{func}` takes {expected} argument(s), {given} given")]
    ArgCount {
        /// The function.
        func: String,
        /// Its parameter count.
        expected: usize,
        /// Arguments given.
        given: usize,
    },
    /// An argument cannot be parsed as its parameter's type.
    #[error("argument `{arg}` is not a valid {ty}")]
    ArgParse {
        /// The argument as given.
        arg: String,
        /// The parameter's type.
        ty: String,
    },
    /// Wasmtime refused to instantiate the module with these engine settings (a limit, a
    /// resource it cannot provide).
    #[error("cannot instantiate the module: {detail}")]
    EngineRejected {
        /// What Wasmtime said.
        detail: String,
    },
}
