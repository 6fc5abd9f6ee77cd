//! The output folder of a command that reads a run and a folder of inputs (`adn predict`,
//! `export`, `eval`), checked before any work: it may not be, contain or lie inside an
//! input, may not be or contain the run, and an existing one is replaced only under
//! `--force` and only when it is an earlier output of the same command (it holds that
//! command's record, or nothing). `--force` is for redoing a command, not for clearing a
//! folder the user keeps other files in.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};

/// What a command writes and what it reads, for [`check_output`].
pub struct OutputFolder<'a> {
    /// The `--out` folder.
    pub out: &'a Path,
    /// `--force` was given.
    pub force: bool,
    /// The command, as the user typed it (`adn predict`).
    pub command: &'static str,
    /// The record file every output of this command holds (`predict.json`).
    pub record: &'static str,
    /// The run folder read: `out` may lie inside it (the default place), never be or
    /// contain it.
    pub run: &'a Path,
    /// Folders read (images, a dataset), each with what it is: `out` may not be, contain or
    /// lie inside any of them.
    pub inputs: &'a [(&'static str, &'a Path)],
}

/// Refuses an output folder that would overwrite or delete what the command reads, or a
/// folder that is not an earlier output of the command; see the module's documentation.
pub fn check_output(o: &OutputFolder) -> Result<()> {
    let out = absolute(o.out)?;
    let shown = o.out.display();
    let run = absolute(o.run)?;
    if out == run || run.starts_with(&out) {
        bail!(
            "--out {shown} {} the run folder {}: replacing it would delete the run's model and \
             record; choose a folder outside it or a new one inside it",
            if out == run { "is" } else { "contains" },
            o.run.display()
        );
    }
    for (what, input) in o.inputs {
        let input_abs = absolute(input)?;
        let relation = if out == input_abs {
            "is"
        } else if input_abs.starts_with(&out) {
            "contains"
        } else if out.starts_with(&input_abs) {
            "lies inside"
        } else {
            continue;
        };
        bail!(
            "--out {shown} {relation} the {what} {}: {} reads from there, and its output there \
             would {}; choose another --out",
            input.display(),
            o.command,
            if relation == "lies inside" {
                "be read as input the next time"
            } else {
                "replace what it reads"
            }
        );
    }
    match std::fs::symlink_metadata(o.out) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot read --out {shown}")),
        Ok(m) if m.file_type().is_symlink() => bail!(
            "--out {shown} is a symbolic link; give the folder itself (links are not followed \
             when an output is replaced)"
        ),
        Ok(m) if !m.is_dir() => {
            bail!("--out {shown} is a file, not a folder; nothing was replaced")
        }
        Ok(_) if !o.force => {
            bail!("--out {shown} already exists; pass --force to replace it")
        }
        Ok(_) => {
            let earlier_output = o.out.join(o.record).is_file();
            let empty = std::fs::read_dir(o.out)
                .with_context(|| format!("cannot read --out {shown}"))?
                .next()
                .is_none();
            if earlier_output || empty {
                return Ok(());
            }
            bail!(
                "--out {shown} holds files that are not an output of {} (it has no {}); --force \
                 replaces only an earlier output, so nothing there was touched; choose another \
                 --out",
                o.command,
                o.record
            )
        }
    }
}

/// `path` made absolute as the operating system resolves it: each existing prefix with its
/// symbolic links resolved before a following `..` steps up (`link/../x` is the link
/// target's sibling, not `x` beside the link), the part that does not exist yet taken as
/// written. Paths that name one folder compare equal.
fn absolute(path: &Path) -> Result<PathBuf> {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .context("cannot read the working directory")?
            .join(path)
    };
    let mut resolved = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                resolved.pop();
            }
            Component::Normal(name) => {
                resolved.push(name);
                if std::fs::symlink_metadata(&resolved).is_ok()
                    && let Ok(real) = resolved.canonicalize()
                {
                    resolved = real;
                }
            }
            other => resolved.push(other),
        }
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(out: &Path, run: &Path, images: &Path, force: bool) -> Result<()> {
        check_output(&OutputFolder {
            out,
            force,
            command: "adn predict",
            record: "predict.json",
            run,
            inputs: &[("folder of images", images)],
        })
    }

    #[test]
    fn out_may_not_touch_the_inputs_or_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let (run, imgs) = (dir.path().join("run"), dir.path().join("imgs"));
        std::fs::create_dir_all(&run).unwrap();
        std::fs::create_dir_all(imgs.join("cam1")).unwrap();
        let refused = |out: &Path, words: &str| {
            let e = check(out, &run, &imgs, true).unwrap_err().to_string();
            assert!(e.contains(words), "{}: {e}", out.display());
        };
        refused(&imgs, "is the folder of images");
        refused(&imgs.join("cam1/.."), "is the folder of images");
        refused(dir.path(), "contains the run folder");
        refused(&imgs.join("out"), "lies inside the folder of images");
        refused(&run, "is the run folder");
        // The default place, a new folder inside the run, and a new sibling are fine.
        check(&run.join("predict-imgs"), &run, &imgs, false).unwrap();
        check(&dir.path().join("new/out"), &run, &imgs, false).unwrap();
        // Through a symbolic link the same folder is still the same folder, and `..` after
        // a link steps up from its target, as the operating system does.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(imgs.join("cam1"), &link).unwrap();
        refused(&link, "lies inside the folder of images");
        refused(&link.join("../preds"), "lies inside the folder of images");
    }

    #[test]
    fn force_replaces_only_an_earlier_output() {
        let dir = tempfile::tempdir().unwrap();
        let (run, imgs) = (dir.path().join("run"), dir.path().join("imgs"));
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        // Empty: replaced under --force only.
        let e = check(&out, &run, &imgs, false).unwrap_err().to_string();
        assert!(e.contains("pass --force"), "{e}");
        check(&out, &run, &imgs, true).unwrap();
        // A user's files: refused even under --force.
        std::fs::write(out.join("notes.txt"), "mine").unwrap();
        let e = check(&out, &run, &imgs, true).unwrap_err().to_string();
        assert!(e.contains("no predict.json"), "{e}");
        // An earlier prediction: replaced.
        std::fs::write(out.join("predict.json"), "{}").unwrap();
        check(&out, &run, &imgs, true).unwrap();
        // A file in the way.
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let e = check(&file, &run, &imgs, true).unwrap_err().to_string();
        assert!(e.contains("is a file"), "{e}");
    }
}
