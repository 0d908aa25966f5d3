use clap::Parser;
use stratusd::cli::{Cli, Command};

fn main() -> std::process::ExitCode {
    use stratusd::adminctl::{self, Family};
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Vm(c) => return adminctl::main(Family::Vm, adminctl::Command::Vm(c)),
        Command::Host(c) => return adminctl::main(Family::Host, adminctl::Command::Host(c)),
        Command::Net(c) => return adminctl::main(Family::Net, adminctl::Command::Pool(c)),
        Command::User(c) => return adminctl::main(Family::User, adminctl::Command::Pool(c)),
        Command::Image(c) => return adminctl::main(Family::Image, adminctl::Command::Pool(c)),
        Command::Template(c) => {
            return adminctl::main(Family::Template, adminctl::Command::Pool(c))
        }
        Command::Accounting(a) => return stratusd::accounting::main(&a),
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
