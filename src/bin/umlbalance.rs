//! The `umlbalance` command: the host memory balancer. Moves memory
//! between running umlrun guests through their management consoles; the
//! logic is `umlrun::balance` (policies, arbiter, one round).
//!
//! Exit codes: 0 done (after `--once` or `--rounds N`), 2 bad usage or a
//! bad configuration (one line on stderr).

use std::process::ExitCode;

use umlrun::balance::config::{from_args, USAGE};
use umlrun::balance::daemon::Balancer;
use umlrun::config::host_defaults;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp_millis()
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let cfg = match from_args(&args, host_defaults().uml_dir()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("umlbalance: {e}");
            return ExitCode::from(2);
        }
    };
    let mut out = std::io::stdout();
    let mut b = Balancer::new(cfg);
    if let Err(e) = b.listen() {
        eprintln!("umlbalance: {e}");
        return ExitCode::from(2);
    }
    b.run(&mut out);
    ExitCode::SUCCESS
}
