//! What an author sees for every problem: `file:line: message` (or `file: message` when no
//! line is known), with file paths shown as the user would type them.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a DAG file or in `leoflow.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: Option<u32>,
    pub message: String,
}

impl Diagnostic {
    pub fn new(file: impl Into<PathBuf>, line: Option<u32>, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.into(),
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        match self.line {
            Some(line) => write!(f, "{file}:{line}: {}", self.message),
            None => write!(f, "{file}: {}", self.message),
        }
    }
}

/// Every problem found by a command; the command failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// `rel` under `base` as the user would write it: `base` as typed (no `./` prefix when it
/// is the current directory).
pub fn shown(base: &Path, rel: &Path) -> PathBuf {
    if rel.is_absolute() || base.as_os_str().is_empty() || base == Path::new(".") {
        rel.to_path_buf()
    } else {
        base.join(rel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_shown_when_known() {
        assert_eq!(
            Diagnostic::new("dag.py", Some(3), "boom").to_string(),
            "dag.py:3: boom"
        );
        assert_eq!(
            Diagnostic::new("dag.py", None, "boom").to_string(),
            "dag.py: boom"
        );
    }

    #[test]
    fn paths_are_shown_under_the_base_the_user_typed() {
        assert_eq!(
            shown(Path::new("."), Path::new("dag.py")),
            PathBuf::from("dag.py")
        );
        assert_eq!(
            shown(Path::new("proj"), Path::new("dag.py")),
            PathBuf::from("proj/dag.py")
        );
        assert_eq!(
            shown(Path::new("proj"), Path::new("/abs/dag.py")),
            PathBuf::from("/abs/dag.py")
        );
    }
}
