//! Reading and writing the files a user names: inputs with a size limit,
//! outputs through a new temporary file and a rename.
//!
//! Every file the CLI reads goes through [`read_bounded`], so that a huge
//! or endless file (`/dev/zero`) is an error, not an out-of-memory kill.
//! Every file it writes goes through [`write_replacing`] or [`write_new`]:
//! the temporary file is created exclusively and never through a link
//! (`O_CREAT|O_EXCL|O_NOFOLLOW`, random name), synced, then renamed or
//! linked into place, and the directory is synced. A planted symlink, at the
//! target or at a guessable temporary name, is never written through.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read as _, Write};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// Why a bounded read failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("exceeds the limit of {limit} bytes")]
    TooLarge { limit: u64 },
}

/// Reads all of `path`, refusing more than `limit` bytes. The size is not
/// taken from the file's metadata (a device or a pipe has none): at most
/// `limit + 1` bytes are read.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let mut buf = Vec::new();
    read_bounded_into(path, limit, &mut buf)?;
    Ok(buf)
}

/// [`read_bounded`] into `buf` (appended), for a caller that must control
/// where the bytes live (a secret key in a buffer that is zeroized: reserve
/// `limit + 1` first and nothing is reallocated).
pub fn read_bounded_into(path: &Path, limit: u64, buf: &mut Vec<u8>) -> Result<(), ReadError> {
    let file = File::open(path)?;
    let start = buf.len();
    file.take(limit.saturating_add(1)).read_to_end(buf)?;
    if (buf.len() - start) as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(())
}

/// The permissions of a file written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Exactly 0600, whatever the umask: a secret key.
    Secret,
    /// This mode as the umask filters it.
    Umask(u32),
}

/// Readable by all, as the umask allows: an output file.
pub const OUTPUT: Mode = Mode::Umask(0o666);

/// A temporary file beside `path`, created exclusively, never through a link.
struct Temp {
    path: PathBuf,
    file: Option<BufWriter<File>>,
}

impl Temp {
    fn create(path: &Path, mode: Mode) -> io::Result<Temp> {
        let bits = match mode {
            Mode::Secret => 0o600,
            Mode::Umask(m) => m,
        };
        let name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
        let mut attempts = 0;
        loop {
            let mut tmp: OsString = ".".into();
            tmp.push(name);
            tmp.push(format!(".{:016x}.tmp", rand::random::<u64>()));
            let tmp = path.with_file_name(tmp);
            let opened = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(bits)
                .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC).bits() as i32)
                .open(&tmp);
            match opened {
                Ok(file) => {
                    if mode == Mode::Secret {
                        // The mode given at creation is filtered by the umask; set it exactly.
                        file.set_permissions(std::fs::Permissions::from_mode(bits))?;
                    }
                    return Ok(Temp { path: tmp, file: Some(BufWriter::new(file)) });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 16 => attempts += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes through `write`, then flushes and syncs the file.
    fn fill(&mut self, write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>) -> io::Result<()> {
        let w = self.file.as_mut().expect("an open file");
        write(w)?;
        w.flush()?;
        w.get_ref().sync_all()
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        // Still here: something failed before it took the target's place.
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Syncs the directory holding `path`, so that a rename or a new name in it
/// is durable.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// Writes `path` whole or not at all, replacing what is there: a temporary
/// file beside it (with `mode`), synced, renamed over it (a symlink at
/// `path` is replaced, not followed), and the directory synced.
pub fn write_replacing(
    path: &Path,
    mode: Mode,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
    let mut tmp = Temp::create(path, mode)?;
    tmp.fill(write)?;
    std::fs::rename(&tmp.path, path)?;
    tmp.file = None;
    sync_parent(path)
}

/// Writes a new file at `path` whole or not at all, failing with
/// `AlreadyExists` if anything (a symlink too) is there: the temporary file
/// is hard-linked into place, which never replaces.
pub fn write_new(
    path: &Path,
    mode: Mode,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
    let mut tmp = Temp::create(path, mode)?;
    tmp.fill(write)?;
    std::fs::hard_link(&tmp.path, path)?;
    // The target holds the bytes now; dropping `tmp` removes the temporary name.
    drop(tmp);
    sync_parent(path)
}

/// Removes the temporary files a write of `path` killed midway left
/// beside it. Only for a caller that knows no such write is under way (one
/// holding a lock every writer of `path` takes).
pub fn remove_stale_temps(path: &Path) -> io::Result<()> {
    let (Some(name), Some(dir)) = (path.file_name(), path.parent()) else { return Ok(()) };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let mut prefix: OsString = ".".into();
    prefix.push(name);
    prefix.push(".");
    let prefix = prefix.as_encoded_bytes();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let n = e.file_name();
        let n = n.as_encoded_bytes();
        // `.` name `.` 16 hex digits `.tmp`
        if n.len() == prefix.len() + 20
            && n.starts_with(prefix)
            && n.ends_with(b".tmp")
            && n[prefix.len()..prefix.len() + 16].iter().all(u8::is_ascii_hexdigit)
        {
            std::fs::remove_file(e.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounded_read_refuses_one_byte_more_and_an_endless_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, [7u8; 10]).unwrap();
        assert_eq!(read_bounded(&p, 10).unwrap(), [7u8; 10]);
        assert!(matches!(read_bounded(&p, 9), Err(ReadError::TooLarge { limit: 9 })));
        assert!(matches!(read_bounded(Path::new("/dev/zero"), 1000), Err(ReadError::TooLarge { limit: 1000 })));
    }

    #[test]
    fn writes_replace_links_instead_of_following_them() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let out = dir.path().join("out");
        std::os::unix::fs::symlink(&victim, &out).unwrap();
        write_replacing(&out, OUTPUT, |w| w.write_all(b"new")).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "new");
        assert!(!std::fs::symlink_metadata(&out).unwrap().file_type().is_symlink());
        // A new file never replaces, not even a link.
        let new = dir.path().join("new");
        std::os::unix::fs::symlink(&victim, &new).unwrap();
        let e = write_new(&new, Mode::Secret, |w| w.write_all(b"key")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        // No temporary file is left behind either way.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 3, "{names:?}");
    }
}
