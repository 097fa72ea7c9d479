//! The `landlord` binary: parse arguments, run, exit with the code the CLI chose.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(landlord::cli::main())
}
