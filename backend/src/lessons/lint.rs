//! `drydock lessons lint [DIR]`: validates a lessons tree (default: the lessons embedded in
//! the binary) and prints every problem as `file:line: message`. On top of what the
//! [`catalog`](super::catalog) refuses to serve, lint runs `bash -n` on every check script and
//! makes sure every image a lesson lists is one `sandbox/build` provides: the `IMAGE=name:tag`
//! lines of `sandbox/images/*/build.sh`, read from the repository when DIR is inside a checkout,
//! otherwise from the copies embedded in the binary.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rust_embed::RustEmbed;

use super::catalog::{course_order, scan, Tree};
use super::{LessonError, Problem};

/// The lesson image build scripts, as of this binary's build.
#[derive(RustEmbed)]
#[folder = "../sandbox/images/"]
#[include = "*/build.sh"]
struct BuildScripts;

/// The `IMAGE=name:tag` values of a build script (optionally `readonly`, quotes allowed, one
/// per line).
pub fn declared_images(script: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in script.lines() {
        let l = line.trim();
        let l = l.strip_prefix("readonly ").unwrap_or(l);
        if let Some(v) = l.strip_prefix("IMAGE=") {
            let v = v.split_whitespace().next().unwrap_or_default();
            let v = v.trim_matches(|c| c == '"' || c == '\'');
            if !v.is_empty() && !v.contains('$') {
                found.push(v.to_owned());
            }
        }
    }
    found
}

/// Which images lessons may list, and where that list came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSet {
    pub images: Vec<String>,
    /// `sandbox/images` folder, or `built-in list`.
    pub from: String,
}

impl ImageSet {
    /// The images of the build scripts embedded in this binary.
    pub fn known() -> ImageSet {
        let mut images: Vec<String> = Vec::new();
        for path in BuildScripts::iter() {
            if let Some(f) = BuildScripts::get(&path) {
                for img in declared_images(&String::from_utf8_lossy(&f.data)) {
                    if !images.contains(&img) {
                        images.push(img);
                    }
                }
            }
        }
        ImageSet {
            images,
            from: "sandbox/images as built into this binary".into(),
        }
    }

    /// The images declared by `<images>/*/build.sh`.
    pub fn discover(images: &Path) -> std::io::Result<ImageSet> {
        let mut found: Vec<String> = Vec::new();
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(images)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for d in dirs {
            let Ok(text) = std::fs::read_to_string(d.join("build.sh")) else {
                continue;
            };
            for img in declared_images(&text) {
                if !found.contains(&img) {
                    found.push(img);
                }
            }
        }
        Ok(ImageSet {
            images: found,
            from: images.display().to_string(),
        })
    }

    /// For a lessons directory: the repository's `sandbox/images` if DIR is inside a checkout
    /// that has one, else the embedded list.
    pub fn for_dir(dir: &Path) -> ImageSet {
        let abs = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        for a in abs.ancestors() {
            let images = a.join("sandbox/images");
            if images.is_dir() {
                if let Ok(set) = ImageSet::discover(&images) {
                    return set;
                }
            }
        }
        ImageSet::known()
    }
}

/// What lint found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Ids of the lessons that were looked at.
    pub lessons: Vec<String>,
    pub problems: Vec<Problem>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Lints every lesson of a tree.
pub fn lint_tree(tree: &Tree, images: &ImageSet) -> Report {
    let mut report = Report::default();
    let (_, loaded) = scan(tree);
    report.lessons = tree.lesson_dirs();
    report.lessons.sort_by(|a, b| course_order(a, b));
    for l in loaded {
        report.problems.extend(l.problems);
        for (img, line) in &l.images {
            if !images.images.contains(img) {
                report.problems.push(Problem::new(
                    l.manifest_file.clone(),
                    Some(*line),
                    format!(
                        "image {img:?} is not provided by sandbox/build (images from {}: {})",
                        images.from,
                        if images.images.is_empty() {
                            "none".to_owned()
                        } else {
                            images.images.join(", ")
                        }
                    ),
                ));
            }
        }
        for (file, script) in &l.checks {
            report.problems.extend(bash_syntax(file, script));
        }
    }
    report
}

/// Lints a lessons directory.
pub fn lint_dir(dir: &Path) -> Result<Report, LessonError> {
    let tree = Tree::read_dir(dir)?;
    Ok(lint_tree(&tree, &ImageSet::for_dir(dir)))
}

