//! Files and folders that appear whole or not at all.
//!
//! Everything is first written under a hidden sibling name, `.<name>.partial-<pid>`, and
//! renamed into place once complete. A rename within one folder is atomic on POSIX file
//! systems, so a reader (or a resumed sweep) sees either the old state or the new one, and a
//! killed writer leaves only a hidden leftover that [`is_leftover`] recognises.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The hidden sibling a folder or file is written in before it is renamed to `dest`.
pub fn partial_path(dest: &Path) -> PathBuf {
    sibling(dest, "partial")
}

/// Where an existing `dest` is moved while its replacement is renamed into place.
pub fn old_path(dest: &Path) -> PathBuf {
    sibling(dest, "old")
}

fn sibling(dest: &Path, what: &str) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.{what}-{}", std::process::id()))
}

/// Whether a file name is what an interrupted writer leaves behind (`.<name>.partial-<pid>`
/// or `.<name>.old-<pid>`).
pub fn is_leftover(name: &str) -> bool {
    leftover_of(name).is_some()
}

/// The name a leftover was written for: `abc` for `.abc.partial-12` or `.abc.old-12`;
/// `None` for a name that is not a leftover.
pub fn leftover_of(name: &str) -> Option<&str> {
    let rest = name.strip_prefix('.')?;
    rest.rsplit_once(".partial-")
        .or_else(|| rest.rsplit_once(".old-"))
        .map(|(dest, _)| dest)
}

/// An I/O error that names the path and what was being done.
pub fn context(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// Creates `path`, writes `bytes` and flushes them to the disk. For files inside a folder
/// that is itself being staged; anywhere else use [`write_file`].
pub fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = fs::File::create(path).map_err(|e| context(e, "cannot create", path))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| context(e, "cannot write", path))
}

