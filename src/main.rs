use clap::Parser;
use stratusd::cli::{Cli, Command};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => stratusd::daemon::serve(&args).map_err(|e| e.to_string()),
        Command::SiteSetup(args) => {
            stratusd::site::run(&args).map_err(|e| format!("site-setup: {e}"))
        }
        Command::Quarantine(args) => stratusd::admin::quarantine(&args),
        Command::Import(args) => stratusd::migrate::run_import(&args),
        Command::Export(args) => stratusd::migrate::run_export(&args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stratusd: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
