//! Writing files so that a crash or a full disk never leaves half a file behind: the content goes
//! to a temporary file in the same directory, is fsynced, and is renamed (or linked) into place;
//! then the directory itself is fsynced so the new name survives a power cut too.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
};

/// Who may read a file: license files are public information, private keys are not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 0644
    Public,
    /// 0600
    Private,
}

/// Writes `bytes` to `path`, replacing what is there.
pub fn replace(path: &Path, bytes: &[u8], mode: Mode) -> io::Result<()> {
    let temp = write_temp(path, bytes, mode)?;
    let renamed = fs::rename(&temp, path);
    if renamed.is_err() {
        let _ = fs::remove_file(&temp);
    }
    renamed?;
    sync_parent(path)
}

/// Writes `bytes` to `path`, failing with [`io::ErrorKind::AlreadyExists`] if it exists, even when
/// another process creates it at the same moment (a hard link never replaces its target).
pub fn create_new(path: &Path, bytes: &[u8], mode: Mode) -> io::Result<()> {
    let temp = write_temp(path, bytes, mode)?;
    let linked = fs::hard_link(&temp, path);
    let _ = fs::remove_file(&temp);
    linked?;
    sync_parent(path)
}

/// A file written in parts and put in place only once complete: [`Staged::commit`] syncs it and
/// renames it over its path; dropped without a commit (an error halfway), it is removed, and
/// whatever was at the path stays.
#[derive(Debug)]
pub struct Staged {
    file: File,
    temp: PathBuf,
    path: PathBuf,
    committed: bool,
}

impl Staged {
    pub fn create(path: &Path, mode: Mode) -> io::Result<Self> {
        let (file, temp) = open_temp(path, mode)?;
        Ok(Self {
            file,
            temp,
            path: path.to_owned(),
            committed: false,
        })
    }

    pub fn commit(mut self) -> io::Result<()> {
        self.file.sync_all()?;
        fs::rename(&self.temp, &self.path)?;
        self.committed = true;
        sync_parent(&self.path)
    }
}

impl Write for Staged {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.file.write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// A new temporary file beside `path` (hidden, named after it and this process).
fn open_temp(path: &Path, mode: Mode) -> io::Result<(File, PathBuf)> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".tmp-{}", std::process::id()));
    let temp = path.with_file_name(temp_name);
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(
        &mut options,
        match mode {
            Mode::Public => 0o644,
            Mode::Private => 0o600,
        },
    );
    Ok((options.open(&temp)?, temp))
}

fn write_temp(path: &Path, bytes: &[u8], mode: Mode) -> io::Result<PathBuf> {
    let (mut file, temp) = open_temp(path, mode)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    Ok(temp)
}

fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => File::open(".")?.sync_all(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_overwrites_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.lic");
        replace(&path, b"one", Mode::Public).unwrap();
        replace(&path, b"two", Mode::Public).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_staged_file_replaces_the_old_one_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("export.csv");
        fs::write(&path, b"old").unwrap();
        let mut abandoned = Staged::create(&path, Mode::Private).unwrap();
        abandoned.write_all(b"half").unwrap();
        drop(abandoned);
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        let mut staged = Staged::create(&path, Mode::Private).unwrap();
        staged.write_all(b"new, ").unwrap();
        staged.write_all(b"whole").unwrap();
        staged.commit().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new, whole");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn create_new_refuses_an_existing_file_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vendor.key");
        create_new(&path, b"first", Mode::Private).unwrap();
        let err = create_new(&path, b"second", Mode::Private).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"first");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_readable_by_their_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vendor.key");
        create_new(&path, b"secret", Mode::Private).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
