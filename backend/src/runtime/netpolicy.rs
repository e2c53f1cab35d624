//! The host firewall around instances (iptables, filter table), installed by the server at
//! start-up and for each session network, idempotently (every rule is checked with `-C`
//! before it is added; nothing is flushed, so several servers on one host share the chains).
//!
//! Session networks are bridges named `dd-<first 12 characters of the session id>`, so one
//! interface pattern (`dd-+`) matches every instance's traffic as it enters the host.
//!
//! Forwarded traffic (instance → elsewhere), from a jump at the top of `DOCKER-USER`:
//!
//! ```text
//! DOCKER-USER  -i dd-+ -j DRYDOCK-FWD
//! DRYDOCK-FWD  conntrack RELATED,ESTABLISHED            RETURN   (replies)
//!              -d 169.254.0.0/16                         REJECT   (cloud metadata, link-local)
//!              -o docker0 / -o br-+                      REJECT   (other Docker networks)
//!              tcp dports 25,465,587 ! -o dd-+           REJECT   (SMTP)
//!              per session X:
//!                -i dd-X -o dd-X                         RETURN   (its own instances)
//!                -i dd-X -o dd-+                         REJECT   (other sessions)
//!                -i dd-X                                 DRYDOCK-EGRESS-OFF|HTTP (unless all)
//! DRYDOCK-EGRESS-HTTP  udp/tcp 53, tcp 80,443 RETURN; REJECT the rest
//! DRYDOCK-EGRESS-OFF   REJECT (the registry mirror is on the host, see INPUT)
//! ```
//!
//! Traffic to the host itself (the session network's gateway and every other host address),
//! from a jump at the top of `INPUT`:
//!
//! ```text
//! INPUT        -i dd-+ -j DRYDOCK-IN
//! DRYDOCK-IN   conntrack RELATED,ESTABLISHED  RETURN   (replies to the server's agent calls)
//!              tcp dport <mirror port>        RETURN   (the registry mirror, default 5000)
//!              tcp                            REJECT --reject-with tcp-reset
//!              everything else                REJECT
//! ```
//!
//! The server's own calls to the agents go host → instance (OUTPUT, then the replies are
//! ESTABLISHED), so they are not affected. Docker's own `DOCKER-ISOLATION-STAGE-*` chains
//! already drop traffic between bridges; the per-session rules are a second layer that does
//! not depend on Docker's defaults.

use std::process::Stdio;

use tokio::sync::Mutex;

use crate::config::Egress;

pub const FWD: &str = "DRYDOCK-FWD";
pub const IN: &str = "DRYDOCK-IN";
pub const EGRESS_OFF: &str = "DRYDOCK-EGRESS-OFF";
pub const EGRESS_HTTP: &str = "DRYDOCK-EGRESS-HTTP";
/// Prefix of every session bridge's interface name.
pub const BRIDGE_PREFIX: &str = "dd-";

#[derive(Debug, thiserror::Error)]
#[error("iptables {args}: {message}")]
pub struct NetPolicyError {
    pub args: String,
    pub message: String,
}

/// The interface name of a session's bridge (at most 15 characters).
pub fn bridge_name(session: &str) -> String {
    let short: String = session.chars().take(12).collect();
    format!("{BRIDGE_PREFIX}{short}")
}

type Rule = Vec<String>;

fn rule(parts: &[&str]) -> Rule {
    parts.iter().map(|s| s.to_string()).collect()
}

