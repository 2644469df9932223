//! `leoflow compile --build [--push]`: builds the DAG's task image from the project's
//! Dockerfile with a container builder (docker, podman or buildah, run as a child process),
//! tags it with `--image` and pushes it, so CI can ship the image and its dag.json together.

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Error;

/// Where the build writes the Airflow API shim inside the build context, for the Dockerfile
/// to copy into the image (the template from `leoflow init` does).
pub const SHIM_DIR: &str = ".leoflow/shim";

/// The programs that can build and push an image from a Dockerfile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Builder {
    #[default]
    Docker,
    Podman,
    Buildah,
}

impl Builder {
    /// The program looked up on `PATH`.
    pub fn program(self) -> &'static str {
        match self {
            Builder::Docker => "docker",
            Builder::Podman => "podman",
            Builder::Buildah => "buildah",
        }
    }

    /// How to get the program, for the error when it is missing.
    fn install_hint(self) -> &'static str {
        match self {
            Builder::Docker => "install Docker Engine or Docker Desktop (docs.docker.com/engine/install)",
            Builder::Podman => "install Podman (`apt-get install podman`, `dnf install podman`, `brew install podman`)",
            Builder::Buildah => "install Buildah (`apt-get install buildah`, `dnf install buildah`)",
        }
    }
}

impl fmt::Display for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.program())
    }
}

/// What to build: the image name, the Dockerfile and the build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub image: String,
    pub dockerfile: PathBuf,
    pub context: PathBuf,
}

impl Plan {
    /// The Dockerfile is `dockerfile` (from `--dockerfile`), else leoflow.yaml's
    /// `build.dockerfile` (relative to the project), else `<context>/Dockerfile`; the context
    /// is leoflow.yaml's `build.context` (relative to the project), else the project directory.
    pub fn new(
        image: &str,
        project_dir: &Path,
        dockerfile: Option<&Path>,
        config: Option<&crate::project::Build>,
    ) -> Result<Plan, Error> {
        let context = config
            .and_then(|b| b.context.as_deref())
            .map_or_else(|| project_dir.to_path_buf(), |c| project_dir.join(c));
        let dockerfile = match (dockerfile, config.and_then(|b| b.dockerfile.as_deref())) {
            (Some(path), _) => path.to_path_buf(),
            (None, Some(path)) => project_dir.join(path),
            (None, None) => context.join("Dockerfile"),
        };
        if !dockerfile.is_file() {
            return Err(Error::Usage(format!(
                "--build needs a Dockerfile and {} does not exist; `leoflow init --force` writes a starter one \
                 (back up your files first), or pass --dockerfile FILE",
                dockerfile.display()
            )));
        }
        if !context.is_dir() {
            return Err(Error::Usage(format!(
                "the build context {} is not a directory (leoflow.yaml build.context)",
                context.display()
            )));
        }
        Ok(Plan {
            image: image.to_string(),
            dockerfile,
            context,
        })
    }
}

/// Writes the shim into the context, builds the image and, with `push`, pushes it. The three
/// builders take the same arguments: `build -t IMAGE -f DOCKERFILE CONTEXT`, `push IMAGE`.
pub fn build_and_push(
    builder: Builder,
    plan: &Plan,
    shim_dir: &Path,
    push: bool,
) -> Result<(), Error> {
    write_shim(shim_dir, &plan.context.join(SHIM_DIR))?;
    println!(
        "Building {} with {builder} ({})",
        plan.image,
        plan.dockerfile.display()
    );
    let build: [OsString; 6] = [
        "build".into(),
        "-t".into(),
        plan.image.clone().into(),
        "-f".into(),
        plan.dockerfile.clone().into(),
        plan.context.clone().into(),
    ];
    run(builder, &build, "built")?;
    if push {
        println!("Pushing {} with {builder}", plan.image);
        let push: [OsString; 2] = ["push".into(), plan.image.clone().into()];
        run(
            builder,
            &push,
            "pushed (log in to the registry first, e.g. `docker login`)",
        )?;
    }
    Ok(())
}

/// Runs the builder; on failure the error says what was not done (`not_done`).
fn run(builder: Builder, args: &[OsString], not_done: &str) -> Result<(), Error> {
    let status = Command::new(builder.program())
        .args(args)
        .status()
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::Usage(format!(
                "the image builder `{builder}` was not found on PATH: {}, or pick another with --builder docker|podman|buildah",
                builder.install_hint()
            )),
            _ => Error::Usage(format!("cannot run `{builder}`: {e}")),
        })?;
    if status.success() {
        return Ok(());
    }
    let shown: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    Err(Error::Usage(format!(
        "`{builder} {}` failed ({status}); its output is above. dag.json was written, the image was not {not_done}",
        shown.join(" ")
    )))
}

/// Replaces `dest` with a copy of the materialised shim (`airflow` and `leoflow_shim`).
fn write_shim(shim_dir: &Path, dest: &Path) -> Result<(), Error> {
    let io_err = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    };
    if dest.exists() {
        fs::remove_dir_all(dest).map_err(io_err("remove", dest))?;
    }
    copy_tree(shim_dir, dest).map_err(io_err("write", dest))
}

fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dockerfile_comes_from_the_flag_then_the_project_then_the_context() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        fs::create_dir_all(dir.join("ctx")).unwrap();
        for f in ["Dockerfile", "ctx/Dockerfile", "custom.Dockerfile", "other"] {
            fs::write(dir.join(f), "FROM scratch\n").unwrap();
        }
        let plan = Plan::new("img", dir, None, None).unwrap();
        assert_eq!(
            (plan.dockerfile, plan.context),
            (dir.join("Dockerfile"), dir.to_path_buf())
        );
        let build = crate::project::Build {
            dockerfile: Some("custom.Dockerfile".into()),
            context: Some("ctx".into()),
            ..crate::project::Build::default()
        };
        let plan = Plan::new("img", dir, None, Some(&build)).unwrap();
        assert_eq!(
            (plan.dockerfile, plan.context),
            (dir.join("custom.Dockerfile"), dir.join("ctx"))
        );
        let context_only = crate::project::Build {
            context: Some("ctx".into()),
            ..crate::project::Build::default()
        };
        let plan = Plan::new("img", dir, None, Some(&context_only)).unwrap();
        assert_eq!(plan.dockerfile, dir.join("ctx/Dockerfile"));
        let flag = dir.join("other");
        let plan = Plan::new("img", dir, Some(&flag), Some(&build)).unwrap();
        assert_eq!(plan.dockerfile, flag);
    }

    #[test]
    fn a_missing_dockerfile_says_how_to_get_one() {
        let tmp = tempfile::tempdir().unwrap();
        let err = Plan::new("img", tmp.path(), None, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("leoflow init --force") && err.contains("--dockerfile"),
            "{err}"
        );
    }
}
