//! The files the CLI reads, each with a named size limit: a huge or endless
//! file (`/dev/zero`) is refused with the file and the limit named, never
//! read into memory whole. Key files are bounded in `keyfile`, bundles are
//! streamed with a limit per entry (`bundle`).

use std::path::Path;

use provledger::fsutil::{self, ReadError};

use super::{CliError, Code};

/// Largest policy file: far more than any policy needs, and under the
/// payload limit of the statement that carries it.
pub const MAX_POLICY_FILE: u64 = 1 << 20;
/// Largest Compose or Kubernetes YAML file `check-refs` reads.
pub const MAX_MANIFEST_FILE: u64 = 16 << 20;
/// Largest release metadata or manifest file `check-bundle` reads.
pub const MAX_RELEASE_METADATA_FILE: u64 = 16 << 20;

/// Reads `path` (a `what`), refusing more than `limit` bytes with exit 1.
pub fn read(path: &Path, what: &str, limit: u64) -> Result<Vec<u8>, CliError> {
    read_or(path, what, limit, Code::Operational)
}

/// [`read`], refusing more than `limit` bytes with `code`.
pub fn read_or(path: &Path, what: &str, limit: u64, code: Code) -> Result<Vec<u8>, CliError> {
    fsutil::read_bounded(path, limit).map_err(|e| {
        let code = match e {
            ReadError::TooLarge { .. } => code,
            _ => Code::Operational,
        };
        CliError::new(code, format!("{what} {}: {e}", path.display()))
    })
}

/// [`read`] of a UTF-8 text file.
pub fn read_text(path: &Path, what: &str, limit: u64) -> Result<String, CliError> {
    String::from_utf8(read(path, what, limit)?)
        .map_err(|_| CliError::operational(format!("{what} {}: not UTF-8 text", path.display())))
}