/// Writes `bytes` to `path` atomically: a hidden temporary file in the same folder, flushed,
/// then renamed over `path`. On error the temporary file is removed and `path` is as it was.
pub fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = partial_path(path);
    let result = write_synced(&tmp, bytes)
        .and_then(|()| fs::rename(&tmp, path).map_err(|e| context(e, "cannot move into", path)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Removes the `.<name>.partial-<pid>` siblings of `dest` that a writer which is no longer
/// running left behind (killed, or aborted inside a library), whatever its pid. A live
/// writer's folder is left alone as far as `/proc` can tell: only on Linux (elsewhere
/// nothing is removed), and only for writers in this host's pid namespace; two hosts (or
/// containers) writing one folder on a shared file system are not told apart. `.old-<pid>` leftovers are never removed here: one may
/// hold the only copy of a folder whose replacement was interrupted.
pub fn sweep_dead_partials(dest: &Path) {
    let (Some(parent), Some(name)) = (dest.parent(), dest.file_name()) else {
        return;
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    if !Path::new("/proc/self").exists() {
        return;
    }
    let prefix = format!(".{}.partial-", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        let Some(pid) = file_name.strip_prefix(&prefix) else {
            continue;
        };
        if pid.parse::<u32>().is_err() || Path::new("/proc").join(pid).exists() {
            continue;
        }
        let path = entry.path();
        let removed = if entry.file_type().is_ok_and(|t| t.is_dir()) {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        if removed.is_ok() {
            note_removed(&path);
        }
    }
}

/// Says on stderr that a leftover was removed (this crate has no logger of its own).
fn note_removed(path: &Path) {
    eprintln!(
        "note: removed {}, left by an interrupted earlier write",
        path.display()
    );
}

/// Fills a hidden temporary sibling of `dir` with `fill`, then renames it to `dir`. An
/// existing folder at `dir` is replaced only when `replace` is set, and only after the new
/// one is complete; on any error the temporary folder is removed and `dir` is untouched.
pub fn commit_folder<E: From<io::Error>>(
    dir: &Path,
    replace: bool,
    fill: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<PathBuf, E> {
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| context(e, "cannot create", parent))?;
    if dir.file_name().is_none() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("output folder {} has no name", dir.display()),
        )
        .into());
    }
    sweep_dead_partials(dir);
    let tmp = partial_path(dir);
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(|e| context(e, "cannot remove", &tmp))?;
    }
    fs::create_dir_all(&tmp).map_err(|e| context(e, "cannot create", &tmp))?;
    if let Err(e) = fill(&tmp) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if fs::symlink_metadata(dir).is_ok_and(|m| !m.is_dir()) {
        // Never move a user's file aside to put a folder in its place.
        let _ = fs::remove_dir_all(&tmp);
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} is a file, not a folder; nothing was replaced",
                dir.display()
            ),
        )
        .into());
    }
    if dir.exists() {
        if !replace {
            let _ = fs::remove_dir_all(&tmp);
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} already exists; pass --force to replace it",
                    dir.display()
                ),
            )
            .into());
        }
        let old = old_path(dir);
        fs::rename(dir, &old).map_err(|e| context(e, "cannot move aside", dir))?;
        fs::rename(&tmp, dir).map_err(|e| context(e, "cannot move the new folder to", dir))?;
        fs::remove_dir_all(&old).map_err(|e| context(e, "cannot remove", &old))?;
    } else {
        fs::rename(&tmp, dir).map_err(|e| context(e, "cannot move the new folder to", dir))?;
    }
    Ok(dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_replaced_whole_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        write_file(&path, b"one").unwrap();
        write_file(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        // A folder in the way: an error naming the path, nothing left behind.
        let blocked = dir.path().join("blocked");
        fs::create_dir(&blocked).unwrap();
        let err = write_file(&blocked, b"x").unwrap_err();
        assert!(err.to_string().contains("blocked"), "{err}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn a_folder_appears_only_when_complete_and_replaces_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        let fill = |text: &'static str| {
            move |tmp: &Path| -> io::Result<()> {
                write_synced(&tmp.join("a.txt"), text.as_bytes())
            }
        };
        commit_folder(&out, false, fill("first")).unwrap();
        let err = commit_folder(&out, false, fill("second")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read_to_string(out.join("a.txt")).unwrap(), "first");
        // A failing fill leaves the old folder and no temporary.
        let err = commit_folder(&out, true, |_: &Path| -> io::Result<()> {
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(fs::read_to_string(out.join("a.txt")).unwrap(), "first");
        commit_folder(&out, true, fill("second")).unwrap();
        assert_eq!(fs::read_to_string(out.join("a.txt")).unwrap(), "second");
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["run"]);
    }

    #[test]
    fn a_file_in_the_way_is_never_replaced_by_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("notes.txt");
        fs::write(&file, "mine").unwrap();
        let err = commit_folder(&file, true, |tmp: &Path| write_synced(&tmp.join("a"), b"x"))
            .unwrap_err();
        assert!(err.to_string().contains("notes.txt"), "{err}");
        assert_eq!(fs::read_to_string(&file).unwrap(), "mine");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_dead_writers_partial_folder_is_swept_and_a_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("export");
        // No process has a pid this large (Linux's pid_max is at most 2^22).
        let dead = dir.path().join(".export.partial-99999999");
        // Process 1 always runs.
        let live = dir.path().join(".export.partial-1");
        let ours_live = dir
            .path()
            .join(format!(".export.partial-{}", std::process::id()));
        for d in [&dead, &live] {
            fs::create_dir_all(d).unwrap();
            fs::write(d.join("model.pt"), b"half").unwrap();
        }
        let old = dir.path().join(".export.old-99999999");
        fs::create_dir_all(&old).unwrap();
        commit_folder(&out, false, |tmp: &Path| write_synced(&tmp.join("a"), b"x")).unwrap();
        assert!(!dead.exists(), "a dead writer's partial folder is swept");
        assert!(live.exists(), "a running writer's is kept");
        assert!(!ours_live.exists());
        assert!(old.exists(), "an .old leftover may be the only copy: kept");
    }

    #[test]
    fn leftovers_are_recognised_by_name() {
        let p = partial_path(Path::new("runs/abc"));
        assert!(is_leftover(&p.file_name().unwrap().to_string_lossy()));
        assert!(is_leftover(&old_path(Path::new("abc")).to_string_lossy()));
        assert!(!is_leftover("abc"));
        assert_eq!(
            leftover_of(&p.file_name().unwrap().to_string_lossy()),
            Some("abc")
        );
        assert_eq!(leftover_of(".abc.old-7"), Some("abc"));
        assert!(!is_leftover(".hidden"));
    }
}