/// The global rules of each chain, in order.
pub fn global_rules(mirror_port: u16) -> Vec<(&'static str, Vec<Rule>)> {
    let port = mirror_port.to_string();
    let est = [
        "-m",
        "conntrack",
        "--ctstate",
        "RELATED,ESTABLISHED",
        "-j",
        "RETURN",
    ];
    vec![
        (
            FWD,
            vec![
                rule(&est),
                rule(&["-d", "169.254.0.0/16", "-j", "REJECT"]),
                rule(&["-o", "docker0", "-j", "REJECT"]),
                rule(&["-o", "br-+", "-j", "REJECT"]),
                rule(&[
                    "-p",
                    "tcp",
                    "-m",
                    "multiport",
                    "--dports",
                    "25,465,587",
                    "!",
                    "-o",
                    "dd-+",
                    "-j",
                    "REJECT",
                    "--reject-with",
                    "tcp-reset",
                ]),
            ],
        ),
        (
            IN,
            vec![
                rule(&est),
                rule(&["-p", "tcp", "--dport", &port, "-j", "RETURN"]),
                rule(&["-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"]),
                rule(&["-j", "REJECT"]),
            ],
        ),
        (
            EGRESS_HTTP,
            vec![
                rule(&["-p", "udp", "--dport", "53", "-j", "RETURN"]),
                rule(&[
                    "-p",
                    "tcp",
                    "-m",
                    "multiport",
                    "--dports",
                    "53,80,443",
                    "-j",
                    "RETURN",
                ]),
                rule(&["-j", "REJECT"]),
            ],
        ),
        (EGRESS_OFF, vec![rule(&["-j", "REJECT"])]),
    ]
}

/// The jumps into the chains: (chain, rule), each inserted at the top.
pub fn jumps() -> Vec<(&'static str, Rule)> {
    vec![
        ("DOCKER-USER", rule(&["-i", "dd-+", "-j", FWD])),
        ("INPUT", rule(&["-i", "dd-+", "-j", IN])),
    ]
}

/// A session's rules in [`FWD`], in order.
pub fn session_rules(session: &str, egress: Egress) -> Vec<Rule> {
    let br = bridge_name(session);
    let mut out = vec![
        rule(&["-i", &br, "-o", &br, "-j", "RETURN"]),
        rule(&["-i", &br, "-o", "dd-+", "-j", "REJECT"]),
    ];
    match egress {
        Egress::All => {}
        Egress::Http => out.push(rule(&["-i", &br, "-j", EGRESS_HTTP])),
        Egress::Off => out.push(rule(&["-i", &br, "-j", EGRESS_OFF])),
    }
    out
}

/// Every rule a session may have had under any egress mode (for removal).
fn all_session_rules(session: &str) -> Vec<Rule> {
    let mut out = session_rules(session, Egress::Off);
    out.extend(session_rules(session, Egress::Http).into_iter().skip(2));
    out
}

pub struct NetPolicy {
    egress: Egress,
    mirror_port: u16,
    /// Outbound bandwidth of each instance in Mbit/s; 0: unlimited.
    egress_mbit: u64,
    iptables: String,
    lock: Mutex<()>,
}

impl NetPolicy {
    pub fn new(egress: Egress, mirror_port: u16) -> NetPolicy {
        NetPolicy {
            egress,
            mirror_port,
            egress_mbit: 0,
            iptables: std::env::var("DRYDOCK_IPTABLES").unwrap_or_else(|_| "iptables".into()),
            lock: Mutex::new(()),
        }
    }

    /// Limits what each instance sends to `mbit` Mbit/s (0: no limit).
    pub fn with_egress_mbit(mut self, mbit: u64) -> NetPolicy {
        self.egress_mbit = mbit;
        self
    }

