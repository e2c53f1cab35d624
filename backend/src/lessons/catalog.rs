//! The lessons the server serves: the repository's `lessons/` folder embedded in the binary
//! (rust-embed; debug builds read it from the source tree), replaced or extended by a directory
//! from the configuration (`lessons_dir` / `DRYDOCK_LESSONS_DIR`): a lesson whose id is in the
//! directory replaces the embedded one as a whole, new ids are added.
//!
//! Loading validates every lesson with the same rules as lint (minus `bash -n` and the image
//! list, which need the host or the repository). The server leaves out a lesson with any
//! problem (never half a lesson), logs every problem as an error and serves the others; a
//! directory lesson that is left out also hides the embedded lesson of the same id. A
//! lessons directory that cannot be read stops the server.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use rust_embed::RustEmbed;

use super::manifest::{self, line_of};
use super::markdown::{self, Runnable};
use super::{Check, Lang, Lesson, LessonError, Localized, Problem, Step};

#[derive(RustEmbed)]
#[folder = "../lessons/"]
struct Embedded;

/// Lessons in course order come first in the list (the design's lesson ids, book order); any
/// other lesson follows, by id.
pub const COURSE_ORDER: [&str; 5] = ["whalesay", "dockerfile", "pods", "deployments", "services"];

/// Orders lesson ids: [`COURSE_ORDER`] first, then by id.
pub fn course_order(a: &str, b: &str) -> std::cmp::Ordering {
    let rank = |id: &str| {
        COURSE_ORDER
            .iter()
            .position(|c| *c == id)
            .unwrap_or(COURSE_ORDER.len())
    };
    (rank(a), a).cmp(&(rank(b), b))
}

/// Top-level folders of a lessons tree that are not lessons.
pub const IGNORED_DIRS: [&str; 1] = ["tools"];

/// Largest file a lesson tree may hold.
pub const MAX_FILE_BYTES: usize = 256 * 1024;

/// The files of a lessons tree, by `/`-separated path relative to its root.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    /// How paths are shown in problems (`lessons`, or the directory as given).
    pub root: String,
    pub files: BTreeMap<String, Vec<u8>>,
    /// Every directory (also empty ones), relative.
    pub dirs: BTreeSet<String>,
    /// Files left out because they are larger than [`MAX_FILE_BYTES`].
    pub oversized: BTreeSet<String>,
}

impl Tree {
    /// The lessons embedded in the binary, shown as `lessons/...`.
    pub fn embedded() -> Tree {
        let mut t = Tree {
            root: "lessons".into(),
            ..Tree::default()
        };
        for path in Embedded::iter() {
            if let Some(f) = Embedded::get(&path) {
                t.insert(path.as_ref(), f.data.into_owned());
            }
        }
        t
    }

    /// Reads a directory recursively (hidden entries skipped).
    pub fn read_dir(dir: &Path) -> Result<Tree, LessonError> {
        let mut t = Tree {
            root: dir.display().to_string().trim_end_matches('/').to_owned(),
            ..Tree::default()
        };
        if t.root.is_empty() {
            t.root = "/".into();
        }
        fn walk(t: &mut Tree, base: &Path, rel: &str) -> Result<(), LessonError> {
            let dir = if rel.is_empty() {
                base.to_path_buf()
            } else {
                base.join(rel)
            };
            let err = |source| LessonError::ReadDir {
                path: dir.display().to_string(),
                source,
            };
            let mut entries: Vec<_> = std::fs::read_dir(&dir)
                .map_err(err)?
                .collect::<Result<_, _>>()
                .map_err(err)?;
            entries.sort_by_key(|e| e.file_name());
            for e in entries {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                let path = if rel.is_empty() {
                    name.clone()
                } else {
                    format!("{rel}/{name}")
                };
                let meta = std::fs::metadata(e.path()).map_err(|source| LessonError::ReadDir {
                    path: e.path().display().to_string(),
                    source,
                })?;
                if meta.is_dir() {
                    t.dirs.insert(path.clone());
                    walk(t, base, &path)?;
                } else if meta.len() > MAX_FILE_BYTES as u64 {
                    t.oversized.insert(path);
                } else {
                    let data = std::fs::read(e.path()).map_err(|source| LessonError::ReadDir {
                        path: e.path().display().to_string(),
                        source,
                    })?;
                    t.files.insert(path, data);
                }
            }
            Ok(())
        }
        walk(&mut t, dir, "")?;
        Ok(t)
    }

