//! Running a step's check: the script's text goes to the instance agent's `POST /v1/exec`
//! (`bash -c` as root in /root, login environment, stdin closed) with a 10-second timeout and
//! at most 4 KiB of output kept. Exit status 0 is a pass; anything else, a signal or the
//! timeout is not. The output, cleaned of escape sequences and control characters, is the
//! learner's feedback.

use std::time::Duration;

use drydock_protocol::agent::{ExecRequest, ExecResult};
use serde::Serialize;

use super::Check;
use crate::agent_client::{AgentClient, AgentError, AgentTarget};

/// How long a check may run before it is killed (and not passed).
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// Most output shown to the learner, in bytes.
pub const MAX_MESSAGE: usize = 4096;

/// What the check endpoint answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CheckOutcome {
    pub passed: bool,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("lesson '{lesson}' step {step} ({file}): the instance's agent could not run the check: {source}")]
    Agent {
        lesson: String,
        step: usize,
        file: String,
        #[source]
        source: AgentError,
    },
}

/// The agent request for a check script.
pub fn request(script: &str) -> ExecRequest {
    ExecRequest {
        script: script.to_owned(),
        timeout_ms: Some(CHECK_TIMEOUT.as_millis() as u64),
        max_output: Some(MAX_MESSAGE),
    }
}

/// Runs `check` (step `step`, counting from 0, of `lesson`) on the instance at `target`.
pub async fn run(
    agent: &AgentClient,
    target: &AgentTarget,
    lesson: &str,
    step: usize,
    check: &Check,
) -> Result<CheckOutcome, CheckError> {
    let result = agent
        .exec(target, &request(&check.script))
        .await
        .map_err(|source| CheckError::Agent {
            lesson: lesson.to_owned(),
            step,
            file: check.file.clone(),
            source,
        })?;
    Ok(verdict(&result))
}

/// Turns the agent's answer into pass/fail and the learner's message.
pub fn verdict(r: &ExecResult) -> CheckOutcome {
    let passed = r.exit_code == Some(0) && !r.timed_out;
    let mut message = clean(&r.output);
    if message.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
    }
    let message = message.trim_end().to_owned();
    let mut notes: Vec<String> = Vec::new();
    if r.truncated || clean(&r.output).len() > MAX_MESSAGE {
        notes.push(format!("… (output cut at {} KiB)", MAX_MESSAGE / 1024));
    }
    if r.timed_out {
        notes.push(format!(
            "The check did not finish within {} s, so it did not pass. Press Check again in a moment.\n检查没有在 {} 秒内完成，所以没有通过。请稍后再点击检查。",
            CHECK_TIMEOUT.as_secs(),
            CHECK_TIMEOUT.as_secs()
        ));
    } else if let (None, Some(sig)) = (r.exit_code, r.signal) {
        notes.push(format!("The check was stopped by signal {sig}."));
    }
    let mut all = message;
    for n in notes {
        if !all.is_empty() {
            all.push('\n');
        }
        all.push_str(&n);
    }
    CheckOutcome {
        passed,
        message: all,
    }
}

/// Plain text: escape sequences removed, CR LF made LF, control characters other than LF and
/// tab dropped.
pub fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters, then one final byte in @..~.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC, DCS, …: up to BEL or ESC \.
                Some(']' | 'P' | '_' | '^' | 'X') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                            chars.next();
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(exit: Option<i32>, output: &str) -> ExecResult {
        ExecResult {
            exit_code: exit,
            signal: None,
            output: output.to_owned(),
            truncated: false,
            timed_out: false,
            duration_ms: 5,
        }
    }

    #[test]
    fn exit_status_decides() {
        let v = verdict(&result(Some(0), "Well done!\n做得好！\n"));
        assert_eq!(
            v,
            CheckOutcome {
                passed: true,
                message: "Well done!\n做得好！".into()
            }
        );
        assert!(!verdict(&result(Some(1), "missing\n")).passed);
        assert!(!verdict(&result(None, "")).passed);
    }

    #[test]
    fn timeout_is_not_passed_and_says_so() {
        let mut r = result(Some(0), "started\n");
        r.timed_out = true;
        let v = verdict(&r);
        assert!(!v.passed);
        assert!(
            v.message
                .starts_with("started\nThe check did not finish within 10 s"),
            "{}",
            v.message
        );
    }

    #[test]
    fn output_is_bounded_and_plain() {
        let v = verdict(&result(
            Some(1),
            "\u{1b}[1;31mred\u{1b}[0m\r\nbell\u{7} \u{1b}]0;title\u{7}ok",
        ));
        assert_eq!(v.message, "red\nbell ok");
        let long = "é".repeat(3000);
        let mut r = result(Some(1), &long);
        r.truncated = true;
        let v = verdict(&r);
        let (body, note) = v.message.split_once('\n').unwrap();
        assert!(body.len() <= MAX_MESSAGE && body.chars().all(|c| c == 'é'));
        assert_eq!(note, "… (output cut at 4 KiB)");
    }

    #[test]
    fn request_asks_for_the_limits() {
        let r = request("exit 0");
        assert_eq!(r.timeout_ms, Some(10_000));
        assert_eq!(r.max_output, Some(4096));
    }
}
