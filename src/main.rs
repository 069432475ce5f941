//! The `rehearse` binary: parse the command line, run the command, turn an error into one message
//! on stderr (prefixed `rehearse:`) and a documented exit code. Nothing else exits the process.

use clap::Parser;

fn main() {
    let cli = rehearse::cmd::Cli::parse();
    rehearse::interrupt::install();
    let code = match rehearse::cmd::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rehearse: {}", rehearse::redact::url(&format!("{e:#}")));
            rehearse::exit::code_of(&e)
        }
    };
    std::process::exit(code);
}
