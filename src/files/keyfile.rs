//! Key files on disk. Secret keys are created with mode 0600, refused when
//! group or others can read them (unless the caller explicitly allows it),
//! and held only in zeroizing buffers.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::core::FormatError;
use crate::core::keys::{PublicKey, SecretKey};
use crate::fsutil::{self, Mode};

/// Public key files: readable by all, as the umask allows.
const PUBLIC: Mode = Mode::Umask(0o644);

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

/// An I/O error writing a new key, with "already exists" said plainly.
fn exists(path: &Path) -> impl FnOnce(std::io::Error) -> KeyFileError + '_ {
    move |e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => KeyFileError::Exists { path: path.to_path_buf() },
        _ => KeyFileError::Io { path: path.to_path_buf(), source: e },
    }
}

fn read_small(path: &Path) -> Result<Zeroizing<String>, KeyFileError> {
    // Room for one byte more than the limit, so that the buffer holding the
    // secret is never reallocated (and a copy left behind unzeroized).
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE_LEN as usize + 1));
    fsutil::read_bounded_into(path, MAX_KEY_FILE_LEN, &mut bytes).map_err(|e| match e {
        fsutil::ReadError::Io(source) => KeyFileError::Io { path: path.to_path_buf(), source },
        too_large => {
            KeyFileError::Format { path: path.to_path_buf(), source: FormatError::Key(format!("key file {too_large}")) }
        }
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|_| KeyFileError::Format {
        path: path.to_path_buf(),
        source: FormatError::Key("key file is not UTF-8 text".into()),
    })?;
    Ok(Zeroizing::new(text.to_string()))
}

/// Writes a new secret key to `path` (mode 0600, never overwriting) and its
/// public key to `path.pub`. Neither is written through a link: each is
/// written whole to a new temporary file, then linked into place.
pub fn write_new_key(path: &Path, key: &SecretKey) -> Result<PathBuf, KeyFileError> {
    let pub_path = public_path(path);
    for p in [path, pub_path.as_path()] {
        if p.symlink_metadata().is_ok() {
            return Err(KeyFileError::Exists { path: p.to_path_buf() });
        }
    }
    let public = format!("{}\n", key.public());
    fsutil::write_new(path, Mode::Secret, |w| w.write_all(key.to_text().as_bytes())).map_err(exists(path))?;
    fsutil::write_new(&pub_path, PUBLIC, |w| w.write_all(public.as_bytes())).map_err(exists(&pub_path))?;
    Ok(pub_path)
}

/// Writes a secret key to `path` (mode 0600) and its public key to
/// `path.pub`, replacing what is there (a link is replaced, not followed).
/// Only for a key that nothing durable depends on yet: the log key of a
/// ledger that has no entry.
pub fn replace_key(path: &Path, key: &SecretKey) -> Result<PathBuf, KeyFileError> {
    let pub_path = public_path(path);
    fsutil::write_replacing(&pub_path, PUBLIC, |w| w.write_all(format!("{}\n", key.public()).as_bytes()))
        .map_err(io(&pub_path))?;
    fsutil::write_replacing(path, Mode::Secret, |w| w.write_all(key.to_text().as_bytes())).map_err(io(path))?;
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
