//! A step's Markdown (`en.md`, `zh.md`) rendered to HTML with pulldown-cmark (CommonMark plus
//! GitHub tables), following `lessons/README.md`:
//!
//! - a fenced block with the info string exactly `sh run` is runnable:
//!   `<pre><code class="language-sh runnable">…</code></pre>`, its text HTML-escaped and
//!   without the final newline (the UI types it into the terminal, then Enter);
//! - a `sh` block is copy-only: `<pre><code class="language-sh copy">…</code></pre>`; any other
//!   block keeps its language as `language-<word>`;
//! - the step title is the first line's `# ` heading;
//! - raw HTML is escaped (shown as text), links other than `https://` and images are dropped
//!   (their text stays), so a lesson cannot inject markup or script.
//!
//! [`render`] also reports what lint rejects in the Markdown, with line numbers.

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use super::manifest::line_of;

/// A rendered step file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Plain text of the first line's `# ` heading.
    pub title: Option<String>,
    pub html: String,
    /// The runnable (`sh run`) blocks, in order.
    pub runnable: Vec<Runnable>,
    /// (line, what is wrong) for everything lint rejects.
    pub problems: Vec<(usize, String)>,
}

/// A runnable block: what a click types (lines joined with `\n`, no final newline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runnable {
    /// Line of the block's first command line.
    pub line: usize,
    pub text: String,
}

/// Info string of a runnable block.
pub const RUNNABLE_INFO: &str = "sh run";

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

struct Code {
    info: String,
    fenced: bool,
    line: usize,
    text: String,
}

/// Renders a step's Markdown; never fails (problems are reported, not fatal).
pub fn render(md: &str) -> Rendered {
    let opts = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let mut out: Vec<Event> = Vec::new();
    let mut problems: Vec<(usize, String)> = Vec::new();
    let mut runnable = Vec::new();
    let mut title: Option<String> = None;
    let mut in_title = false;
    let mut title_text = String::new();
    let mut code: Option<Code> = None;
    let mut dropped_links: Vec<bool> = Vec::new();
    let mut first = true;

    if !md.starts_with("# ") {
        problems.push((
            1,
            "the first line must be the step's title as a level-1 heading: `# Title`".into(),
        ));
    }
    for (ev, range) in Parser::new_ext(md, opts).into_offset_iter() {
        let line = line_of(md, range.start);
        let at_start = std::mem::replace(&mut first, false);
        if let Some(c) = code.as_mut() {
            match ev {
                Event::Text(t) => c.text.push_str(&t),
                Event::End(TagEnd::CodeBlock) => {
                    let c = code.take().expect("inside a code block");
                    out.push(Event::Html(
                        code_block(&c, &mut runnable, &mut problems).into(),
                    ));
                }
                _ => {}
            }
            continue;
        }
        match ev {
            Event::Start(Tag::CodeBlock(kind)) => {
                let (info, fenced) = match kind {
                    CodeBlockKind::Fenced(i) => (i.trim().to_owned(), true),
                    CodeBlockKind::Indented => (String::new(), false),
                };
                code = Some(Code {
                    info,
                    fenced,
                    line: if fenced { line + 1 } else { line },
                    text: String::new(),
                });
            }
            Event::Start(Tag::Heading { level, .. }) => {
                if level == HeadingLevel::H1 {
                    if at_start && md.starts_with("# ") {
                        in_title = true;
                    } else {
                        problems.push((
                            line,
                            "only the first line may be a level-1 heading (the step title): use ## inside a step".into(),
                        ));
                    }
                }
                out.push(Event::Start(Tag::Heading {
                    level,
                    id: None,
                    classes: Vec::new(),
                    attrs: Vec::new(),
                }));
            }
            Event::End(TagEnd::Heading(level)) => {
                if in_title {
                    in_title = false;
                    let t = title_text.trim().to_owned();
                    if t.is_empty() {
                        problems.push((line, "the title heading is empty".into()));
                    } else {
                        title = Some(t);
                    }
                }
                out.push(Event::End(TagEnd::Heading(level)));
            }
            Event::Text(t) if in_title => {
                title_text.push_str(&t);
                out.push(Event::Text(t));
            }
            Event::Code(t) if in_title => {
                title_text.push_str(&t);
                out.push(Event::Code(t));
            }
            Event::Html(h) | Event::InlineHtml(h) => {
                let shown: String = h.trim().chars().take(40).collect();
                problems.push((
                    line,
                    format!("raw HTML is not rendered (it shows as text): {shown}"),
                ));
                out.push(Event::Text(h));
            }
            Event::Start(Tag::HtmlBlock) => out.push(Event::Start(Tag::Paragraph)),
            Event::End(TagEnd::HtmlBlock) => out.push(Event::End(TagEnd::Paragraph)),
            Event::Start(Tag::Image { dest_url, .. }) => {
                problems.push((
                    line,
                    format!(
                        "images are not used in lessons (only their text is shown): {dest_url}"
                    ),
                ));
            }
            Event::End(TagEnd::Image) => {}
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) => {
                if dest_url.starts_with("https://") {
                    dropped_links.push(false);
                    out.push(Event::Start(Tag::Link {
                        link_type,
                        dest_url,
                        title,
                        id,
                    }));
                } else {
                    dropped_links.push(true);
                    problems.push((
                        line,
                        format!(
                            "links must be https:// (this one is shown as plain text): {dest_url}"
                        ),
                    ));
                }
            }
            Event::End(TagEnd::Link) => {
                if !dropped_links.pop().unwrap_or(false) {
                    out.push(Event::End(TagEnd::Link));
                }
            }
            other => out.push(other),
        }
    }
    let mut html = String::with_capacity(md.len() * 2);
    pulldown_cmark::html::push_html(&mut html, out.into_iter());
    Rendered {
        title,
        html,
        runnable,
        problems,
    }
}

