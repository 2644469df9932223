//! `leoflow-server`, the Pro edition's control plane: parses the command line, loads and
//! checks the configuration (every bad value reported at once, exit code 2), then serves,
//! migrates the database or prints the effective configuration.

mod config;
mod health;
mod logging;
mod metrics;
mod server;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{LogConfig, Settings};

#[derive(Parser)]
#[command(
    name = "leoflow-server",
    version,
    about = "The Leoflow Pro control plane: REST API, Airflow UI and agent API on every replica; the replica holding the scheduler lease schedules and launches one Kubernetes pod per task attempt.",
    after_help = config::help()
)]
struct Cli {
    /// A YAML file with the settings as nested keys (`database: {url: …}`); the
    /// environment overrides it. Default: $LEOFLOW_CONFIG.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Clone, Copy)]
enum Command {
    /// Serve (the default).
    Serve,
    /// Apply the database migrations and exit (needs only LEOFLOW_DATABASE_URL).
    Migrate,
    /// Check the configuration and print the effective values, secrets redacted.
    CheckConfig,
}

/// Exit code of an invalid configuration.
const BAD_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let settings = match Settings::load(cli.config.as_deref(), &env) {
        Ok(s) => s,
        Err(problems) => return invalid(&problems),
    };
    let command = cli.command.unwrap_or(Command::Serve);
    let hostname = env.get("HOSTNAME").filter(|h| !h.is_empty()).cloned();
    let result = match command {
        Command::Migrate => match config::database(&settings) {
            Err(problems) => return invalid(&problems),
            Ok(db) => {
                logging::init(LogConfig {
                    json: true,
                    level: tracing::Level::INFO,
                });
                runtime().and_then(|rt| rt.block_on(server::migrate(&db)))
            }
        },
        Command::CheckConfig => {
            if let Err(problems) = config::config(&settings, hostname) {
                return invalid(&problems);
            }
            print!("{}", settings.describe());
            println!("# the configuration is valid");
            Ok(())
        }
        Command::Serve => match config::config(&settings, hostname) {
            Err(problems) => return invalid(&problems),
            Ok(config) => {
                logging::init(config.log);
                runtime().and_then(|rt| rt.block_on(server::serve(config)))
            }
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "leoflow-server failed");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn invalid(problems: &config::Problems) -> ExitCode {
    for p in &problems.0 {
        eprintln!("error: {p}");
    }
    eprintln!(
        "leoflow-server: {} configuration problem{}; see `leoflow-server --help`",
        problems.0.len(),
        if problems.0.len() == 1 { "" } else { "s" }
    );
    ExitCode::from(BAD_CONFIG)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