    /// Adds a file (and its parent directories).
    pub fn insert(&mut self, path: &str, data: Vec<u8>) {
        let mut p = path;
        while let Some((parent, _)) = p.rsplit_once('/') {
            self.dirs.insert(parent.to_owned());
            p = parent;
        }
        self.files.insert(path.to_owned(), data);
    }

    /// How `rel` is shown in problems.
    pub fn show(&self, rel: &str) -> String {
        if rel.is_empty() {
            self.root.clone()
        } else {
            format!("{}/{rel}", self.root)
        }
    }

    /// Names directly inside directory `rel` (`""` = the root): (files, directories).
    pub fn children(&self, rel: &str) -> (Vec<String>, Vec<String>) {
        let prefix = if rel.is_empty() {
            String::new()
        } else {
            format!("{rel}/")
        };
        let direct = |p: &String| {
            p.strip_prefix(&prefix)
                .filter(|r| !r.is_empty() && !r.contains('/'))
                .map(str::to_owned)
        };
        (
            self.files.keys().filter_map(direct).collect(),
            self.dirs.iter().filter_map(direct).collect(),
        )
    }

    /// The lesson folders (top-level directories other than [`IGNORED_DIRS`]).
    pub fn lesson_dirs(&self) -> Vec<String> {
        self.children("")
            .1
            .into_iter()
            .filter(|d| !IGNORED_DIRS.contains(&d.as_str()) && !d.starts_with('.'))
            .collect()
    }
}

/// The outcome of reading one lesson folder.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The lesson folder (its id when valid).
    pub id: String,
    /// The lesson, when nothing in it is wrong.
    pub lesson: Option<Lesson>,
    pub problems: Vec<Problem>,
    /// `lesson.toml` as shown in problems.
    pub manifest_file: String,
    /// The manifest's `images`, with the line of each (for lint).
    pub images: Vec<(String, usize)>,
    /// The step check scripts found: (file shown, script), for lint's `bash -n`.
    pub checks: Vec<(String, String)>,
}

