//! `drydock lessons lint`: passes on the repository's lessons, and rejects each broken fixture
//! lesson (tests/fixtures/lessons-broken) with the file and line of its one problem — both
//! through the library and through the real binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use drydock::lessons::lint;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// One problem per broken lesson: (lesson, what the problem line contains after the folder).
const BROKEN: [(&str, &str); 5] = [
    (
        "bad-check",
        "lessons-broken/bad-check/steps/01-hello/check.sh:6: bash -n: syntax error near unexpected token `fi'",
    ),
    (
        "bad-toml",
        "lessons-broken/bad-toml/lesson.toml:8: invalid lesson.toml:",
    ),
    (
        "differs",
        "lessons-broken/differs/steps/01-hello/zh.md:12: runnable block differs from en.md:12 (`ls -la marker` here, `ls -l marker` there)",
    ),
    (
        "missing-zh",
        "lessons-broken/missing-zh/steps/02-look/zh.md: missing: every step needs en.md and zh.md (step 02-look)",
    ),
    (
        "unknown-image",
        "lessons-broken/unknown-image/lesson.toml:4: image \"docker/nosuch:latest\" is not provided by sandbox/build",
    ),
];

#[test]
fn the_repository_lessons_pass() {
    let r = lint::lint_dir(&repo().join("lessons")).unwrap();
    assert!(r.ok(), "{:#?}", r.problems);
    assert!(r.lessons.iter().any(|l| l == "whalesay"), "{:?}", r.lessons);
    assert!(
        r.lessons.iter().any(|l| l == "dockerfile"),
        "{:?}",
        r.lessons
    );
    let r = lint::lint_dir(&fixtures().join("lessons-ok")).unwrap();
    assert!(r.ok(), "{:#?}", r.problems);
}

#[test]
fn each_broken_lesson_is_rejected_with_file_and_line() {
    let r = lint::lint_dir(&fixtures().join("lessons-broken")).unwrap();
    let got: Vec<String> = r.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(got.len(), BROKEN.len(), "{got:#?}");
    for (lesson, want) in BROKEN {
        let mine: Vec<&String> = got
            .iter()
            .filter(|p| p.contains(&format!("lessons-broken/{lesson}/")))
            .collect();
        assert_eq!(mine.len(), 1, "{lesson}: {got:#?}");
        assert!(
            mine[0].contains(want),
            "{lesson}:\n  got  {}\n  want {want}",
            mine[0]
        );
    }
}

fn drydock(args: &[&str], dir: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_drydock"))
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_command_exits_non_zero_on_any_problem() {
    let (code, out, err) = drydock(&["lessons", "lint", "lessons-broken"], &fixtures());
    assert_eq!(code, 1, "{out}{err}");
    for (_, want) in BROKEN {
        assert!(
            err.lines().any(|l| l.starts_with(want)),
            "no line starting {want:?} in:\n{err}"
        );
    }
    assert!(
        err.contains("5 problem(s) in lessons-broken (5 lesson(s) checked)"),
        "{err}"
    );

    let (code, out, err) = drydock(&["lessons", "lint", "lessons"], &repo());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("ok: "), "{out}");

    let (code, out, err) = drydock(&["lessons", "lint"], &fixtures());
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("in the embedded lessons: whalesay, dockerfile"),
        "{out}"
    );

    let (code, _, err) = drydock(&["lessons", "lint", "no-such-dir"], &fixtures());
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot read lessons directory no-such-dir"),
        "{err}"
    );
}