fn code_block(
    c: &Code,
    runnable: &mut Vec<Runnable>,
    problems: &mut Vec<(usize, String)>,
) -> String {
    let info = c.info.as_str();
    let words: Vec<&str> = info.split_whitespace().collect();
    let body = escape_html(&c.text);
    if c.fenced && info == RUNNABLE_INFO {
        let text = c.text.strip_suffix('\n').unwrap_or(&c.text).to_owned();
        let fence = c.line.saturating_sub(1);
        if text.trim().is_empty() {
            problems.push((fence, "empty runnable (`sh run`) block".into()));
        }
        if text.contains('\t') {
            problems.push((c.line, "a runnable block must not contain a tab".into()));
        }
        if text.contains("```") {
            problems.push((c.line, "a runnable block must not contain ```".into()));
        }
        if text
            .lines()
            .last()
            .is_some_and(|l| l.trim_end().ends_with('\\'))
        {
            problems.push((
                c.line,
                "a runnable block must not end with a backslash line (Enter would wait for more)"
                    .into(),
            ));
        }
        let shown = escape_html(&text);
        runnable.push(Runnable { line: c.line, text });
        return format!("<pre><code class=\"language-sh runnable\">{shown}</code></pre>\n");
    }
    if words.first() == Some(&"sh") && info != "sh" || words.contains(&"run") {
        problems.push((
            c.line.saturating_sub(1),
            format!(
                "code block info string `{info}`: write exactly `sh run` (runnable) or `sh` (copy only)"
            ),
        ));
    }
    match words.first() {
        Some(&"sh") => format!("<pre><code class=\"language-sh copy\">{body}</code></pre>\n"),
        Some(lang) => {
            let lang: String = lang
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '.'))
                .collect();
            format!("<pre><code class=\"language-{lang}\">{body}</code></pre>\n")
        }
        None => format!("<pre><code>{body}</code></pre>\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runnable_copy_and_other_blocks() {
        let md = "# Pull `an` image\n\nText **bold**.\n\n```sh run\ndocker run x <y> && echo \"a\"\n```\n\n```sh\ncurl https://x\n```\n\n```text\n< boo >\n```\n";
        let r = render(md);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.title.as_deref(), Some("Pull an image"));
        assert!(
            r.html.starts_with("<h1>Pull <code>an</code> image</h1>"),
            "{}",
            r.html
        );
        assert!(
            r.html.contains(
                "<pre><code class=\"language-sh runnable\">docker run x &lt;y&gt; &amp;&amp; echo &quot;a&quot;</code></pre>"
            ),
            "{}",
            r.html
        );
        assert!(
            r.html
                .contains("<pre><code class=\"language-sh copy\">curl https://x\n</code></pre>"),
            "{}",
            r.html
        );
        assert!(
            r.html
                .contains("<pre><code class=\"language-text\">&lt; boo &gt;\n</code></pre>"),
            "{}",
            r.html
        );
        assert_eq!(
            r.runnable,
            vec![Runnable {
                line: 6,
                text: "docker run x <y> && echo \"a\"".into()
            }]
        );
    }

    #[test]
    fn multi_line_runnable_keeps_its_lines() {
        let r = render("# T\n\n```sh run\ncd ~\nls -l\n```\n");
        assert_eq!(r.runnable[0].text, "cd ~\nls -l");
        assert!(
            r.html.contains("runnable\">cd ~\nls -l</code>"),
            "{}",
            r.html
        );
    }

    #[test]
    fn raw_html_is_escaped_not_rendered() {
        let md = "# T\n\n<script>alert(1)</script>\n\nHi <img src=x onerror=alert(1)> there.\n";
        let r = render(md);
        assert!(!r.html.contains("<script"), "{}", r.html);
        assert!(!r.html.contains("<img"), "{}", r.html);
        assert!(
            r.html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{}",
            r.html
        );
        assert_eq!(r.problems.len(), 2, "{:?}", r.problems);
        assert_eq!(r.problems[0].0, 3);
        assert!(r.problems[0].1.contains("raw HTML"));
        assert_eq!(r.problems[1].0, 5);
    }

    #[test]
    fn only_https_links_and_no_images() {
        let md = "# T\n\n[ok](https://docs.docker.com) [bad](javascript:alert(1)) ![pic](https://x/y.png)\n";
        let r = render(md);
        assert!(
            r.html
                .contains("<a href=\"https://docs.docker.com\">ok</a>"),
            "{}",
            r.html
        );
        assert!(!r.html.contains("javascript"), "{}", r.html);
        assert!(r.html.contains(" bad "), "{}", r.html);
        assert!(!r.html.contains("<img"), "{}", r.html);
        assert!(r.html.contains("pic"), "{}", r.html);
        assert_eq!(r.problems.len(), 2, "{:?}", r.problems);
    }

    #[test]
    fn headings_and_runnable_rules() {
        let md = "Intro\n\n# Late title\n\n```sh  run\nls\n```\n\n```sh run\nls \\\n```\n\n```sh run\na\tb\n```\n";
        let r = render(md);
        let lines: Vec<usize> = r.problems.iter().map(|p| p.0).collect();
        assert_eq!(lines, vec![1, 3, 5, 10, 14], "{:?}", r.problems);
        assert!(r.title.is_none());
        assert_eq!(r.runnable.len(), 2);
    }
}
