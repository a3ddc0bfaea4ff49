//! CLI errors and the one mapping from errors to exit codes.

use std::process::ExitCode;

use provledger::keyfile::KeyFileError;
use provledger::ledger::LedgerError;
use provledger::policy::PolicyError;
use provledger::registry::{INSECURE_ENV, PASSWORD_ENV, RegistryError, USERNAME_ENV};
use provledger::remote::RemoteError;
use provledger::store::StoreError;
use provledger::store::log::LogError;
use provledger::sync::SyncError;
use provledger::verify::{Failure, VerifyError};

/// Exit codes, part of the command-line contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    Ok = 0,
    Operational = 1,
    Usage = 2,
    Denied = 3,
    Verification = 4,
}

impl Code {
    pub fn exit(self) -> ExitCode {
        ExitCode::from(self as u8)
    }

    fn kind(self) -> &'static str {
        match self {
            Code::Ok => "ok",
            Code::Operational => "error",
            Code::Usage => "usage",
            Code::Denied => "denied",
            Code::Verification => "verification-failed",
        }
    }
}

#[derive(Debug)]
pub struct CliError {
    pub code: Code,
    pub message: String,
    /// What to do next, for people.
    pub hint: Option<String>,
    /// The entry involved, when there is one.
    pub index: Option<u64>,
    /// The chain rule broken, as its stable code (SPEC section 6.2).
    pub rule: Option<&'static str>,
    /// The command already printed the outcome (a denial's reasons, in
    /// its report): nothing more is printed, only the exit code remains.
    pub reported: bool,
}

impl CliError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        CliError { code, message: message.into(), hint: None, index: None, rule: None, reported: false }
    }
    pub fn operational(message: impl Into<String>) -> Self {
        CliError::new(Code::Operational, message)
    }
    pub fn denied(message: impl Into<String>) -> Self {
        CliError::new(Code::Denied, message)
    }
    /// An outcome whose details the command already printed (a denial's
    /// reasons): only the exit code remains.
    pub fn reported(code: Code) -> Self {
        CliError { reported: true, ..CliError::new(code, "") }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// An entry refused while appending: policy refusals are denials (3),
    /// anything else an operational error (1).
    pub fn from_append(e: LedgerError) -> Self {
        match e {
            LedgerError::Verify(v) => {
                let code = match v.failure {
                    Failure::Denied => Code::Denied,
                    _ => Code::Operational,
                };
                CliError {
                    code,
                    message: format!("refused: {v}"),
                    hint: None,
                    index: Some(v.index),
                    rule: Some(v.code.as_str()),
                    reported: false,
                }
            }
            other => other.into(),
        }
    }

    /// A failure met while verifying: the chain does not hold (4), unless it
    /// is a newer format or I/O (1).
    pub fn from_verify(e: LedgerError) -> Self {
        match e {
            LedgerError::Verify(v) => verify_failure(v),
            LedgerError::Stored { index, source } => verify_failure(VerifyError::format(index, source)),
            LedgerError::Store(StoreError::Corrupt(m)) => {
                CliError::new(Code::Verification, format!("verification failed: {m}"))
            }
            other => other.into(),
        }
    }

    pub fn print(&self, json: bool) {
        if self.reported {
            return;
        }
        if json {
            let report = super::report::ErrorReport {
                ok: false,
                error: super::report::ErrorDetail {
                    code: self.code as u8,
                    kind: self.code.kind(),
                    message: &self.message,
                    index: self.index,
                    rule: self.rule,
                    hint: self.hint.as_deref(),
                },
            };
            println!("{}", serde_json::to_string(&report).expect("a report serialises"));
        } else {
            eprintln!("provledger: {}", self.message);
            if let Some(h) = &self.hint {
                eprintln!("hint: {h}");
            }
        }
    }
}

pub fn verify_failure(v: VerifyError) -> CliError {
    let code = match v.failure {
        Failure::Newer | Failure::Io => Code::Operational,
        Failure::Denied | Failure::Invalid => Code::Verification,
    };
    CliError {
        code,
        message: format!("verification failed: {v}"),
        hint: None,
        index: Some(v.index),
        rule: Some(v.code.as_str()),
        reported: false,
    }
}

impl From<LedgerError> for CliError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::Store(s) => s.into(),
            LedgerError::Verify(v) => verify_failure(v),
            LedgerError::Empty => CliError::operational(e.to_string())
                .hint("create it with `provledger init --root-key KEY --policy POLICY.toml`"),
            LedgerError::Stored { index, .. } => {
                CliError { index: Some(index), ..CliError::new(Code::Verification, e.to_string()) }
                    .hint("run `provledger verify` to locate the damage")
            }
            other => CliError::operational(other.to_string()),
        }
    }
}

