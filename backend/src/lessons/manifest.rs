//! `lesson.toml`, the lesson manifest (format in `lessons/README.md`): parsed with serde
//! (unknown keys are an error), then validated field by field. Every problem names the file
//! and the line of the offending value.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::Problem;

/// Most steps a lesson may have.
pub const MAX_STEPS: usize = 30;
/// `minutes` must be in this range.
pub const MINUTES: std::ops::RangeInclusive<i64> = 1..=240;

/// The kind of session a lesson runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Template {
    Docker,
    Kubernetes,
}

impl Template {
    pub fn as_str(self) -> &'static str {
        match self {
            Template::Docker => "docker",
            Template::Kubernetes => "kubernetes",
        }
    }
}

/// `lesson.toml` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub id: Spanned<String>,
    pub template: Template,
    pub minutes: Spanned<i64>,
    #[serde(default)]
    pub images: Vec<Spanned<String>>,
    pub title: Texts,
    pub summary: Texts,
    pub steps: Spanned<Vec<StepEntry>>,
}

/// One string per language (`[title]`, `[summary]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Texts {
    pub en: Spanned<String>,
    pub zh: Spanned<String>,
}

/// One `[[steps]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepEntry {
    pub id: Spanned<String>,
    #[serde(default)]
    pub check: Option<Spanned<String>>,
}

/// 1-based line of byte `offset` in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Lesson and step ids: `^[a-z][a-z0-9-]{0,31}$`.
pub fn valid_id(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 32
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// An `images` entry: `name:tag`, lower-case path components, no registry host, no digest.
pub fn valid_image_ref(r: &str) -> Result<(), String> {
    if r.contains('@') {
        return Err("digests are not supported: write name:tag".into());
    }
    let (name, tag) = match r.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, t),
        _ => {
            return Err(
                "no tag: write the full reference name:tag, e.g. docker/whalesay:latest".into(),
            )
        }
    };
    if tag.is_empty()
        || tag.len() > 128
        || !tag
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
    {
        return Err(format!("invalid tag {tag:?}"));
    }
    let parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 1 && (parts[0].contains('.') || parts[0] == "localhost") {
        return Err(format!(
            "{:?} is a registry host: images come from the mirror, write the name without it",
            parts[0]
        ));
    }
    for p in &parts {
        if p.is_empty()
            || !p.bytes().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
            })
        {
            return Err(format!("invalid name component {p:?}"));
        }
    }
    Ok(())
}

/// A `check` value: a plain file name inside the step folder.
fn valid_check_name(s: &str) -> Result<(), String> {
    if s.contains('/') || s.contains('\\') {
        return Err("must be a plain file name inside the step folder (no /)".into());
    }
    if s.is_empty() || s.starts_with('.') {
        return Err("must be a file name like check.sh".into());
    }
    if s == "en.md" || s == "zh.md" {
        return Err("cannot be one of the step's Markdown files".into());
    }
    if !s
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
    {
        return Err("may only use letters, digits, '.', '_' and '-'".into());
    }
    Ok(())
}

