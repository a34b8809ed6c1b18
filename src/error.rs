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

/// The longest a message may run in an error line; what a user wrote can be
/// far longer, and an error that echoed it whole would not be one line a
/// person reads.
pub const MAX_MESSAGE_CHARS: usize = 300;
/// The longest a file name or field path may run in an error line.
pub const MAX_NAME_CHARS: usize = 120;

/// `s` on one line, cut to `max` characters (saying how much was left out).
pub fn bounded(s: &str, max: usize) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let n = one_line.chars().count();
    if n <= max {
        return one_line;
    }
    let kept: String = one_line.chars().take(max).collect();
    format!("{kept}… ({} more characters)", n - max)
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{}:{line}: ", bounded(file, MAX_NAME_CHARS))?,
            (Some(file), None) => write!(f, "{}: ", bounded(file, MAX_NAME_CHARS))?,
            (None, Some(line)) => write!(f, "line {line}: ")?,
            (None, None) => {}
        }
        if let Some(field) = &self.field {
            write!(f, "{}: ", bounded(field, MAX_NAME_CHARS))?;
        }
        // Always one bounded line.
        write!(f, "{}", bounded(&self.message, MAX_MESSAGE_CHARS))
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