/// Reads and validates the lesson in folder `id` of `tree`.
pub fn load_lesson(tree: &Tree, id: &str) -> Loaded {
    let mut out = Loaded {
        id: id.to_owned(),
        ..Loaded::default()
    };
    let toml_rel = format!("{id}/lesson.toml");
    let toml_file = tree.show(&toml_rel);
    out.manifest_file = toml_file.clone();
    let Some(bytes) = tree.files.get(&toml_rel) else {
        out.problems.push(Problem::new(
            tree.show(id),
            None,
            "not a lesson: there is no lesson.toml in it",
        ));
        return out;
    };
    let Some(text) = utf8(bytes, &toml_file, &mut out.problems) else {
        return out;
    };
    let (manifest, problems) = manifest::parse(text, id, &toml_file);
    out.problems.extend(problems);
    let Some(m) = manifest else { return out };
    out.images = m
        .images
        .iter()
        .map(|i| (i.get_ref().clone(), line_of(text, i.span().start)))
        .collect();

    // The lesson folder holds lesson.toml and steps/, nothing else.
    let (files, dirs) = tree.children(id);
    for f in files.iter().filter(|f| *f != "lesson.toml") {
        out.problems.push(Problem::new(
            tree.show(&format!("{id}/{f}")),
            None,
            "unexpected file: a lesson folder holds lesson.toml and steps/ only",
        ));
    }
    for d in dirs.iter().filter(|d| *d != "steps") {
        out.problems.push(Problem::new(
            tree.show(&format!("{id}/{d}")),
            None,
            "unexpected folder: a lesson folder holds lesson.toml and steps/ only",
        ));
    }
    let steps_rel = format!("{id}/steps");
    let (stray, folders) = tree.children(&steps_rel);
    for f in stray {
        out.problems.push(Problem::new(
            tree.show(&format!("{steps_rel}/{f}")),
            None,
            "unexpected file: steps/ holds one folder per step (01-<id>, 02-<id>, …)",
        ));
    }
    let entries = m.steps.get_ref();
    let expected: Vec<String> = entries
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{:02}-{}", i + 1, s.id.get_ref()))
        .collect();
    for f in &folders {
        if expected.contains(f) {
            continue;
        }
        let n = f
            .split_once('-')
            .and_then(|(n, _)| n.parse::<usize>().ok())
            .filter(|n| (1..=entries.len()).contains(n));
        let why = match n {
            Some(n) => format!(
                "step folder does not match step {n} of lesson.toml (id {:?}): expected {}",
                entries[n - 1].id.get_ref(),
                expected[n - 1]
            ),
            None => format!(
                "extra step folder: lesson.toml lists {} steps ({})",
                entries.len(),
                expected.join(", ")
            ),
        };
        out.problems.push(Problem::new(
            tree.show(&format!("{steps_rel}/{f}")),
            None,
            why,
        ));
    }

    let mut steps = Vec::new();
    for (i, (entry, folder)) in entries.iter().zip(&expected).enumerate() {
        let rel = format!("{steps_rel}/{folder}");
        if !folders.contains(folder) {
            out.problems.push(Problem::new(
                &toml_file,
                Some(line_of(text, entry.id.span().start)),
                format!(
                    "step {} ({:?}) has no folder: create {}",
                    i + 1,
                    entry.id.get_ref(),
                    tree.show(&rel)
                ),
            ));
            continue;
        }
        if let Some(step) = load_step(tree, &rel, folder, entry, &mut out) {
            steps.push(step);
        }
    }

    if out.problems.is_empty() {
        out.lesson = Some(Lesson {
            id: id.to_owned(),
            template: m.template,
            minutes: *m.minutes.get_ref() as u32,
            images: m.images.iter().map(|i| i.get_ref().clone()).collect(),
            title: Localized {
                en: m.title.en.get_ref().trim().to_owned(),
                zh: m.title.zh.get_ref().trim().to_owned(),
            },
            summary: Localized {
                en: m.summary.en.get_ref().trim().to_owned(),
                zh: m.summary.zh.get_ref().trim().to_owned(),
            },
            steps,
            origin: tree.root.clone(),
        });
    }
    out
}

fn utf8<'a>(bytes: &'a [u8], shown: &str, problems: &mut Vec<Problem>) -> Option<&'a str> {
    match std::str::from_utf8(bytes) {
        Ok(t) => {
            if let Some(i) = t.find('\r') {
                problems.push(Problem::new(
                    shown,
                    Some(line_of(t, i)),
                    "carriage return: lesson files use LF line ends",
                ));
            }
            Some(t)
        }
        Err(e) => {
            let line = line_of(
                &String::from_utf8_lossy(&bytes[..e.valid_up_to()]),
                usize::MAX,
            );
            problems.push(Problem::new(shown, Some(line), "not UTF-8 text"));
            None
        }
    }
}

