//! `stratusd-test-marketplace`: the test Marketplace of the client suites
//! (`compat-tests/client/marketplace.rs`) as a program, for the README's first-VM walkthrough.
//! Every 27-character Marketplace id gets the same ttylinux manifest (ids starting with
//! `Xmissing` are unknown); the served requests are printed as they come.

#[path = "../../compat-tests/client/marketplace.rs"]
#[allow(dead_code)]
mod marketplace;

use clap::Parser;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "stratusd-test-marketplace",
    about = "The test Marketplace of stratusd's client suites: one ttylinux manifest for every image id"
)]
struct Args {
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let mp = match marketplace::Marketplace::start_on(args.listen) {
        Ok(mp) => mp,
        Err(e) => {
            eprintln!("stratusd-test-marketplace: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!(
        "test Marketplace on {}: GET /metadata/<id> answers a ttylinux manifest for any id",
        marketplace::base_url(mp.port())
    );
    loop {
        std::thread::sleep(Duration::from_millis(200));
        for request in mp.take_log() {
            println!("{request}");
        }
    }
}
