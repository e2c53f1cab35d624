//! Session ready time: from `POST /api/v1/sessions` to a shell prompt on node1's terminal,
//! split into its steps; and the time to add an instance (`POST …/instances` to a prompt on
//! it). Sessions are created one after another.
//!
//! A run is *warm* when the server handed out an instance from its warm pool
//! (`DRYDOCK_PLAYGROUND_WARM_POOL`; its `drydock_warm_adopted_total` went up), else *cold*;
//! each kind gets its own row. Between runs the tool pauses `--pause-secs` so a pool can refill.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;

use crate::report::{Report, Row, Target};
use crate::{progress, Ctx};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Do not measure adding an instance.
    #[arg(long)]
    pub no_add_instance: bool,
    /// Do not time the first docker command in each new session.
    #[arg(long)]
    pub no_first_docker: bool,
    /// Seconds to wait between runs (lets the engine settle after a delete).
    #[arg(long, default_value_t = 1.0)]
    pub pause_secs: f64,
}

/// The first docker command of a session; prints DOCKER-FAILED (split so that the echo of
/// the command line does not contain it) when it fails.
const FIRST_DOCKER: &str = "docker info >/dev/null 2>&1 || echo DOCKER-FAIL\"\"ED";

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

pub async fn run(ctx: &Ctx, args: &Args) -> Result<Report> {
    let runs = ctx.runs_or(5);
    let (mut total, mut post, mut ready, mut prompt) = (vec![], vec![], vec![], vec![]);
    let (mut warm_total, mut warm_post) = (vec![], vec![]);
    let (mut add_total, mut add_post, mut delete) = (vec![], vec![], vec![]);
    let mut first_docker = vec![];
    for i in 0..runs {
        let t0 = Instant::now();
        let opened = ctx.open_session().await?;
        let s = opened.session.clone();
        let mut term = ctx.prompt(&s, "node1", "bench").await?;
        let took = t0.elapsed();
        if opened.warm {
            warm_total.push(secs(took));
            warm_post.push(secs(opened.created));
        } else {
            total.push(secs(took));
            post.push(secs(opened.created));
            ready.push(secs(opened.ready));
            prompt.push(secs(took - opened.ready));
        }
        let mut line = format!(
            "ready run {}/{runs} ({}): {:.3} s (POST {:.3} s, instance ready {:.3} s, attach+prompt {:.3} s)",
            i + 1,
            if opened.warm { "warm" } else { "cold" },
            secs(took),
            secs(opened.created),
            secs(opened.ready),
            secs(took - opened.ready)
        );
        if !args.no_first_docker {
            // With dockerd_on_demand this includes starting dockerd.
            let mut seen = Vec::new();
            let (_, took) = term
                .run_with(FIRST_DOCKER, Duration::from_secs(60), |d| {
                    seen.extend_from_slice(d)
                })
                .await?;
            if crate::client::find(&seen, b"DOCKER-FAILED").is_some() {
                anyhow::bail!("`docker info` failed in session {}", s.id);
            }
            first_docker.push(secs(took));
            line += &format!("; first docker command {:.3} s", secs(took));
        }
        if !args.no_add_instance {
            let t1 = Instant::now();
            let inst = ctx.api.add_instance(&s).await?;
            add_post.push(secs(t1.elapsed()));
            ctx.api
                .wait_ready(&s, &inst.name, ctx.ready_timeout)
                .await?;
            let t2 = ctx.prompt(&s, &inst.name, "bench").await?;
            let took = t1.elapsed();
            add_total.push(secs(took));
            line += &format!("; add {}: {:.3} s", inst.name, secs(took));
            t2.close().await;
        }
        term.flush_acks().await?;
        term.close().await;
        let td = Instant::now();
        ctx.api.delete_session(&s).await?;
        delete.push(secs(td.elapsed()));
        line += &format!("; delete {:.3} s", secs(td.elapsed()));
        progress!("{line}");
        if i + 1 < runs {
            tokio::time::sleep(Duration::from_secs_f64(args.pause_secs)).await;
        }
    }
    let mut rows = vec![];
    if !total.is_empty() || warm_total.is_empty() {
        rows.extend([
            Row::new("session ready, cold (POST → shell prompt)", "s", &total)
                .target(Target::median_at_most(1.5)),
            Row::new("… of which POST answered (container created)", "s", &post),
            Row::new(
                "… of which POST → instance `ready` (polled every 10 ms)",
                "s",
                &ready,
            ),
            Row::new("… of which terminal attach → prompt", "s", &prompt),
        ]);
    }
    if warm_total.is_empty() {
        rows.push(Row::missing(
            "session ready, warm pool",
            "not measured: no session took a warm-pool instance (start the server with \
             DRYDOCK_PLAYGROUND_WARM_POOL=N to measure it); target median ≤ 150 ms",
        ));
    } else {
        rows.push(
            Row::new(
                "session ready, warm pool (POST → shell prompt)",
                "s",
                &warm_total,
            )
            .target(Target::median_at_most(0.15)),
        );
        rows.push(Row::new("… of which POST answered (warm)", "s", &warm_post));
    }
    if !args.no_first_docker {
        rows.push(Row::new(
            "first docker command in a new session (`docker info`, Enter → prompt)",
            "s",
            &first_docker,
        ));
    }
    if !args.no_add_instance {
        rows.push(Row::new(
            "add an instance (POST → shell prompt on it)",
            "s",
            &add_total,
        ));
        rows.push(Row::new("… of which POST answered", "s", &add_post));
    }
    rows.push(Row::new("delete a session (DELETE answered)", "s", &delete));
    Ok(Report {
        measurement: "ready".into(),
        rows,
        details: json!({
            "runs": runs,
            "warm_total_s": warm_total, "warm_post_s": warm_post,
            "total_s": total, "post_s": post, "ready_s": ready, "prompt_s": prompt,
            "first_docker_s": first_docker,
            "add_instance_s": add_total, "add_instance_post_s": add_post, "delete_s": delete,
        }),
    })
}
