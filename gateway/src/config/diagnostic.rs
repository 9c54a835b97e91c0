//! A fault or warning found in the config, with the file, the line and what to change.

use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
    pub help: String,
}

impl Diagnostic {
    pub fn error(
        file: &Path,
        line: Option<usize>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Error,
            file: file.to_path_buf(),
            line,
            message: message.into(),
            help: help.into(),
        }
    }

    pub fn warning(
        file: &Path,
        line: Option<usize>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(file, line, message, help)
        }
    }

    /// `file:line`, or just the file when YAML gave no line.
    pub fn location(&self) -> String {
        match self.line {
            Some(line) => format!("{}:{line}", self.file.display()),
            None => self.file.display().to_string(),
        }
    }

    /// One line, for logs and `/admin/config`.
    pub fn one_line(&self) -> String {
        format!(
            "{}: {} (help: {})",
            self.location(),
            self.message,
            self.help
        )
    }
}

/// The rustc-like form `propylon check` prints.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        writeln!(f, "{label}: {}", self.message)?;
        writeln!(f, "  --> {}", self.location())?;
        write!(f, "  help: {}", self.help)
    }
}
