//! `propylon`: the command line. `run` serves, `check` validates for CI/CD, `openapi`
//! prints the merged facade spec.

// mimalloc: fewer CPU cycles per request than glibc's malloc on the proxy's many small,
// short-lived allocations (bench/README.md). The crate is patched to take mimalloc's plain
// fast path for word-aligned layouts (vendor/mimalloc/README.md).
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

#[cfg(test)]
mod tests {
    /// The patched allocator (vendor/mimalloc) gives word-aligned layouts mimalloc's plain
    /// blocks; this holds it to their alignment for fresh, zeroed and grown blocks, of sizes
    /// that are and are not powers of two, many to a size so that pages fill and turn over.
    #[test]
    fn the_global_allocator_honours_each_types_alignment() {
        fn check<T: Clone + Default>() {
            let align = std::mem::align_of::<T>();
            let aligned = |p: *const T| p.is_aligned();
            for n in 1..=40 {
                let held: Vec<Vec<T>> = (0..256).map(|_| Vec::with_capacity(n)).collect();
                assert!(
                    held.iter().all(|v| aligned(v.as_ptr())),
                    "{n} × align {align}"
                );
                let zeroed = vec![T::default(); n];
                assert!(aligned(zeroed.as_ptr()), "zeroed {n} × align {align}");
                let mut grown = Vec::with_capacity(n);
                grown.resize(n * 3 + 1, T::default());
                assert!(aligned(grown.as_ptr()), "grown {n} × align {align}");
            }
        }
        check::<u16>();
        check::<u32>();
        check::<u64>();
        check::<(u64, u32)>();
        check::<(u32, u16)>();
        check::<u128>();
    }
}
