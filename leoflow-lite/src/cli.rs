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
    /// Create the Leoflow home (~/.leoflow, or $LEOFLOW_HOME) with its config.yaml, per-install
    /// secrets and the single admin, whose password is printed once; install the web UI and,
    /// without a PostgreSQL 14+ on this host (or Docker), download PostgreSQL 16.13 once.
    /// `leoflow lite` runs it for you the first time.
    Setup(SetupArgs),
    /// Run the Lite edition: a local orchestrator (datastore, scheduler, task executor and
    /// HTTP API in one process) for a project, a folder of projects or an Airflow dags/
    /// folder, reloading DAGs as you edit them.
    Lite(LiteArgs),
    /// Check this host for what Lite needs (PostgreSQL, Python, the agent, the port, disk
    /// space), with a fix for each problem. Changes nothing.
    Doctor(DoctorArgs),
    /// Manage Lite's database: apply migrations, wipe it, back it up or restore it.
    #[command(subcommand)]
    Db(DbCommand),
    /// Remove what Leoflow put on this machine: the Leoflow home except the database, or
    /// with --purge the database too (managed cluster, Docker volume). Projects and the
    /// binaries are not touched.
    Uninstall(UninstallArgs),
    /// Log in to a running Leoflow and print a token (export it as LEOFLOW_TOKEN).
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Register compiled DAGs (dag.json from `leoflow compile`) with a running Leoflow; a
    /// file whose content is already registered changes nothing.
    Push(PushArgs),
    /// Trigger, list and inspect runs on a running Leoflow.
    #[command(subcommand)]
    Runs(RunsCommand),
}

