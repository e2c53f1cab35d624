//! The `kubernetes` template through the HTTP API, on a fake runtime (no Docker): it is
//! reported unavailable, with the reason, while its k3s image is missing, and creating a
//! session of it then answers that reason; once the image exists its instances run it.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use common::FakeRuntime;
use drydock::config::{Config, Settings};
use drydock::runtime::{
    InstanceHandle, InstanceSpec, NetworkInfo, Owned, OwnedInstance, Runtime, RuntimeError,
};
use drydock::store::SqliteStore;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const K3S_IMAGE: &str = "drydock/instance-k3s:latest";

/// [`FakeRuntime`] whose engine has only the images in `present`.
struct Images {
    fake: FakeRuntime,
    present: Mutex<BTreeSet<String>>,
}

#[async_trait]
impl Runtime for Images {
    async fn check(&self) -> Result<(), RuntimeError> {
        self.fake.check().await
    }
    async fn image_exists(&self, image: &str) -> Result<bool, RuntimeError> {
        Ok(self.present.lock().unwrap().contains(image))
    }
    async fn create_network(&self, session: &str) -> Result<NetworkInfo, RuntimeError> {
        self.fake.create_network(session).await
    }
    async fn remove_network(&self, session: &str) -> Result<(), RuntimeError> {
        self.fake.remove_network(session).await
    }
    async fn create_instance(&self, spec: &InstanceSpec) -> Result<InstanceHandle, RuntimeError> {
        self.fake.create_instance(spec).await
    }
    async fn remove_instance(&self, session: &str, name: &str) -> Result<(), RuntimeError> {
        self.fake.remove_instance(session, name).await
    }
    async fn list_owned(&self) -> Result<Owned, RuntimeError> {
        self.fake.list_owned().await
    }
    async fn inspect(
        &self,
        session: &str,
        name: &str,
    ) -> Result<Option<OwnedInstance>, RuntimeError> {
        self.fake.inspect(session, name).await
    }
}

async fn app(images: &[&str]) -> (Router, Arc<Images>) {
    let runtime = Arc::new(Images {
        fake: FakeRuntime::default(),
        present: Mutex::new(images.iter().map(|s| s.to_string()).collect()),
    });
    let config = Config::resolve(Settings {
        listen: Some("127.0.0.1:8080".parse().unwrap()),
        ..Default::default()
    })
    .unwrap();
    let store = Arc::new(SqliteStore::in_memory().await.unwrap());
    let (router, _) = drydock::build(config, store, runtime.clone());
    (router, runtime)
}

async fn send(router: &Router, req: Request<Body>) -> (StatusCode, Value) {
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&body)));
    (status, v)
}

fn templates() -> Request<Body> {
    Request::get("/api/v1/templates")
        .body(Body::empty())
        .unwrap()
}

fn create(template: &str) -> Request<Body> {
    Request::post("/api/v1/sessions")
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"template": template, "lang": "en"}).to_string(),
        ))
        .unwrap()
}

#[tokio::test]
async fn kubernetes_is_unavailable_with_the_reason_while_its_image_is_missing() {
    let (router, runtime) = app(&[]).await;
    let (status, v) = send(&router, templates()).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let list = v.as_array().expect("an array");
    assert_eq!(list.len(), 2, "{v}");
    assert_eq!(
        list[0],
        json!({"id": "docker", "available": true, "reason": null})
    );
    assert_eq!(list[1]["id"], "kubernetes");
    assert_eq!(list[1]["available"], false);
    let reason = list[1]["reason"].as_str().expect("a reason").to_owned();
    assert!(reason.contains("k3s is not installed"), "{reason}");
    assert!(reason.contains(K3S_IMAGE), "{reason}");
    assert!(reason.contains("K3S_BINARY"), "{reason}");

    let (status, v) = send(&router, create("kubernetes")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(
        v["error"].as_str().unwrap(),
        format!("template kubernetes is unavailable: {reason}")
    );
    assert!(runtime.fake.is_empty(), "nothing was created");

    // Unknown templates are still a 400; docker sessions are unaffected.
    let (status, v) = send(&router, create("podman")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"]
        .as_str()
        .unwrap()
        .contains("unknown template \"podman\""));
    let (status, v) = send(&router, create("docker")).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let state = runtime.fake.snapshot();
    let spec = state.instances.values().next().unwrap();
    assert_eq!(spec.image, None, "docker runs the default instance image");
}

#[tokio::test]
async fn kubernetes_sessions_run_the_k3s_image_once_it_exists() {
    let (router, runtime) = app(&[K3S_IMAGE]).await;
    let (status, v) = send(&router, templates()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        v[1],
        json!({"id": "kubernetes", "available": true, "reason": null})
    );
    let (status, v) = send(&router, create("kubernetes")).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["template"], "kubernetes");
    assert_eq!(v["instances"][0]["state"], "starting");
    let state = runtime.fake.snapshot();
    let spec = state.instances.values().next().unwrap();
    assert_eq!(spec.image.as_deref(), Some(K3S_IMAGE));
    assert!(spec.env.contains_key(drydock_protocol::agent::SECRET_ENV));

    // The image goes away (pruned): the template is unavailable again, sessions refused.
    runtime.present.lock().unwrap().clear();
    let (status, v) = send(&router, create("kubernetes")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
}
