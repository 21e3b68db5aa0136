//! Prints its arguments and environment, then exits with the status given as its first
//! argument (0 when there is none).
fn main() {
    let args: Vec<String> = std::env::args().collect();
    for (i, arg) in args.iter().enumerate() {
        println!("arg[{i}] = {arg}");
    }
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    vars.sort();
    for (name, value) in vars {
        println!("env {name} = {value}");
    }
    let status = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(0);
    std::process::exit(status);
}