/// Parses and validates `lesson.toml` of the lesson folder `folder`; `file` is the path shown
/// in problems. Returns the manifest when it parsed (even if some values are wrong) and every
/// problem found.
pub fn parse(text: &str, folder: &str, file: &str) -> (Option<Manifest>, Vec<Problem>) {
    let at = |span: std::ops::Range<usize>| Some(line_of(text, span.start));
    let mut problems = Vec::new();
    let m: Manifest = match toml::from_str(text) {
        Ok(m) => m,
        Err(e) => {
            let line = e.span().map(|s| line_of(text, s.start));
            let msg = e.message().trim().to_owned();
            problems.push(Problem::new(
                file,
                line,
                format!("invalid lesson.toml: {msg}"),
            ));
            return (None, problems);
        }
    };
    let mut bad = |span, msg: String| problems.push(Problem::new(file, at(span), msg));

    let id = m.id.get_ref();
    if !valid_id(id) {
        bad(
            m.id.span(),
            format!("id {id:?} is not valid: expected ^[a-z][a-z0-9-]{{0,31}}$"),
        );
    } else if id != folder {
        bad(
            m.id.span(),
            format!("id {id:?} must equal the lesson's folder name {folder:?}"),
        );
    }
    let minutes = *m.minutes.get_ref();
    if !MINUTES.contains(&minutes) {
        bad(
            m.minutes.span(),
            format!(
                "minutes = {minutes} is out of range {}..={}",
                MINUTES.start(),
                MINUTES.end()
            ),
        );
    }
    let mut seen_images = HashSet::new();
    for img in &m.images {
        if let Err(why) = valid_image_ref(img.get_ref()) {
            bad(img.span(), format!("image {:?}: {why}", img.get_ref()));
        } else if !seen_images.insert(img.get_ref().clone()) {
            bad(
                img.span(),
                format!("image {:?} is listed twice", img.get_ref()),
            );
        }
    }
    for (what, texts, one_line) in [("title", &m.title, true), ("summary", &m.summary, false)] {
        for (lang, v) in [("en", &texts.en), ("zh", &texts.zh)] {
            let s = v.get_ref();
            if s.trim().is_empty() {
                bad(v.span(), format!("{what}.{lang} is empty"));
            } else if one_line && s.contains('\n') {
                bad(v.span(), format!("{what}.{lang} must be one line"));
            }
        }
    }
    let steps = m.steps.get_ref();
    if steps.is_empty() {
        bad(
            m.steps.span(),
            "a lesson needs at least one [[steps]]".into(),
        );
    } else if steps.len() > MAX_STEPS {
        bad(
            m.steps.span(),
            format!("{} steps: a lesson has at most {MAX_STEPS}", steps.len()),
        );
    }
    let mut seen = HashSet::new();
    for (i, s) in steps.iter().enumerate() {
        let sid = s.id.get_ref();
        if !valid_id(sid) {
            bad(
                s.id.span(),
                format!(
                    "step {} id {sid:?} is not valid: expected ^[a-z][a-z0-9-]{{0,31}}$",
                    i + 1
                ),
            );
        } else if !seen.insert(sid.clone()) {
            bad(
                s.id.span(),
                format!("step {} id {sid:?} is used by an earlier step", i + 1),
            );
        }
        if let Some(c) = &s.check {
            if let Err(why) = valid_check_name(c.get_ref()) {
                bad(
                    c.span(),
                    format!("step {} check {:?}: {why}", i + 1, c.get_ref()),
                );
            }
        }
    }
    (Some(m), problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"id = "whalesay"
template = "docker"
minutes = 10
images = ["docker/whalesay:latest"]

[title]
en = "Hello"
zh = "你好"

[summary]
en = "Summary."
zh = "摘要。"

[[steps]]
id = "pull"
check = "check.sh"

[[steps]]
id = "images"
"#;

    fn problems(text: &str) -> Vec<String> {
        parse(text, "whalesay", "lessons/whalesay/lesson.toml")
            .1
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn parses_the_format() {
        let (m, p) = parse(GOOD, "whalesay", "f");
        assert!(p.is_empty(), "{p:?}");
        let m = m.unwrap();
        assert_eq!(m.id.get_ref(), "whalesay");
        assert_eq!(m.template, Template::Docker);
        assert_eq!(*m.minutes.get_ref(), 10);
        assert_eq!(m.images[0].get_ref(), "docker/whalesay:latest");
        assert_eq!(m.title.zh.get_ref(), "你好");
        let steps = m.steps.into_inner();
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].check.as_ref().unwrap().get_ref(), "check.sh");
        assert!(steps[1].check.is_none());
    }

    #[test]
    fn unknown_keys_are_errors_with_their_line() {
        let text = GOOD.replace("minutes = 10", "minutes = 10\nminuts = 5");
        let p = problems(&text);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with(
                "lessons/whalesay/lesson.toml:4: invalid lesson.toml: unknown field `minuts`"
            ),
            "{p:?}"
        );
        let text = GOOD.replace("check = \"check.sh\"", "chek = \"check.sh\"");
        let p = problems(&text);
        assert!(
            p[0].contains(":16:") && p[0].contains("unknown field `chek`"),
            "{p:?}"
        );
    }

    #[test]
    fn bad_toml_names_the_line() {
        let text = GOOD.replace("zh = \"你好\"", "zh = \"你好");
        let p = problems(&text);
        assert!(
            p[0].starts_with("lessons/whalesay/lesson.toml:8: invalid lesson.toml"),
            "{p:?}"
        );
    }

    #[test]
    fn values_are_validated() {
        let text = GOOD
            .replace("id = \"whalesay\"", "id = \"whale\"")
            .replace("minutes = 10", "minutes = 0")
            .replace("docker/whalesay:latest", "docker.io/docker/whalesay")
            .replace("en = \"Hello\"", "en = \"\"")
            .replace("id = \"images\"", "id = \"pull\"")
            .replace("check = \"check.sh\"", "check = \"../x.sh\"");
        let p = problems(&text);
        let want = [
            ":1: id \"whale\" must equal the lesson's folder name \"whalesay\"",
            ":3: minutes = 0 is out of range 1..=240",
            ":4: image \"docker.io/docker/whalesay\": no tag",
            ":7: title.en is empty",
            ":16: step 1 check \"../x.sh\": must be a plain file name",
            ":19: step 2 id \"pull\" is used by an earlier step",
        ];
        assert_eq!(p.len(), want.len(), "{p:#?}");
        for (got, want) in p.iter().zip(want) {
            assert!(got.contains(want), "{got} lacks {want}");
        }
        let p = problems(&GOOD.replace("\"docker\"", "\"podman\""));
        assert!(
            p[0].contains(":2:") && p[0].contains("unknown variant `podman`"),
            "{p:?}"
        );
    }

    #[test]
    fn image_references() {
        assert!(valid_image_ref("docker/whalesay:latest").is_ok());
        assert!(valid_image_ref("nginx:1.25-alpine").is_ok());
        assert!(valid_image_ref("docker/whalesay").is_err());
        assert!(valid_image_ref("localhost:5000/x:1").is_err());
        assert!(valid_image_ref("registry.example.com/x:1").is_err());
        assert!(valid_image_ref("Docker/x:1").is_err());
        assert!(valid_image_ref("x@sha256:abc").is_err());
    }

    #[test]
    fn ids() {
        assert!(valid_id("whalesay"));
        assert!(valid_id("a-1"));
        assert!(!valid_id("1a"));
        assert!(!valid_id("A"));
        assert!(!valid_id(&"a".repeat(33)));
    }
}
