//! The data directory: the store, the license files (`licenses/`), and the lock that keeps two servers
//! from running on the same data.
//!
//! Problems are found at start, with a message that names the directory: a server that starts
//! and then fails on its first write, hours later, is the worst kind of failure for a license
//! server.

use std::{
    fs::{self, File, OpenOptions, TryLockError},
    io::{self, Write},
    path::{Path, PathBuf},
};

use thiserror::Error;

const STORE_FILE: &str = "license-server.db";
const LOCK_FILE: &str = "server.lock";
const PROBE_FILE: &str = ".write-probe";

#[derive(Debug, Error)]
pub enum DataDirError {
    #[error("cannot create the data directory {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("the data directory {path} is not a directory")]
    NotADirectory { path: PathBuf },
    #[error("the data directory {path} is not writable: {source}")]
    NotWritable { path: PathBuf, source: io::Error },
    #[error(
        "the data directory {path} is in use by another running license server \
         (it holds the lock on {lock}); stop it or choose another --data-dir"
    )]
    InUse { path: PathBuf, lock: PathBuf },
}

/// Where the first administrator's random password is written (mode 0600), until that password
/// is changed.
pub const INITIAL_PASSWORD_FILE: &str = "initial-admin-password";

#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    /// Held open for the life of a running server: the OS releases the lock when the process
    /// ends, however it ends, so a crash never leaves a stale lock behind.
    lock: Option<File>,
}

impl DataDir {
    /// Creates the directory if it does not exist (readable by its owner only: it will hold
    /// license files and credentials) and checks that files can be written in it.
    pub fn open(path: &Path) -> Result<Self, DataDirError> {
        if path.exists() && !path.is_dir() {
            return Err(DataDirError::NotADirectory {
                path: path.to_owned(),
            });
        }
        create_private_dir(path).map_err(|source| DataDirError::Create {
            path: path.to_owned(),
            source,
        })?;
        probe_writable(path).map_err(|source| DataDirError::NotWritable {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self {
            path: path.to_owned(),
            lock: None,
        })
    }

    /// Takes the exclusive lock that a running server holds on its data directory.
    pub fn lock(&mut self) -> Result<(), DataDirError> {
        let lock_path = self.path.join(LOCK_FILE);
        let file = open_lock_file(&lock_path).map_err(|source| DataDirError::NotWritable {
            path: self.path.clone(),
            source,
        })?;
        match file.try_lock() {
            Ok(()) => {
                self.lock = Some(file);
                Ok(())
            }
            Err(TryLockError::WouldBlock) => Err(DataDirError::InUse {
                path: self.path.clone(),
                lock: lock_path,
            }),
            Err(TryLockError::Error(source)) => Err(DataDirError::NotWritable {
                path: self.path.clone(),
                source,
            }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn store_path(&self) -> PathBuf {
        self.path.join(STORE_FILE)
    }

    pub fn initial_password_path(&self) -> PathBuf {
        self.path.join(INITIAL_PASSWORD_FILE)
    }
}

/// Opens (creating if needed) a file that is only ever locked, never written.
pub(crate) fn open_lock_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
}

/// Creates `path` and its missing parents, readable by the owner only.
pub(crate) fn create_private_dir(path: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

/// Permission bits do not tell the whole story (read-only mounts, full disks, root), so write a
/// real file, sync it and remove it. One name for every process: a probe left behind by a process
/// killed at that moment is simply reused and removed by the next, and two processes probing at
/// once only ever find it already removed.
fn probe_writable(dir: &Path) -> io::Result<()> {
    let probe = dir.join(PROBE_FILE);
    let result = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe)
        .and_then(|mut file| {
            file.write_all(b"probe")?;
            file.sync_all()
        });
    let removed = match fs::remove_file(&probe) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    };
    result.and(removed)
}

/// Restricts an existing file to its owner (the store and its WAL were 0644 before).
pub(crate) fn make_private(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match fs::metadata(path) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                fs::set_permissions(path, fs::Permissions::from_mode(0o600))
            }
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// Creates `path` empty and readable by its owner only, unless it exists.
pub(crate) fn create_private_file(path: &Path) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_missing_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a/b/data");
        let dir = DataDir::open(&path).unwrap();
        assert!(path.is_dir());
        assert_eq!(dir.store_path(), path.join(STORE_FILE));
        assert_eq!(
            fs::read_dir(&path).unwrap().count(),
            0,
            "the probe is removed"
        );
    }

    #[test]
    fn a_probe_left_by_a_killed_process_is_cleaned_up() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join(PROBE_FILE), "left behind").unwrap();
        DataDir::open(tmp.path()).unwrap();
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_file_in_place_of_the_directory_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("data");
        fs::write(&path, "not a directory").unwrap();
        let err = DataDir::open(&path).unwrap_err();
        assert!(matches!(err, DataDirError::NotADirectory { .. }), "{err}");
        assert!(err.to_string().contains("is not a directory"));
    }

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_until_the_first_is_released() {
        let tmp = tempfile::tempdir().unwrap();
        let mut first = DataDir::open(tmp.path()).unwrap();
        first.lock().unwrap();
        let mut second = DataDir::open(tmp.path()).unwrap();
        let err = second.lock().unwrap_err();
        assert!(
            err.to_string()
                .contains("in use by another running license server"),
            "{err}"
        );
        drop(first);
        second.lock().unwrap();
    }
}