fn load_step(
    tree: &Tree,
    rel: &str,
    folder: &str,
    entry: &manifest::StepEntry,
    out: &mut Loaded,
) -> Option<Step> {
    let check_name = entry.check.as_ref().map(|c| c.get_ref().clone());
    let (files, dirs) = tree.children(rel);
    for f in &files {
        if f == "en.md" || f == "zh.md" || Some(f) == check_name.as_ref() {
            continue;
        }
        let why = if f.ends_with(".sh") && check_name.is_none() {
            "unexpected file: lesson.toml sets no check for this step (add check = \"…\")"
        } else {
            "unexpected file: a step folder holds en.md, zh.md and its check only"
        };
        out.problems
            .push(Problem::new(tree.show(&format!("{rel}/{f}")), None, why));
    }
    for d in &dirs {
        out.problems.push(Problem::new(
            tree.show(&format!("{rel}/{d}")),
            None,
            "unexpected folder inside a step folder",
        ));
    }

    let mut rendered: Vec<(Lang, String, markdown::Rendered)> = Vec::new();
    for lang in Lang::ALL {
        let file_rel = format!("{rel}/{}", lang.file());
        let shown = tree.show(&file_rel);
        let Some(bytes) = tree.files.get(&file_rel) else {
            out.problems.push(Problem::new(
                &shown,
                None,
                format!("missing: every step needs en.md and zh.md (step {folder})"),
            ));
            continue;
        };
        let Some(md) = utf8(bytes, &shown, &mut out.problems) else {
            continue;
        };
        let r = markdown::render(md);
        for (line, msg) in &r.problems {
            out.problems
                .push(Problem::new(&shown, Some(*line), msg.clone()));
        }
        rendered.push((lang, shown, r));
    }
    if let [(_, en_file, en), (_, zh_file, zh)] = rendered.as_slice() {
        compare_runnable(
            en_file,
            &en.runnable,
            zh_file,
            &zh.runnable,
            &mut out.problems,
        );
    }

    let check = match &entry.check {
        None => None,
        Some(c) => {
            let file_rel = format!("{rel}/{}", c.get_ref());
            let shown = tree.show(&file_rel);
            match tree.files.get(&file_rel) {
                None => {
                    out.problems.push(Problem::new(
                        &shown,
                        None,
                        format!(
                            "missing: lesson.toml names {:?} as this step's check",
                            c.get_ref()
                        ),
                    ));
                    None
                }
                Some(bytes) => match utf8(bytes, &shown, &mut out.problems) {
                    None => None,
                    Some(script) => {
                        if script.lines().next().map(str::trim_end) != Some("#!/usr/bin/env bash") {
                            out.problems.push(Problem::new(
                                &shown,
                                Some(1),
                                "a check starts with the line #!/usr/bin/env bash",
                            ));
                        }
                        out.checks.push((shown.clone(), script.to_owned()));
                        Some(Check {
                            file: c.get_ref().clone(),
                            script: script.to_owned(),
                        })
                    }
                },
            }
        }
    };

    let mut by_lang: HashMap<Lang, markdown::Rendered> =
        rendered.into_iter().map(|(l, _, r)| (l, r)).collect();
    let en = by_lang.remove(&Lang::En)?;
    let zh = by_lang.remove(&Lang::Zh)?;
    Some(Step {
        id: entry.id.get_ref().clone(),
        folder: folder.to_owned(),
        title: Localized {
            en: en.title.clone().unwrap_or_default(),
            zh: zh.title.clone().unwrap_or_default(),
        },
        commands: en.runnable.iter().map(|r| r.text.clone()).collect(),
        html: Localized {
            en: en.html,
            zh: zh.html,
        },
        check,
    })
}

fn short(s: &str) -> String {
    let one: String = s.replace('\n', "⏎");
    if one.chars().count() > 60 {
        format!("{}…", one.chars().take(60).collect::<String>())
    } else {
        one
    }
}

/// Runnable blocks must be identical, in the same order, in both languages; problems are
/// reported on the zh.md side.
fn compare_runnable(
    en_file: &str,
    en: &[Runnable],
    zh_file: &str,
    zh: &[Runnable],
    problems: &mut Vec<Problem>,
) {
    let en_name = en_file.rsplit('/').next().unwrap_or(en_file);
    for (a, b) in en.iter().zip(zh) {
        if a.text != b.text {
            problems.push(Problem::new(
                zh_file,
                Some(b.line),
                format!(
                    "runnable block differs from {en_name}:{} (`{}` here, `{}` there)",
                    a.line,
                    short(&b.text),
                    short(&a.text)
                ),
            ));
        }
    }
    if en.len() != zh.len() {
        let (line, what) = if zh.len() < en.len() {
            let missing = &en[zh.len()];
            (
                zh.last().map(|r| r.line).unwrap_or(1),
                format!(
                    "missing runnable block `{}` of {en_name}:{}",
                    short(&missing.text),
                    missing.line
                ),
            )
        } else {
            let extra = &zh[en.len()];
            (
                extra.line,
                format!(
                    "runnable block `{}` is not in {en_name}",
                    short(&extra.text)
                ),
            )
        };
        problems.push(Problem::new(
            zh_file,
            Some(line),
            format!(
                "{} runnable blocks here, {} in {en_name} (they must be the same): {what}",
                zh.len(),
                en.len()
            ),
        ));
    }
}

