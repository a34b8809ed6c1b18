//! The `mcpsim` binary: parse the command line, let the library work.

fn main() {
    std::process::exit(mcpsim::cli::main(std::env::args_os()));
}
