//! Session templates: which exist, which instance image each runs, how long an instance of
//! each may take to become ready, and whether a template can be used right now (with the
//! reason when it cannot).
//!
//! - `docker`: the instance image (`instance_image`, `drydock/instance:latest`), a nested
//!   dockerd; available when the runtime can create instances at all.
//! - `kubernetes`: the k3s instance image (`kubernetes_image`,
//!   `drydock/instance-k3s:latest`, built by `sandbox/build` only where a k3s binary could be
//!   had: k3s is not packaged by Debian); available when, on top of that, the image exists.
//!   Its agent reports ready once the node is Ready and the default service account exists.
//!
//! `GET /api/v1/templates` lists them; creating a session of an unknown template is a 400, of
//! an unavailable one a 503 `template <id> is unavailable: <reason>`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::Error;
use crate::runtime::Runtime;

pub const DOCKER: &str = "docker";
pub const KUBERNETES: &str = "kubernetes";
/// Every template, in the order the API lists them.
pub const ALL: [&str; 2] = [DOCKER, KUBERNETES];
/// A k3s instance is slower to start than a dockerd: at least this long is allowed.
pub const KUBERNETES_MIN_READY_TIMEOUT: Duration = Duration::from_secs(240);

/// One entry of `GET /api/v1/templates`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateStatus {
    pub id: String,
    pub available: bool,
    /// Why it is not available (`null` when it is).
    pub reason: Option<String>,
}

pub fn is_known(template: &str) -> bool {
    ALL.contains(&template)
}

/// The 400 for a template that does not exist.
pub fn unknown(template: &str) -> Error {
    Error::BadRequest(format!(
        "unknown template {template:?}: expected \"docker\" or \"kubernetes\""
    ))
}

/// The image instances of `template` run, when it is not the runtime's default
/// (`instance_image`).
pub fn instance_image(config: &Config, template: &str) -> Option<String> {
    (template == KUBERNETES).then(|| config.kubernetes_image.clone())
}

/// How long an instance of `template` may take to report ready.
pub fn ready_timeout(config: &Config, template: &str) -> Duration {
    if template == KUBERNETES {
        config.ready_timeout.max(KUBERNETES_MIN_READY_TIMEOUT)
    } else {
        config.ready_timeout
    }
}

/// Whether `template` can be used now, and why not.
pub async fn status(config: &Config, runtime: &dyn Runtime, template: &str) -> TemplateStatus {
    let reason = unavailable_because(config, runtime, template).await.err();
    TemplateStatus {
        id: template.to_owned(),
        available: reason.is_none(),
        reason,
    }
}

/// Every template's status.
pub async fn list(config: &Config, runtime: &dyn Runtime) -> Vec<TemplateStatus> {
    let mut out = Vec::with_capacity(ALL.len());
    for t in ALL {
        out.push(status(config, runtime, t).await);
    }
    out
}

/// `Ok` when a session of `template` can be created; otherwise 400 (unknown) or 503
/// `template <id> is unavailable: <reason>`.
pub async fn require_available(
    config: &Config,
    runtime: &dyn Runtime,
    template: &str,
) -> Result<(), Error> {
    if !is_known(template) {
        return Err(unknown(template));
    }
    unavailable_because(config, runtime, template)
        .await
        .map_err(|why| Error::Unavailable(format!("template {template} is unavailable: {why}")))
}

async fn unavailable_because(
    config: &Config,
    runtime: &dyn Runtime,
    template: &str,
) -> Result<(), String> {
    if !is_known(template) {
        return Err(format!("unknown template {template:?}"));
    }
    runtime.check().await.map_err(|e| e.to_string())?;
    if let Some(image) = instance_image(config, template) {
        match runtime.image_exists(&image).await {
            Ok(true) => {}
            Ok(false) => return Err(missing_image_reason(template, &image)),
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

fn missing_image_reason(template: &str, image: &str) -> String {
    if template == KUBERNETES {
        format!(
            "k3s is not installed: the image {image} does not exist. k3s is not packaged by \
             Debian; sandbox/build makes the image from a local binary (K3S_BINARY=/path/to/k3s) \
             or from the pinned k3s release where it can download it, and printed why it could \
             not (`k3s: unavailable (...)`)"
        )
    } else {
        format!("the image {image} does not exist: build it with sandbox/build")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    #[test]
    fn images_and_timeouts_per_template() {
        let c = Config::resolve(Settings {
            kubernetes_image: Some("k/k3s:1".into()),
            ready_timeout_seconds: Some(30),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(instance_image(&c, DOCKER), None);
        assert_eq!(instance_image(&c, KUBERNETES).as_deref(), Some("k/k3s:1"));
        assert_eq!(ready_timeout(&c, DOCKER), Duration::from_secs(30));
        assert_eq!(ready_timeout(&c, KUBERNETES), KUBERNETES_MIN_READY_TIMEOUT);
        let d = Config::resolve(Settings::default()).unwrap();
        assert_eq!(d.kubernetes_image, "drydock/instance-k3s:latest");
        assert!(is_known("docker") && is_known("kubernetes") && !is_known("podman"));
        assert!(unknown("podman")
            .to_string()
            .contains("unknown template \"podman\""));
    }
}
