//! The `leoflow` command line (clap derive) and the dispatch to one module per command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::Error;

/// Leoflow: run Apache Airflow DAGs without Airflow. Compiles Airflow 3 DAG files to
/// dag.json and runs them (Lite edition).
#[derive(Debug, Parser)]
#[command(name = "leoflow", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scaffold a project: leoflow.yaml and a dag.py that compiles and runs.
    Init(InitArgs),
    /// Check a project or DAG files without writing anything: leoflow.yaml, the DAG code
    /// (imported under the Airflow shim) and the compiled DAG.
    Validate(ValidateArgs),
    /// Compile a project, a DAG file or a folder of Airflow DAG files to dag.json.
    Compile(CompileArgs),
    /// Print the version.
    Version(VersionArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The project directory (created if missing); its name becomes the dag_id.
    pub dir: PathBuf,
    /// Overwrite leoflow.yaml and dag.py if they exist.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// A project directory (with leoflow.yaml), a DAG file, or a folder of DAG files.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// The Python interpreter that imports the DAG files (default: $LEOFLOW_PYTHON, else python3).
    #[arg(long, value_name = "PYTHON")]
    pub python: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompileArgs {
    /// A project directory (with leoflow.yaml: one DAG, overlays applied), a DAG file, or a
    /// folder of Airflow DAG files (every DAG found is written to <DIR>/<dag_id>.json).
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// The dag.json to write (project default: ./dag.json; DAG files: only when they define
    /// exactly one DAG).
    #[arg(short, long, value_name = "FILE", conflicts_with = "output_dir")]
    pub output: Option<PathBuf>,
    /// Write each DAG to <DIR>/<dag_id>.json (default for DAG files and folders: ./build).
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// The task image recorded in dag.json.
    #[arg(long, value_name = "IMAGE", default_value = "")]
    pub image: String,
    /// The version label (default: `git describe --tags --always --dirty`, else "dev").
    #[arg(long, value_name = "VERSION")]
    pub dag_version: Option<String>,
    /// The Python interpreter that imports the DAG files (default: $LEOFLOW_PYTHON, else python3).
    #[arg(long, value_name = "PYTHON")]
    pub python: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Print JSON: {"version", "shim_hash", "git_commit"}.
    #[arg(long)]
    pub json: bool,
}

/// Runs the parsed command.
pub fn run(cli: &Cli) -> Result<(), Error> {
    match &cli.command {
        Command::Init(args) => crate::init::run(args),
        Command::Validate(args) => crate::validate::run(args),
        Command::Compile(args) => crate::compile::run(args),
        Command::Version(args) => crate::version::run(args),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn output_and_output_dir_conflict() {
        let err = Cli::try_parse_from(["leoflow", "compile", "-o", "a.json", "--output-dir", "b"])
            .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[test]
    fn paths_default_to_the_current_directory() {
        let cli = Cli::try_parse_from(["leoflow", "compile"]).unwrap();
        let Command::Compile(args) = cli.command else {
            panic!("not compile");
        };
        assert_eq!(args.path, PathBuf::from("."));
        assert_eq!(args.image, "");
    }
}
