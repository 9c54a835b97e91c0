//! `propylon`: the command line. `run` serves, `check` validates for CI/CD, `openapi`
//! prints the merged facade spec.

// mimalloc: fewer CPU cycles per request than glibc's malloc on the proxy's many small,
// short-lived allocations (bench/README.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod admin;
mod admin_jobs;
mod cli;
mod config;
mod exchange;
mod health;
mod housekeeping;
mod jobs;
mod jwks;
mod logging;
mod metrics;
mod proxy;
mod reload;
mod server;
mod snapshot;
mod state;
mod store;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.command.unwrap_or(cli::Command::Run) {
        cli::Command::Run => {
            logging::init(cli.log_format);
            match server::run(&cli.config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        cli::Command::Check => cli::check(&cli.config),
        cli::Command::Openapi => cli::openapi(&cli.config),
    }
}
