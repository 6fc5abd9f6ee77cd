//! Every relative link in every committed Markdown file resolves to a file or folder of the
//! repository, so moving a page or a figure cannot leave a dead link behind.

use std::path::{Component, Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lies in the workspace root")
        .to_path_buf()
}

/// The targets of inline links and images, `[text](target)` and `![alt](target "title")`,
/// outside code spans and fenced blocks.
fn link_targets(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Drop code spans: a `](x)` inside backticks is text.
        let text: String = line
            .split('`')
            .enumerate()
            .filter(|(i, _)| i % 2 == 0)
            .map(|(_, s)| s)
            .collect::<Vec<_>>()
            .join(" ");
        let mut rest = text.as_str();
        while let Some(i) = rest.find("](") {
            rest = &rest[i + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = rest[..end].split_whitespace().next().unwrap_or("");
            out.push(target.to_string());
            rest = &rest[end..];
        }
    }
    out
}

/// `path` with `.` and `..` folded, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[test]
fn every_relative_link_of_every_committed_markdown_file_resolves() {
    let root = repo_root();
    let listed = Command::new("git")
        .args(["ls-files", "-z", "--", "*.md"])
        .current_dir(&root)
        .output()
        .expect("git runs");
    assert!(listed.status.success(), "git ls-files failed");
    let files: Vec<String> = String::from_utf8(listed.stdout)
        .unwrap()
        .split('\0')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    assert!(
        files.iter().any(|f| f == "README.md"),
        "README.md is committed"
    );
    let mut dead = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let dir = Path::new(file).parent().unwrap_or(Path::new(""));
        for target in link_targets(&text) {
            let path = target.split('#').next().unwrap_or("");
            if path.is_empty() || path.contains("://") || path.starts_with("mailto:") {
                continue;
            }
            let resolved = normalize(&dir.join(path));
            checked += 1;
            // Links may reach the team's shared folder beside the checkout (`../shared`),
            // which CI lays there too; nothing else outside the repository.
            let ok = if resolved.starts_with("..") {
                resolved.starts_with("../shared") && root.join(&resolved).exists()
            } else {
                root.join(&resolved).exists()
            };
            if !ok {
                dead.push(format!("{file}: ({target})"));
            }
        }
    }
    assert!(
        checked > 20,
        "only {checked} links found: is the parser broken?"
    );
    assert!(dead.is_empty(), "dead links:\n{}", dead.join("\n"));
}

#[test]
fn links_in_code_are_not_links_and_images_are() {
    let md = "see [a](docs/a.md) and `[b](no.md)`\n```\n[c](no.md)\n```\n![fig](f.png \"t\")";
    assert_eq!(link_targets(md), ["docs/a.md", "f.png"]);
    assert_eq!(
        normalize(Path::new("results/demo/../../docs/x.md")),
        PathBuf::from("docs/x.md")
    );
}
