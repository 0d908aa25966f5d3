use clap::Parser;
use stratusd::cli::{Cli, Command};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => match stratusd::daemon::serve(&args) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("stratusd: {e}");
                std::process::ExitCode::FAILURE
            }
        },
        Command::SiteSetup(args) => match stratusd::site::run(&args) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("stratusd site-setup: {e}");
                std::process::ExitCode::FAILURE
            }
        },
    }
}
