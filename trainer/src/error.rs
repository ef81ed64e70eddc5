//! Errors of the pipeline stages, and the process exit code each maps to.

use std::fmt;
use std::path::{Path, PathBuf};

/// Exit code for a data-contract violation (bad, malformed or inconsistent input data).
pub const EXIT_CONTRACT: u8 = 3;
/// Exit code for a usage or configuration error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code for a failed quality gate.
pub const EXIT_GATE: u8 = 4;
/// Exit code for any other failure (I/O, internal).
pub const EXIT_OTHER: u8 = 1;

/// One broken rule of the data contract, located as precisely as the data allows.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// The file the data came from.
    pub file: PathBuf,
    /// Where in it: channel, row, time (free text, e.g. `channel vib_fan, row 1234 (t = 0.6 s)`).
    pub location: String,
    /// The contract rule, as named in the contract docs (e.g. `channel.unit`).
    pub rule: &'static str,
    /// What was expected and what was found.
    pub detail: String,
}

impl Violation {
    /// A violation of `rule` in `file` at `location`.
    pub fn new(
        file: &Path,
        location: impl Into<String>,
        rule: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Violation { file: file.to_path_buf(), location: location.into(), rule, detail: detail.into() }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if !self.location.is_empty() {
            write!(f, ": {}", self.location)?;
        }
        write!(f, ": {} [rule {}]", self.detail, self.rule)
    }
}

/// Every violation found in one or more files (never empty).
#[derive(Debug, Clone, PartialEq)]
pub struct ContractViolations(pub Vec<Violation>);

impl fmt::Display for ContractViolations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(f, "data contract violated ({n} problem{}):", if n == 1 { "" } else { "s" })?;
        for v in self.0.iter().take(MAX_REPORTED) {
            write!(f, "\n  - {v}")?;
        }
        if n > MAX_REPORTED {
            write!(f, "\n  ... and {} more", n - MAX_REPORTED)?;
        }
        Ok(())
    }
}

impl std::error::Error for ContractViolations {}

/// Violations listed in one error message; the rest are counted.
pub const MAX_REPORTED: usize = 20;

impl From<Violation> for ContractViolations {
    fn from(v: Violation) -> Self {
        ContractViolations(vec![v])
    }
}

/// A configuration file, command line or stale intermediate that cannot be used; the message
/// states the rule and what to do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A quality gate failed: the table of gate / value / limit.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("quality gates failed; nothing was exported or registered\n{0}")]
pub struct GateFailure(pub String);

/// The kinds of failure the CLI tells apart, each with its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// [`UsageError`]: exit code 2.
    Usage,
    /// [`ContractViolations`]: exit code 3.
    Contract,
    /// [`GateFailure`]: exit code 4.
    Gate,
    /// Anything else (I/O, internal): exit code 1.
    Other,
}

impl Kind {
    /// The kind of an error chain: its first typed cause decides.
    pub fn of(err: &anyhow::Error) -> Kind {
        for cause in err.chain() {
            if cause.is::<ContractViolations>() {
                return Kind::Contract;
            }
            if cause.is::<UsageError>() {
                return Kind::Usage;
            }
            if cause.is::<GateFailure>() {
                return Kind::Gate;
            }
        }
        Kind::Other
    }

    /// The process exit code.
    pub fn exit_code(self) -> u8 {
        match self {
            Kind::Usage => EXIT_USAGE,
            Kind::Contract => EXIT_CONTRACT,
            Kind::Gate => EXIT_GATE,
            Kind::Other => EXIT_OTHER,
        }
    }
}

/// The exit code for an error chain ([`Kind::of`]).
pub fn exit_code(err: &anyhow::Error) -> u8 {
    Kind::of(err).exit_code()
}
