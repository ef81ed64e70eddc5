//! Exclusive locks on the trees avm writes (the data tree, a detector's model directory, the
//! registry), so two `avm` processes never write the same outputs at once.
//!
//! A lock is an advisory OS file lock (`flock`) on `<dir>/.avm.lock`, held for as long as the
//! [`DirLock`] lives and released by the OS when the process ends, however it ends: a killed
//! run leaves no stale lock. The file holds who took it (pid, command, time) so the error of a
//! second process can say who is in the way.

use crate::error::UsageError;
use anyhow::{Context, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Name of the lock file inside a locked directory.
pub const LOCK_FILE: &str = ".avm.lock";

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// Takes the lock of `dir` (creating `dir` if needed) for `command`, or fails at once
    /// with a [`UsageError`] naming the holder.
    pub fn acquire(dir: &Path, command: &str) -> Result<DirLock> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating directory {}", dir.display()))?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(UsageError(format!(
                    "{} is in use by another avm process ({}); wait until it finishes",
                    dir.display(),
                    if holder.is_empty() { "holder unknown" } else { holder }
                ))
                .into());
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()));
            }
        }
        let who = format!("pid {}, `avm {command}`, since {}", std::process::id(), crate::io::now_rfc3339());
        file.set_len(0).with_context(|| format!("writing {}", path.display()))?;
        file.rewind().with_context(|| format!("writing {}", path.display()))?;
        file.write_all(who.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
        Ok(DirLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_with_the_first_named() {
        let d = tempfile::tempdir().unwrap();
        let a = DirLock::acquire(d.path(), "preprocess").unwrap();
        let e = DirLock::acquire(d.path(), "featurize").unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("in use by another avm process") && msg.contains("`avm preprocess`"), "{msg}");
        assert!(e.downcast_ref::<UsageError>().is_some());
        drop(a);
        DirLock::acquire(d.path(), "featurize").unwrap();
    }
}
