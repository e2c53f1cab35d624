//! Lessons: the guided tutorials of `lessons/` (format in `lessons/README.md`), as the server
//! serves and checks them.
//!
//! What this module owns:
//! - [`manifest`]: `lesson.toml`, parsed with serde (unknown keys refused) and validated;
//! - [`markdown`]: a step's Markdown rendered to HTML (runnable `sh run` blocks, copy-only `sh`
//!   blocks, the title from the `# ` heading, raw HTML escaped, only `https://` links);
//! - [`catalog`]: the lessons embedded in the binary, replaced or extended by a configured
//!   directory (`lessons_dir` / `DRYDOCK_LESSONS_DIR`), validated when loaded;
//! - [`lint`]: `drydock lessons lint [DIR]`, everything the catalog validates plus `bash -n` of
//!   the checks and the images the lessons pull;
//! - [`checks`]: running a step's check through the instance agent's `/v1/exec`;
//! - [`http`]: the lesson endpoints of the External API and the per-session progress.
//!
//! Nothing here knows how instances run: checks go through the agent client, progress through
//! the [`crate::store::Store`].

pub mod catalog;
pub mod checks;
pub mod http;
pub mod lint;
pub mod manifest;
pub mod markdown;

use std::fmt;

use serde::Serialize;

pub use catalog::Catalog;
pub use manifest::Template;

/// A language lessons ship in. Both are required everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    En,
    Zh,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Zh];

    pub fn as_str(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }

    /// The step file of this language (`en.md`, `zh.md`).
    pub fn file(self) -> &'static str {
        match self {
            Lang::En => "en.md",
            Lang::Zh => "zh.md",
        }
    }

    /// A `?lang=` value: absent or empty is English; `en`/`zh`, also as a regional tag
    /// (`zh-CN`, `en_US`, any case), pick that language; anything else is refused.
    pub fn from_query(value: Option<&str>) -> Result<Lang, LessonError> {
        let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(Lang::En);
        };
        let primary = v.split(['-', '_']).next().unwrap_or_default();
        match primary.to_ascii_lowercase().as_str() {
            "en" => Ok(Lang::En),
            "zh" => Ok(Lang::Zh),
            _ => Err(LessonError::UnknownLang(v.to_owned())),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Lang {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Lang, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        Lang::from_query(Some(&s)).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One value per language.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Localized<T> {
    pub en: T,
    pub zh: T,
}

impl<T> Localized<T> {
    pub fn get(&self, lang: Lang) -> &T {
        match lang {
            Lang::En => &self.en,
            Lang::Zh => &self.zh,
        }
    }
}

/// A lesson as the server serves it (validated when loaded).
#[derive(Debug, Clone)]
pub struct Lesson {
    pub id: String,
    pub template: Template,
    pub minutes: u32,
    pub images: Vec<String>,
    pub title: Localized<String>,
    pub summary: Localized<String>,
    pub steps: Vec<Step>,
    /// Where it was read from: `embedded` or the directory.
    pub origin: String,
}

/// One step of a lesson.
#[derive(Debug, Clone)]
pub struct Step {
    /// The step's slug (`pull`).
    pub id: String,
    /// Its folder inside `steps/` (`01-pull`).
    pub folder: String,
    /// From the step's `# ` heading.
    pub title: Localized<String>,
    /// The rendered Markdown.
    pub html: Localized<String>,
    /// The runnable (`sh run`) commands, in order (identical in both languages).
    pub commands: Vec<String>,
    pub check: Option<Check>,
}

/// A step's check script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// File name inside the step folder (`check.sh`).
    pub file: String,
    pub script: String,
}

/// A problem found in a lesson tree: which file, which line if known, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl Problem {
    pub fn new(file: impl Into<String>, line: Option<usize>, message: impl Into<String>) -> Self {
        Problem {
            file: file.into(),
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.file, l, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Problems, one per line (at most `max`, then how many more).
pub fn list_problems(problems: &[Problem], max: usize) -> String {
    let mut s = String::new();
    for p in problems.iter().take(max) {
        s.push_str("\n  ");
        s.push_str(&p.to_string());
    }
    if problems.len() > max {
        s.push_str(&format!("\n  … and {} more", problems.len() - max));
    }
    s
}

#[derive(Debug, thiserror::Error)]
pub enum LessonError {
    #[error("cannot read lessons directory {path}: {source}")]
    ReadDir {
        path: String,
        source: std::io::Error,
    },
    #[error("lessons in {origin} are not valid ({} problem(s); `drydock lessons lint` lists them):{}", problems.len(), list_problems(problems, 10))]
    Invalid {
        origin: String,
        problems: Vec<Problem>,
    },
    #[error("no lesson '{0}'")]
    NotFound(String),
    #[error("lesson '{lesson}' has {count} steps (0 to {}); there is no step {step}", count.saturating_sub(1))]
    NoStep {
        lesson: String,
        step: String,
        count: usize,
    },
    #[error("unknown lang {0:?}: expected \"en\" or \"zh\"")]
    UnknownLang(String),
}

/// A step's recorded check result, as `GET /api/v1/sessions/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct StepProgress {
    /// Counts from 0, like the check endpoint.
    pub step: usize,
    pub passed: bool,
    /// RFC 3339: when it first passed, or when it was last checked while not passed.
    pub checked_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lang_from_query() {
        assert_eq!(Lang::from_query(None).unwrap(), Lang::En);
        assert_eq!(Lang::from_query(Some("")).unwrap(), Lang::En);
        assert_eq!(Lang::from_query(Some("zh")).unwrap(), Lang::Zh);
        assert_eq!(Lang::from_query(Some("zh-CN")).unwrap(), Lang::Zh);
        assert_eq!(Lang::from_query(Some("EN_us")).unwrap(), Lang::En);
        let e = Lang::from_query(Some("fr")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown lang \"fr\": expected \"en\" or \"zh\""
        );
    }

    #[test]
    fn problems_show_file_and_line() {
        let p = Problem::new("lessons/a/lesson.toml", Some(3), "bad");
        assert_eq!(p.to_string(), "lessons/a/lesson.toml:3: bad");
        let p = Problem::new("lessons/a", None, "bad");
        assert_eq!(p.to_string(), "lessons/a: bad");
    }
}
