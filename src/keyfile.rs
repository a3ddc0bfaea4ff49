//! Key files on disk. Secret keys are created with mode 0600, refused when
//! group or others can read them (unless the caller explicitly allows it),
//! and held only in zeroizing buffers.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::core::FormatError;
use crate::core::keys::{PublicKey, SecretKey};

/// Largest key file read.
pub const MAX_KEY_FILE_LEN: u64 = 4096;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Format { path: PathBuf, source: FormatError },
    #[error(
        "secret key {path} is readable by group or others (mode {mode:o}); run `chmod 600 {path}`, or pass --insecure-key-permissions"
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("{path} already exists; refusing to overwrite a key")]
    Exists { path: PathBuf },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io { path: path.to_path_buf(), source }
}

fn read_small(path: &Path) -> Result<Zeroizing<String>, KeyFileError> {
    let meta = std::fs::metadata(path).map_err(io(path))?;
    if meta.len() > MAX_KEY_FILE_LEN {
        return Err(KeyFileError::Format {
            path: path.to_path_buf(),
            source: FormatError::Key(format!("key file larger than {MAX_KEY_FILE_LEN} bytes")),
        });
    }
    let bytes = Zeroizing::new(std::fs::read(path).map_err(io(path))?);
    let text = std::str::from_utf8(&bytes).map_err(|_| KeyFileError::Format {
        path: path.to_path_buf(),
        source: FormatError::Key("key file is not UTF-8 text".into()),
    })?;
    Ok(Zeroizing::new(text.to_string()))
}

/// Writes a new secret key to `path` (mode 0600, never overwriting) and its
/// public key to `path.pub`.
pub fn write_new_key(path: &Path, key: &SecretKey) -> Result<PathBuf, KeyFileError> {
    let pub_path = public_path(path);
    for p in [path, pub_path.as_path()] {
        if p.exists() {
            return Err(KeyFileError::Exists { path: p.to_path_buf() });
        }
    }
    let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io(path))?;
    // The mode given at creation is filtered by the umask; set it exactly.
    f.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io(path))?;
    f.write_all(key.to_text().as_bytes()).map_err(io(path))?;
    f.sync_all().map_err(io(path))?;
    let mut p = OpenOptions::new().write(true).create_new(true).mode(0o644).open(&pub_path).map_err(io(&pub_path))?;
    p.write_all(format!("{}\n", key.public()).as_bytes()).map_err(io(&pub_path))?;
    p.sync_all().map_err(io(&pub_path))?;
    Ok(pub_path)
}

/// `PATH.pub`.
pub fn public_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(".pub");
    PathBuf::from(s)
}

/// Reads a secret key, refusing one that group or others may read unless
/// `allow_insecure`.
pub fn read_secret(path: &Path, allow_insecure: bool) -> Result<SecretKey, KeyFileError> {
    let meta = std::fs::metadata(path).map_err(io(path))?;
    let mode = meta.permissions().mode() & 0o777;
    let text = read_small(path)?;
    let key =
        SecretKey::from_text(&text).map_err(|source| KeyFileError::Format { path: path.to_path_buf(), source })?;
    if mode & 0o077 != 0 && !allow_insecure {
        return Err(KeyFileError::Permissions { path: path.to_path_buf(), mode });
    }
    Ok(key)
}

/// Reads a public key file.
pub fn read_public(path: &Path) -> Result<PublicKey, KeyFileError> {
    let text = read_small(path)?;
    text.parse().map_err(|source| KeyFileError::Format { path: path.to_path_buf(), source })
}