/// Lints the lessons embedded in this binary.
pub fn lint_embedded() -> Report {
    lint_tree(&Tree::embedded(), &ImageSet::known())
}

/// `bash -n` on a check script; problems carry the line bash names.
pub fn bash_syntax(file: &str, script: &str) -> Vec<Problem> {
    let child = Command::new("bash")
        .args(["-n", "/dev/stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return vec![Problem::new(file, None, format!("cannot run bash -n: {e}"))],
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A write error shows up as bash's own complaint (or its exit status).
        let _ = stdin.write_all(script.as_bytes());
    }
    let out = match child.wait_with_output() {
        Ok(o) => o,
        Err(e) => return vec![Problem::new(file, None, format!("bash -n failed: {e}"))],
    };
    if out.status.success() {
        return Vec::new();
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut line = None;
    let mut messages = Vec::new();
    for l in stderr.lines() {
        let rest = l.strip_prefix("/dev/stdin: ").unwrap_or(l);
        let rest = match rest.strip_prefix("line ").and_then(|r| r.split_once(": ")) {
            Some((n, msg)) => {
                if line.is_none() {
                    line = n.parse().ok();
                }
                msg
            }
            None => rest,
        };
        messages.push(rest.trim().to_owned());
    }
    let msg = if messages.is_empty() {
        format!("bash -n failed ({})", out.status)
    } else {
        format!("bash -n: {}", messages.join("; "))
    };
    vec![Problem::new(file, line, msg)]
}

/// The command: lints DIR (or the embedded lessons), prints problems to `err` and a summary to
/// `out`; true when there is no problem.
pub fn run(dir: Option<&Path>, out: &mut dyn Write, err: &mut dyn Write) -> bool {
    let (report, what) = match dir {
        Some(d) => match lint_dir(d) {
            Ok(r) => (r, d.display().to_string()),
            Err(e) => {
                let _ = writeln!(err, "error: {e}");
                return false;
            }
        },
        None => (lint_embedded(), "the embedded lessons".to_owned()),
    };
    for p in &report.problems {
        let _ = writeln!(err, "{p}");
    }
    if report.ok() {
        let _ = writeln!(
            out,
            "ok: {} lesson(s) in {what}: {}",
            report.lessons.len(),
            report.lessons.join(", ")
        );
        true
    } else {
        let _ = writeln!(
            err,
            "{} problem(s) in {what} ({} lesson(s) checked)",
            report.problems.len(),
            report.lessons.len()
        );
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bash_syntax_errors_name_the_line() {
        let p = bash_syntax(
            "c.sh",
            "#!/usr/bin/env bash\nif true; then\n  echo x\nfi fi\n",
        );
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].line, Some(4), "{p:?}");
        assert!(
            p[0].to_string()
                .starts_with("c.sh:4: bash -n: syntax error"),
            "{}",
            p[0]
        );
        assert!(bash_syntax("ok.sh", "#!/usr/bin/env bash\necho ok\n").is_empty());
    }

    #[test]
    fn images_come_from_the_build_scripts() {
        assert_eq!(
            declared_images(
                "set -e\nreadonly IMAGE=docker/whalesay:latest\nIMAGE=\"a/b:1\" && x+=(1)\nIMAGE=$X\n"
            ),
            ["docker/whalesay:latest", "a/b:1"]
        );
        let known = ImageSet::known();
        assert!(
            known.images.contains(&"docker/whalesay:latest".to_owned()),
            "{known:?}"
        );
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let from_lessons = ImageSet::for_dir(&repo.join("lessons"));
        assert!(
            from_lessons.from.ends_with("sandbox/images"),
            "{}",
            from_lessons.from
        );
        let discovered = ImageSet::discover(&repo.join("sandbox/images")).unwrap();
        assert_eq!(from_lessons.images, discovered.images);
        assert!(from_lessons
            .images
            .contains(&"docker/whalesay:latest".to_owned()));
        let elsewhere = tempfile::tempdir().unwrap();
        assert_eq!(ImageSet::for_dir(elsewhere.path()), known);
    }

    #[test]
    fn embedded_lessons_pass() {
        let r = lint_embedded();
        assert!(r.ok(), "{:#?}", r.problems);
        assert!(r.lessons.contains(&"whalesay".to_owned()));
    }
}