impl From<provledger::ledger::dir::DirError> for CliError {
    fn from(e: provledger::ledger::dir::DirError) -> Self {
        use provledger::ledger::dir::DirError;
        match e {
            DirError::Store(s) => s.into(),
            DirError::Ledger(l) => l.into(),
            DirError::Key(k) => k.into(),
            DirError::NoLogKey(_) => {
                CliError::operational(e.to_string()).hint("copy the ledger's log key there (mode 0600)")
            }
            other => CliError::operational(other.to_string()),
        }
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::NotALedger(_) => CliError::operational(e.to_string()),
            StoreError::Corrupt(_) => {
                CliError::new(Code::Verification, e.to_string()).hint("run `provledger verify` to locate the damage")
            }
            StoreError::Locked(..) => CliError::operational(e.to_string())
                .hint("retry when the other command has finished, or raise --lock-timeout"),
            StoreError::DiskFull { .. } => {
                CliError::operational(e.to_string()).hint("free space on that file system; nothing was lost")
            }
            StoreError::NeedsMigration(_) => {
                CliError::operational(e.to_string()).hint("run `provledger migrate` where the ledger is writable")
            }
            StoreError::Log(LogError::Corrupt { .. }) => {
                CliError::new(Code::Verification, e.to_string()).hint("run `provledger verify` to locate the damage")
            }
            StoreError::Log(LogError::Locked { .. }) => CliError::operational(e.to_string())
                .hint("retry when the other command has finished, or raise --lock-timeout"),
            StoreError::Log(LogError::DiskFull { .. }) => {
                CliError::operational(e.to_string()).hint("free space on that file system; nothing was written")
            }
            _ => CliError::operational(e.to_string()),
        }
    }
}

impl From<KeyFileError> for CliError {
    fn from(e: KeyFileError) -> Self {
        CliError::operational(e.to_string())
    }
}

impl From<PolicyError> for CliError {
    fn from(e: PolicyError) -> Self {
        CliError::operational(format!("policy: {e}"))
    }
}

impl From<RegistryError> for CliError {
    fn from(e: RegistryError) -> Self {
        match &e {
            RegistryError::Unreachable { host, .. } => CliError::operational(e.to_string()).hint(format!(
                "check that {host} is up and reachable; a registry served over plain HTTP must be named with \
                 --insecure-registry {host} (or {INSECURE_ENV})"
            )),
            RegistryError::Unauthorized { .. } => CliError::operational(e.to_string()).hint(format!(
                "log in with `docker login` (read from ~/.docker/config.json or $DOCKER_CONFIG), or set \
                 {USERNAME_ENV} and {PASSWORD_ENV}"
            )),
            RegistryError::DigestMismatch { .. } => CliError::new(Code::Verification, e.to_string()),
            RegistryError::NotFound { .. } | RegistryError::Protocol { .. } => CliError::operational(e.to_string()),
        }
    }
}

impl From<RemoteError> for CliError {
    fn from(e: RemoteError) -> Self {
        match &e {
            // The server's chain rules refused the statement as the policy's
            // (unknown key, wrong role, the promotion gate): a denial.
            RemoteError::Refused { status: 403, refusal, .. } => {
                CliError { index: refusal.index, ..CliError::denied(format!("refused: {e}")) }
            }
            RemoteError::Refused { refusal, .. } => {
                CliError { index: refusal.index, ..CliError::operational(format!("refused: {e}")) }
            }
            RemoteError::Forged { .. } => CliError::new(Code::Verification, e.to_string()),
            RemoteError::Unreachable { url, .. } => CliError::operational(e.to_string())
                .hint(format!("check that `provledger serve` runs at {url} ($PROVLEDGER_SERVER, --server)")),
            RemoteError::Protocol { .. } => CliError::operational(e.to_string()),
        }
    }
}

impl From<SyncError> for CliError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::Fork { reason, evidence } => {
                let err = CliError::new(
                    Code::Verification,
                    format!("refused: the source's history forks from ours: {reason}; nothing was written"),
                );
                match evidence {
                    Some(p) => err.hint(format!("its signed checkpoint is kept as evidence in {}", p.display())),
                    None => err,
                }
            }
            SyncError::Rollback { ref evidence, .. } => {
                let err = CliError::new(Code::Verification, format!("refused: {e}; nothing was written"));
                match evidence {
                    Some(p) => err.hint(format!("its signed checkpoints are kept as evidence in {}", p.display())),
                    None => err,
                }
            }
            SyncError::Acknowledged(why) => CliError::new(Code::Verification, why),
            SyncError::Invalid(why) => {
                CliError::new(Code::Verification, format!("refused: {why}; nothing was written"))
            }
            SyncError::NeedGenesis => CliError::operational(e.to_string())
                .hint("pass the genesis hash you trust (from `provledger init` or the ledger's operator)"),
            SyncError::Source(why) => CliError::operational(why),
            SyncError::Ledger(l) => CliError::from_verify(l),
            SyncError::Dir(d) => d.into(),
        }
    }
}