/// Where the server is (`--server`, else `$LEOFLOW_SERVER`, else http://localhost:8088);
/// the token comes from `$LEOFLOW_TOKEN`.
#[derive(Debug, Args)]
pub struct RemoteArgs {
    /// The Leoflow server's base URL.
    #[arg(long, global = true)]
    pub server: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Print a token for USER; the password comes from $LEOFLOW_PASSWORD, else stdin.
    Token {
        #[arg(long, default_value = "admin")]
        user: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// dag.json files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Trigger a run now; prints its run id.
    Trigger {
        dag_id: String,
        /// The run's conf, a JSON object.
        #[arg(long)]
        conf: Option<String>,
        /// Wait for the run to end; exit 1 unless it succeeded.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// The newest runs, of one DAG or of all.
    List {
        dag_id: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// A run's state and its task instances.
    Status {
        dag_id: String,
        run_id: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// A task attempt's log.
    Logs {
        dag_id: String,
        run_id: String,
        task_id: String,
        /// The attempt (try number).
        #[arg(long = "try", default_value_t = 1)]
        try_number: u32,
        /// The map index of a mapped task.
        #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
        map_index: i32,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Non-interactive: accept every default (also implied without a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// The default port of `leoflow lite` (default 8088).
    #[arg(long)]
    pub port: Option<u16>,
}

#[derive(Debug, Args)]
pub struct UninstallArgs {
    /// Also delete the database: every run, log, XCom, variable and connection.
    #[arg(long)]
    pub purge: bool,
    /// Do not ask for confirmation (required without a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// The `--executor` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExecutorChoice {
    /// Kubernetes when a Docker daemon answers (not available yet, so today always the
    /// subprocess executor, with a warning).
    Auto,
    /// One local, unsandboxed process per task attempt (development only).
    Subprocess,
    /// One Kubernetes pod per attempt on a local k3d cluster (not available yet).
    K8s,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LiteArgs {
    #[command(subcommand)]
    pub command: Option<LiteCommand>,
    /// A project directory (leoflow.yaml + dag.py), a folder of projects, or an Airflow
    /// dags/ folder (every DAG of every .py file). Default: the current directory.
    pub path: Option<PathBuf>,
    /// The HTTP port (API, agent API). Default: the port `leoflow setup` recorded, 8088.
    #[arg(long)]
    pub port: Option<u16>,
    /// The address to listen on. Anything but loopback exposes Lite on your network.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The datastore: `managed` (a PostgreSQL cluster under the Leoflow home on a Unix
    /// socket, from the system's PostgreSQL >= 14, else PostgreSQL 16.13 downloaded once and
    /// checked against a pinned sha512), `docker` (postgres:16 with `docker compose`),
    /// `auto` (docker when a Docker daemon answers, else managed), or a postgres:// URL of a
    /// server you run.
    #[arg(long, default_value = "auto", value_name = "auto|managed|docker|DSN")]
    pub postgres: crate::lite::datastore::Choice,
    /// How task attempts run.
    #[arg(long, value_enum, default_value = "auto")]
    pub executor: ExecutorChoice,
    /// The Python interpreter for DAG parsing and python tasks (default: $LEOFLOW_PYTHON,
    /// else python3).
    #[arg(long, value_name = "PYTHON")]
    pub python: Option<PathBuf>,
    /// The leoflow-agent binary (default: $LEOFLOW_AGENT_BIN, next to leoflow, then PATH).
    #[arg(long, value_name = "FILE")]
    pub agent_bin: Option<PathBuf>,
    /// Seconds running tasks get to finish on Ctrl-C before they are cancelled.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub grace: u64,
}

#[derive(Debug, Subcommand)]
pub enum LiteCommand {
    /// Generate a new admin password (or take $LEOFLOW_ADMIN_PASSWORD), print it once and
    /// store its hash.
    ResetPassword,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The port to check (default: the configured one, 8088).
    #[arg(long)]
    pub port: Option<u16>,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create Lite's database if missing and apply the migrations (refuses a database
    /// migrated by a newer leoflow).
    Migrate(DbArgs),
    /// Drop Lite's database and recreate it empty and migrated: every run, log and XCom is
    /// lost.
    Reset(DbResetArgs),
    /// Write a tar.gz of Lite's database and config.yaml, with a manifest (the database as
    /// a pg_dump when the system has one, else as Leoflow's own COPY export).
    Backup(DbBackupArgs),
    /// Replace Lite's database and config.yaml with a backup's (refuses a newer schema, and
    /// an already set-up home without --force).
    Restore(DbRestoreArgs),
}

#[derive(Debug, Args)]
pub struct DbBackupArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The archive to write (default: ./leoflow-backup-<UTC time>.tar.gz).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DbRestoreArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The archive written by `leoflow db backup`.
    #[arg(short, long, value_name = "FILE")]
    pub input: PathBuf,
    /// Overwrite an existing setup and database.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct DbArgs {
    /// The datastore, as for `leoflow lite --postgres`.
    #[arg(long, default_value = "auto", value_name = "auto|managed|docker|DSN")]
    pub postgres: crate::lite::datastore::Choice,
}

#[derive(Debug, Args)]
pub struct DbResetArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Confirm that every run, log and XCom may be deleted.
    #[arg(long)]
    pub yes: bool,
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
    /// The task image recorded in dag.json (with --build: the tag built and pushed).
    #[arg(long, value_name = "IMAGE", default_value = "")]
    pub image: String,
    /// The version label (default: `git describe --tags --always --dirty`, else "dev").
    #[arg(long, value_name = "VERSION")]
    pub dag_version: Option<String>,
    /// The Python interpreter that imports the DAG files (default: $LEOFLOW_PYTHON, else python3).
    #[arg(long, value_name = "PYTHON")]
    pub python: Option<PathBuf>,
    /// After compiling, build the task image --image from the project's Dockerfile.
    #[arg(long)]
    pub build: bool,
    /// Push the built image (needs --build; log in to the registry first).
    #[arg(long, requires = "build")]
    pub push: bool,
    /// The program that builds and pushes the image.
    #[arg(long, value_enum, default_value_t, value_name = "BUILDER")]
    pub builder: crate::image::Builder,
    /// The Dockerfile (default: leoflow.yaml build.dockerfile, else Dockerfile in the build
    /// context: leoflow.yaml build.context, else the project directory).
    #[arg(long, value_name = "FILE")]
    pub dockerfile: Option<PathBuf>,
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
        Command::Setup(args) => crate::setup::run(args),
        Command::Lite(args) => match args.command {
            Some(LiteCommand::ResetPassword) => crate::setup::reset_password(),
            None => crate::lite::run(args),
        },
        Command::Doctor(args) => crate::doctor::run(args),
        Command::Db(command) => crate::db::run(command),
        Command::Uninstall(args) => crate::uninstall::run(args),
        Command::Auth(command) => crate::remote::auth(command),
        Command::Push(args) => crate::remote::push(args),
        Command::Runs(command) => crate::remote::runs(command),
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

    #[test]
    fn push_needs_build_and_the_builder_defaults_to_docker() {
        let err =
            Cli::try_parse_from(["leoflow", "compile", "--image", "i", "--push"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        let cli = Cli::try_parse_from(["leoflow", "compile", "--image", "i", "--build", "--push"])
            .unwrap();
        let Command::Compile(args) = cli.command else {
            panic!("not compile");
        };
        assert!(args.build && args.push);
        assert_eq!(args.builder, crate::image::Builder::Docker);
        let cli =
            Cli::try_parse_from(["leoflow", "compile", "--build", "--builder", "buildah"]).unwrap();
        let Command::Compile(args) = cli.command else {
            panic!("not compile");
        };
        assert_eq!(args.builder, crate::image::Builder::Buildah);
        assert!(Cli::try_parse_from(["leoflow", "compile", "--builder", "kaniko"]).is_err());
    }

    #[test]
    fn lite_takes_a_path_or_a_subcommand() {
        let cli =
            Cli::try_parse_from(["leoflow", "lite", "examples/hello", "--port", "9000"]).unwrap();
        let Command::Lite(args) = cli.command else {
            panic!("not lite");
        };
        assert_eq!(args.path, Some(PathBuf::from("examples/hello")));
        assert_eq!(args.port, Some(9000));
        assert_eq!(args.executor, ExecutorChoice::Auto);
        let cli = Cli::try_parse_from(["leoflow", "lite", "reset-password"]).unwrap();
        let Command::Lite(args) = cli.command else {
            panic!("not lite");
        };
        assert!(matches!(args.command, Some(LiteCommand::ResetPassword)));
        assert!(Cli::try_parse_from(["leoflow", "lite", "--postgres", "mysql://x"]).is_err());
    }
}
