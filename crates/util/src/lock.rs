//! One owner at a time: an advisory lock (`flock`) on a hidden sibling file of what is being
//! written, `.<name>.lock`.
//!
//! The kernel releases the lock when its process dies, however it dies, so a lock left by a
//! killed process is simply free: the next owner takes it over. The file names its holder
//! (pid and command) for the message a refused process prints. The owner removes the file
//! while still holding the lock; a waiter that then gets the lock of the removed file sees
//! that the path no longer leads to it and starts again, so two processes never both own a
//! path.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A held lock; released (and its file removed) when dropped.
#[derive(Debug)]
pub struct Lock {
    file: File,
    path: PathBuf,
}

/// The lock file guarding `target`: `.<name>.lock` beside it.
pub fn lock_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.lock"))
}

/// Takes the lock of `target` or fails at once: `ErrorKind::WouldBlock` with a message
/// naming `what`, the lock file and the process holding it.
pub fn try_lock(target: &Path, what: &str) -> io::Result<Lock> {
    acquire(target, what, false)
}

/// Takes the lock of `target`, waiting for its holder to finish.
pub fn lock_waiting(target: &Path, what: &str) -> io::Result<Lock> {
    acquire(target, what, true)
}

fn acquire(target: &Path, what: &str, wait: bool) -> io::Result<Lock> {
    let path = lock_path(target);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .map_err(|e| crate::atomic::context(e, "cannot create", parent))?;
    }
    loop {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| crate::atomic::context(e, "cannot open the lock", &path))?;
        if wait {
            file.lock()
                .map_err(|e| crate::atomic::context(e, "cannot lock", &path))?;
        } else if let Err(e) = file.try_lock() {
            return Err(match e {
                fs::TryLockError::WouldBlock => {
                    let holder = fs::read_to_string(&path).unwrap_or_default();
                    let holder = holder.trim();
                    io::Error::new(
                        io::ErrorKind::WouldBlock,
                        format!(
                            "{what} is in use by another process ({}; lock {}); wait for it to \
                             finish or stop it",
                            if holder.is_empty() { "unknown" } else { holder },
                            path.display()
                        ),
                    )
                }
                fs::TryLockError::Error(e) => crate::atomic::context(e, "cannot lock", &path),
            });
        }
        // The previous owner may have removed the file between our open and our lock.
        let same = match (file.metadata(), fs::metadata(&path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        };
        if !same {
            continue;
        }
        let mut lock = Lock { file, path };
        lock.name_holder();
        return Ok(lock);
    }
}

impl Lock {
    /// Best effort: only the message of a refused process depends on it.
    fn name_holder(&mut self) {
        let command: Vec<String> = std::env::args().take(3).collect();
        let _ = self.file.set_len(0);
        let _ = writeln!(
            self.file,
            "pid {}: {}",
            std::process::id(),
            command.join(" ")
        );
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_owner_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("exp");
        let first = try_lock(&target, "experiment exp").unwrap();
        let err = try_lock(&target, "experiment exp").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        let msg = err.to_string();
        assert!(msg.contains("experiment exp is in use"), "{msg}");
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        drop(first);
        assert!(!lock_path(&target).exists(), "the lock file is removed");
        let again = try_lock(&target, "experiment exp").unwrap();
        drop(again);
    }

    #[test]
    fn a_waiter_gets_the_lock_when_the_holder_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("data");
        let held = try_lock(&target, "dataset").unwrap();
        let t = target.clone();
        let waiter = std::thread::spawn(move || {
            let _l = lock_waiting(&t, "dataset").unwrap();
            std::time::Instant::now()
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        let released = std::time::Instant::now();
        drop(held);
        assert!(waiter.join().unwrap() >= released);
    }

    #[test]
    fn a_lock_file_left_by_a_dead_process_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("exp");
        fs::write(lock_path(&target), "pid 1: adn sweep\n").unwrap();
        let lock = try_lock(&target, "experiment").unwrap();
        drop(lock);
    }
}