    /// Shapes what the instance whose init is `pid` sends to the configured rate: a token
    /// bucket (tbf) on the egress of its `eth0`, set from the host in the instance's network
    /// namespace. (Policing the host side of the veth would be out of the instance's reach,
    /// but needs the kernel's tc action modules, which hosts like the dev VM lack; the
    /// instance has NET_ADMIN in its own namespace and could remove the qdisc, so this is a
    /// guardrail against accidents, see docs/security.md.) Must run again each time the
    /// container starts. `Ok(false)` when no limit is configured.
    pub async fn limit_instance(&self, pid: i64) -> Result<bool, NetPolicyError> {
        if self.egress_mbit == 0 || pid <= 0 {
            return Ok(false);
        }
        let rate = format!("{}mbit", self.egress_mbit);
        let burst = format!("{}k", (self.egress_mbit * 4).max(32));
        let pid = pid.to_string();
        let args = [
            "-t", &pid, "-n", "tc", "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate",
            &rate, "burst", &burst, "latency", "100ms",
        ];
        let out = tokio::process::Command::new("nsenter")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| NetPolicyError {
                args: format!("nsenter {}", args.join(" ")),
                message: e.to_string(),
            })?;
        if out.status.success() {
            Ok(true)
        } else {
            Err(NetPolicyError {
                args: format!("nsenter {}", args.join(" ")),
                message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            })
        }
    }

    async fn run(&self, args: &[String]) -> Result<(bool, String), NetPolicyError> {
        let mut full = vec!["-w".to_owned(), "5".to_owned()];
        full.extend_from_slice(args);
        let out = tokio::process::Command::new(&self.iptables)
            .args(&full)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| NetPolicyError {
                args: args.join(" "),
                message: format!("cannot run {}: {e}", self.iptables),
            })?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ))
    }

    async fn must(&self, args: Vec<String>) -> Result<(), NetPolicyError> {
        let (ok, err) = self.run(&args).await?;
        if ok {
            Ok(())
        } else {
            Err(NetPolicyError {
                args: args.join(" "),
                message: err,
            })
        }
    }

    async fn exists(&self, chain: &str, r: &Rule) -> Result<bool, NetPolicyError> {
        let mut args = vec!["-C".to_owned(), chain.to_owned()];
        args.extend(r.iter().cloned());
        Ok(self.run(&args).await?.0)
    }

    async fn ensure_chain(&self, chain: &str) -> Result<(), NetPolicyError> {
        let (ok, _) = self.run(&["-n".into(), "-L".into(), chain.into()]).await?;
        if !ok {
            let (ok, err) = self.run(&["-N".into(), chain.into()]).await?;
            if !ok && !err.contains("exists") {
                return Err(NetPolicyError {
                    args: format!("-N {chain}"),
                    message: err,
                });
            }
        }
        Ok(())
    }

    /// `r` at position `pos` (1-based) of `chain` unless present.
    async fn ensure_at(&self, chain: &str, pos: usize, r: &Rule) -> Result<(), NetPolicyError> {
        if self.exists(chain, r).await? {
            return Ok(());
        }
        let mut args = vec!["-I".to_owned(), chain.to_owned(), pos.to_string()];
        args.extend(r.iter().cloned());
        self.must(args).await
    }

    async fn ensure_appended(&self, chain: &str, r: &Rule) -> Result<(), NetPolicyError> {
        if self.exists(chain, r).await? {
            return Ok(());
        }
        let mut args = vec!["-A".to_owned(), chain.to_owned()];
        args.extend(r.iter().cloned());
        self.must(args).await
    }

    /// Installs the chains, their global rules and the jumps (idempotent).
    pub async fn install(&self) -> Result<(), NetPolicyError> {
        let _g = self.lock.lock().await;
        let rules = global_rules(self.mirror_port);
        for (chain, _) in &rules {
            self.ensure_chain(chain).await?;
        }
        for (chain, rs) in &rules {
            // Global rules go first, in order, ahead of any per-session rule.
            for (i, r) in rs.iter().enumerate() {
                self.ensure_at(chain, i + 1, r).await?;
            }
        }
        for (chain, r) in jumps() {
            self.ensure_chain(chain).await?;
            self.ensure_at(chain, 1, &r).await?;
        }
        self.prune_stale().await
    }

    /// Removes per-session rules whose bridge no longer exists (a server killed before it
    /// could remove them). Rules of bridges that exist may belong to another server on this
    /// host and are left alone.
    async fn prune_stale(&self) -> Result<(), NetPolicyError> {
        let (ok, _) = self.run(&["-S".into(), FWD.into()]).await?;
        if !ok {
            return Ok(());
        }
        let out = tokio::process::Command::new(&self.iptables)
            .args(["-w", "5", "-S", FWD])
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| NetPolicyError {
                args: format!("-S {FWD}"),
                message: e.to_string(),
            })?;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Some(spec) = line.strip_prefix(&format!("-A {FWD} ")) else {
                continue;
            };
            let words: Vec<&str> = spec.split_whitespace().collect();
            let stale = words.windows(2).any(|w| {
                w[0] == "-i"
                    && w[1].starts_with(BRIDGE_PREFIX)
                    && w[1] != "dd-+"
                    && !std::path::Path::new("/sys/class/net").join(w[1]).exists()
            });
            if stale {
                let mut args = vec!["-D".to_owned(), FWD.to_owned()];
                args.extend(words.iter().map(|w| w.to_string()));
                if let Err(e) = self.must(args).await {
                    tracing::debug!(error = %e, "pruning a stale firewall rule");
                }
            }
        }
        Ok(())
    }

    /// Adds a session's rules (idempotent); drops rules of another egress mode it had.
    pub async fn add_session(&self, session: &str) -> Result<(), NetPolicyError> {
        let want = session_rules(session, self.egress);
        {
            let _g = self.lock.lock().await;
            for r in all_session_rules(session) {
                if !want.contains(&r) {
                    self.delete_all(FWD, &r).await?;
                }
            }
            for r in &want {
                self.ensure_appended(FWD, r).await?;
            }
        }
        Ok(())
    }

    async fn delete_all(&self, chain: &str, r: &Rule) -> Result<(), NetPolicyError> {
        for _ in 0..16 {
            if !self.exists(chain, r).await? {
                break;
            }
            let mut args = vec!["-D".to_owned(), chain.to_owned()];
            args.extend(r.iter().cloned());
            self.must(args).await?;
        }
        Ok(())
    }

    /// Removes a session's rules (absent is fine).
    pub async fn remove_session(&self, session: &str) -> Result<(), NetPolicyError> {
        let _g = self.lock.lock().await;
        for r in all_session_rules(session) {
            self.delete_all(FWD, &r).await?;
        }
        Ok(())
    }

    /// Removes the jumps and the chains (when the policy is switched off). Affects every
    /// server on this host.
    pub async fn uninstall(&self) -> Result<(), NetPolicyError> {
        let _g = self.lock.lock().await;
        for (chain, r) in jumps() {
            self.delete_all(chain, &r).await?;
        }
        for (chain, _) in global_rules(self.mirror_port) {
            let (exists, _) = self.run(&["-n".into(), "-L".into(), chain.into()]).await?;
            if exists {
                self.must(vec!["-F".into(), chain.into()]).await?;
                self.must(vec!["-X".into(), chain.into()]).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_names_fit_an_interface_name() {
        let b = bridge_name("0123456789abcdef");
        assert_eq!(b, "dd-0123456789ab");
        assert!(b.len() <= 15);
    }

    #[test]
    fn rules_deny_metadata_smtp_and_the_host() {
        let text: Vec<String> = global_rules(5000)
            .into_iter()
            .flat_map(|(c, rs)| rs.into_iter().map(move |r| format!("{c} {}", r.join(" "))))
            .collect();
        let has = |s: &str| text.iter().any(|t| t.contains(s));
        assert!(has("DRYDOCK-FWD -d 169.254.0.0/16 -j REJECT"), "{text:#?}");
        assert!(has("--dports 25,465,587 ! -o dd-+ -j REJECT"), "{text:#?}");
        assert!(has("DRYDOCK-IN -p tcp --dport 5000 -j RETURN"), "{text:#?}");
        assert_eq!(text.last().unwrap(), "DRYDOCK-EGRESS-OFF -j REJECT");
        let s = session_rules("0123456789abcdef", Egress::Off);
        assert_eq!(s.len(), 3);
        assert_eq!(s[2].join(" "), "-i dd-0123456789ab -j DRYDOCK-EGRESS-OFF");
        assert_eq!(session_rules("0123456789abcdef", Egress::All).len(), 2);
    }
}
