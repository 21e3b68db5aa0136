//! A JavaScript interpreter (the Boa engine): runs the script named by its first argument and
//! prints the script's value. A large module, as interpreters built for WASI are.

fn main() {
    let path = std::env::args().nth(1).expect("usage: jsrun SCRIPT.js");
    let source = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let mut context = boa_engine::Context::default();
    match context.eval(boa_engine::Source::from_bytes(&source)) {
        Ok(value) => println!("{}", value.display()),
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(1);
        }
    }
}
