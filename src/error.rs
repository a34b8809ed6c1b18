//! Errors that reach the user, and the exit codes they map to.
//!
//! Bad input (a scenario that does not parse or validate, an unknown stack, a
//! bad flag) is one line that names the file, the line and the field, and
//! exits 2. An internal error — a panic inside a simulated task, a harness
//! invariant broken — exits 3: it is mcpsim's bug, never a verdict.

use std::fmt;

/// One line describing bad input: `file:line: field: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The file, if the input came from one.
    pub file: Option<String>,
    /// 1-based line in that file.
    pub line: Option<usize>,
    /// The field path, e.g. `fault[2].crash`.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl InputError {
    /// An error with just a message.
    pub fn msg(message: impl Into<String>) -> Self {
        Self {
            file: None,
            line: None,
            field: None,
            message: message.into(),
        }
    }

    /// Name the field.
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{file}:{line}: ")?,
            (Some(file), None) => write!(f, "{file}: ")?,
            (None, Some(line)) => write!(f, "line {line}: ")?,
            (None, None) => {}
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        // Always one line.
        write!(f, "{}", self.message.replace('\n', " "))
    }
}

impl std::error::Error for InputError {}

/// Everything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input: exit 2.
    #[error("{0}")]
    Input(#[from] InputError),
    /// mcpsim's own bug: exit 3.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input(_) => 2,
            Error::Internal(_) => 3,
        }
    }
}