/// Reads every lesson of a tree: the lessons without problems, and all problems found.
pub fn scan(tree: &Tree) -> (Vec<Lesson>, Vec<Loaded>) {
    let mut lessons = Vec::new();
    let mut loaded = Vec::new();
    if !tree.oversized.is_empty() {
        loaded.push(Loaded {
            problems: tree
                .oversized
                .iter()
                .map(|f| {
                    Problem::new(
                        tree.show(f),
                        None,
                        format!("larger than {} KiB: not read", MAX_FILE_BYTES / 1024),
                    )
                })
                .collect(),
            ..Loaded::default()
        });
    }
    for id in tree.lesson_dirs() {
        let mut l = load_lesson(tree, &id);
        if let Some(lesson) = l.lesson.take() {
            lessons.push(lesson);
        }
        loaded.push(l);
    }
    (lessons, loaded)
}

/// The lessons a server serves, in course order.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    lessons: Vec<Arc<Lesson>>,
    /// Why lessons were left out.
    problems: Vec<Problem>,
}

impl Catalog {
    /// From one tree; fails listing every problem if anything in it is wrong.
    pub fn from_tree(tree: &Tree) -> Result<Catalog, LessonError> {
        let (lessons, loaded) = scan(tree);
        let problems: Vec<Problem> = loaded.into_iter().flat_map(|l| l.problems).collect();
        if !problems.is_empty() {
            return Err(LessonError::Invalid {
                origin: tree.root.clone(),
                problems,
            });
        }
        Ok(Catalog::from_lessons(lessons))
    }

    /// The embedded lessons (the valid ones; see [`Catalog::load`]).
    pub fn embedded() -> Result<Catalog, LessonError> {
        Catalog::load(None)
    }

    /// Only the lessons of a directory, all of them valid (tests).
    pub fn from_dir(dir: &Path) -> Result<Catalog, LessonError> {
        Catalog::from_tree(&Tree::read_dir(dir)?)
    }

    /// The embedded lessons, with those of `dir` (if given) replacing the ones of the same id
    /// and adding new ones. Lessons with problems are left out (logged, and kept in
    /// [`Catalog::problems`]); only an unreadable directory is an error.
    pub fn load(dir: Option<&Path>) -> Result<Catalog, LessonError> {
        let mut by_id: BTreeMap<String, Lesson> = BTreeMap::new();
        let mut problems = Vec::new();
        let mut trees = vec![Tree::embedded()];
        if let Some(dir) = dir {
            trees.push(Tree::read_dir(dir)?);
        }
        for tree in &trees {
            let (lessons, loaded) = scan(tree);
            for l in loaded.into_iter().filter(|l| !l.problems.is_empty()) {
                tracing::error!(
                    lesson = %l.id,
                    from = %tree.root,
                    problems = l.problems.len(),
                    "lesson left out: `drydock lessons lint` shows why"
                );
                for p in &l.problems {
                    tracing::error!("{p}");
                }
                by_id.remove(&l.id);
                problems.extend(l.problems);
            }
            for l in lessons {
                by_id.insert(l.id.clone(), l);
            }
        }
        let mut c = Catalog::from_lessons(by_id.into_values().collect());
        c.problems = problems;
        Ok(c)
    }

    pub fn from_lessons(mut lessons: Vec<Lesson>) -> Catalog {
        lessons.sort_by(|a, b| course_order(&a.id, &b.id));
        Catalog {
            lessons: lessons.into_iter().map(Arc::new).collect(),
            problems: Vec::new(),
        }
    }

    /// Why lessons were left out when loading.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    pub fn lessons(&self) -> &[Arc<Lesson>] {
        &self.lessons
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Lesson>> {
        self.lessons.iter().find(|l| l.id == id)
    }

