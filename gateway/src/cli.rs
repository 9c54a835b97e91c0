//! Argument parsing (clap) and the two one-shot commands, `check` and `openapi`.

use crate::config::{self, Diagnostic};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "propylon",
    version,
    about = "Propylon: an API gateway and integration facade.",
    long_about = "Propylon serves clean, OpenAPI-described facades in front of heterogeneous backends.\n\n\
                  Examples:\n  propylon run --config examples/propylon.yaml\n  propylon check --config propylon.yaml     # in CI/CD: exit 1 on any fault\n  propylon openapi --config propylon.yaml   # print the merged facade spec"
)]
pub struct Cli {
    /// The config file (YAML). Relative paths inside it are resolved from its folder.
    #[arg(
        long,
        short,
        global = true,
        default_value = "propylon.yaml",
        env = "PROPYLON_CONFIG"
    )]
    pub config: PathBuf,
    /// Log format of `run`.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the config (the default when no command is given). Reloads on file change,
    /// SIGHUP and `POST /admin/reload`.
    Run,
    /// Validate the config and every file it references; print each fault with its file,
    /// line and fix. Exit 0 when valid, 1 otherwise.
    Check,
    /// Print the merged OpenAPI spec of all facade APIs (as served at /openapi.json).
    Openapi,
}

pub fn check(path: &Path) -> ExitCode {
    match config::load(path, 0, &config::LimitReuse::new()) {
        Ok(compiled) => {
            print_diagnostics(&compiled.warnings);
            let s = compiled.snapshot.summary;
            println!(
                "ok: {} is valid ({} APIs, {} operations, {} backends{})",
                path.display(),
                s.apis,
                s.operations,
                s.backends,
                match compiled.warnings.len() {
                    0 => String::new(),
                    n => format!(", {n} warning(s)"),
                }
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            print_diagnostics(&errors);
            eprintln!(
                "{} error(s) in {}; nothing was changed",
                errors.len(),
                path.display()
            );
            ExitCode::FAILURE
        }
    }
}

pub fn openapi(path: &Path) -> ExitCode {
    match config::load(path, 0, &config::LimitReuse::new()) {
        Ok(compiled) => {
            let doc: serde_json::Value =
                serde_json::from_slice(&compiled.snapshot.merged_spec).unwrap_or_default();
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            print_diagnostics(&errors);
            ExitCode::FAILURE
        }
    }
}

fn print_diagnostics(diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        eprintln!("{d}\n");
    }
}