    /// The lesson, or [`LessonError::NotFound`].
    pub fn lesson(&self, id: &str) -> Result<&Arc<Lesson>, LessonError> {
        self.get(id)
            .ok_or_else(|| LessonError::NotFound(id.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_lessons_load_in_course_order() {
        let c = Catalog::embedded().unwrap_or_else(|e| panic!("{e}"));
        let ids: Vec<&str> = c.lessons().iter().map(|l| l.id.as_str()).collect();
        assert_eq!(&ids[..2], ["whalesay", "dockerfile"]);
        let w = c.get("whalesay").unwrap();
        assert_eq!(w.steps.len(), 4);
        assert_eq!(w.steps[0].folder, "01-pull");
        assert_eq!(w.steps[0].title.en, "Pull your first image");
        assert_eq!(w.steps[0].title.zh, "拉取你的第一个镜像");
        assert_eq!(w.steps[0].commands, ["docker pull docker/whalesay"]);
        assert!(w.steps[0]
            .check
            .as_ref()
            .unwrap()
            .script
            .starts_with("#!/usr/bin/env bash"));
        assert!(w.steps[0].html.zh.contains(
            "<pre><code class=\"language-sh runnable\">docker pull docker/whalesay</code></pre>"
        ));
        let d = c.get("dockerfile").unwrap();
        assert_eq!(d.steps[0].commands, ["vi Dockerfile", "cat Dockerfile"]);
        assert_eq!(d.origin, "lessons");
    }

    #[test]
    fn a_directory_replaces_and_extends_the_embedded_lessons() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Tree::embedded();
        // A changed copy of whalesay and a new lesson.
        let toml = String::from_utf8(t.files["whalesay/lesson.toml"].clone()).unwrap();
        t.files.insert(
            "whalesay/lesson.toml".into(),
            toml.replace("minutes = 15", "minutes = 42").into_bytes(),
        );
        for (p, d) in &t.files {
            if !p.starts_with("whalesay/") {
                continue;
            }
            let to = dir.path().join(p);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::write(&to, d).unwrap();
            let other = dir.path().join(p.replacen("whalesay", "zeta", 1));
            std::fs::create_dir_all(other.parent().unwrap()).unwrap();
            let d = if p.ends_with("lesson.toml") {
                String::from_utf8(d.clone())
                    .unwrap()
                    .replace("id = \"whalesay\"", "id = \"zeta\"")
                    .into_bytes()
            } else {
                d.clone()
            };
            std::fs::write(other, d).unwrap();
        }
        let c = Catalog::load(Some(dir.path())).unwrap_or_else(|e| panic!("{e}"));
        let ids: Vec<&str> = c.lessons().iter().map(|l| l.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "whalesay",
                "dockerfile",
                "pods",
                "deployments",
                "services",
                "zeta"
            ]
        );
        assert_eq!(c.get("whalesay").unwrap().minutes, 42);
        assert_eq!(
            c.get("whalesay").unwrap().origin,
            dir.path().display().to_string()
        );
        assert_eq!(c.get("dockerfile").unwrap().origin, "lessons");
    }

    #[test]
    fn broken_lessons_are_left_out_with_their_problems() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("x/steps/01-a")).unwrap();
        std::fs::write(dir.path().join("x/lesson.toml"), "id = \"x\"\n").unwrap();
        // A broken replacement hides the embedded lesson of the same id.
        std::fs::create_dir_all(dir.path().join("whalesay")).unwrap();
        std::fs::write(dir.path().join("whalesay/lesson.toml"), "id = 1\n").unwrap();
        let c = Catalog::load(Some(dir.path())).unwrap();
        assert!(c.get("x").is_none() && c.get("whalesay").is_none());
        assert!(c.get("dockerfile").is_some());
        let shown: Vec<String> = c.problems().iter().map(|p| p.to_string()).collect();
        assert!(
            shown[1].contains("x/lesson.toml:1: invalid lesson.toml: missing field"),
            "{shown:?}"
        );
        assert!(
            shown[0].contains("whalesay/lesson.toml:1: invalid lesson.toml"),
            "{shown:?}"
        );
        let e = Catalog::from_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("2 problem(s)"), "{e}");
        assert!(matches!(
            Catalog::load(Some(&dir.path().join("nope"))),
            Err(LessonError::ReadDir { .. })
        ));
    }
}
