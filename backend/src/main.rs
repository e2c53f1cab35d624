//! The `drydock` binary: parses the command line, layers the configuration and runs the
//! server (see the library for everything else).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use drydock::config::{Config, Settings};

#[derive(Parser)]
#[command(
    name = "drydock",
    version,
    about = "Drydock: a self-hosted learning sandbox server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once at start-up
enum Command {
    /// Serve the HTTP API (settings: TOML file < DRYDOCK_* environment < flags).
    Serve(ServeArgs),
    /// Lesson tools.
    Lessons {
        #[command(subcommand)]
        command: LessonsCommand,
    },
    /// Online, consistent copy of the store (safe while the server runs), checked with PRAGMA
    /// integrity_check, mode 0600; <data dir>/server-id is copied to DEST.server-id.
    Backup {
        /// TOML config file [default: <data dir>/drydock.toml if present].
        #[arg(long)]
        config: Option<PathBuf>,
        /// Where to write the copy (through DEST.tmp).
        dest: PathBuf,
    },
    /// Read-only check of this host (config, data dir, Docker, images, registry, cgroups,
    /// capabilities, disk, clock); one line per check, exits 1 on any FAIL.
    Doctor {
        /// TOML config file [default: <data dir>/drydock.toml if present].
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum LessonsCommand {
    /// Validate lessons (format: lessons/README.md); prints file:line: problem, exits 1 on
    /// any problem.
    Lint {
        /// Lessons directory [default: the lessons embedded in this binary].
        dir: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// TOML config file [default: <data dir>/drydock.toml if present].
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Directory for the database [default: ./data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Lessons directory replacing or adding to the embedded lessons (by lesson id).
    #[arg(long)]
    lessons_dir: Option<PathBuf>,
    #[arg(long)]
    admin_token: Option<String>,
    /// Origin browsers use (for the WebSocket Origin check) [default: derived from listen].
    #[arg(long)]
    public_origin: Option<String>,
    #[arg(long)]
    session_minutes: Option<u64>,
    #[arg(long)]
    max_session_minutes: Option<u64>,
    /// Session length in seconds (overrides --session-minutes; for tests).
    #[arg(long)]
    session_seconds: Option<u64>,
    #[arg(long)]
    max_instances_per_session: Option<usize>,
    #[arg(long)]
    max_sessions: Option<usize>,
    #[arg(long)]
    instance_image: Option<String>,
    /// Instance image of the kubernetes template [default: drydock/instance-k3s:latest].
    #[arg(long)]
    kubernetes_image: Option<String>,
    #[arg(long)]
    cpus: Option<f64>,
    #[arg(long)]
    memory_mb: Option<u64>,
    #[arg(long)]
    pids: Option<i64>,
    /// On a graceful stop (SIGTERM), end every session too [default: they keep running for
    /// the next start to adopt].
    #[arg(long)]
    stop_sessions_on_exit: bool,
    /// Registry mirror URL for the instances' dockerd [default: the host's registry on port
    /// 5000 if one answers].
    #[arg(long)]
    registry_mirror: Option<String>,
    /// Session creations allowed per client IP per minute [default: 10].
    #[arg(long)]
    create_per_minute: Option<u32>,
    /// Seconds an instance may take to report ready [default: 60].
    #[arg(long)]
    ready_timeout_seconds: Option<u64>,
    /// Free-playground machines kept started ahead of sessions, so a new one is ready at
    /// once [default: 0].
    #[arg(long)]
    playground_warm_pool: Option<usize>,
    /// Wildcard domain for host-based port previews ({port}-{instance}-{session}.DOMAIN)
    /// [default: none, previews are path-based at /p/…].
    #[arg(long)]
    preview_domain: Option<String>,
}

impl ServeArgs {
    fn settings(&self) -> Settings {
        Settings {
            listen: self.listen,
            data_dir: self.data_dir.clone(),
            lessons_dir: self.lessons_dir.clone(),
            preview_domain: self.preview_domain.clone(),
            admin_token: self.admin_token.clone(),
            public_origin: self.public_origin.clone(),
            session_minutes: self.session_minutes,
            max_session_minutes: self.max_session_minutes,
            session_seconds: self.session_seconds,
            max_instances_per_session: self.max_instances_per_session,
            max_sessions: self.max_sessions,
            instance_image: self.instance_image.clone(),
            kubernetes_image: self.kubernetes_image.clone(),
            cpus: self.cpus,
            memory_mb: self.memory_mb,
            pids: self.pids,
            cpu_shares: None,
            nofile: None,
            log_max_mb: None,
            log_max_files: None,
            disk_quota_mb: None,
            disk_check_seconds: None,
            min_free_disk_mb: None,
            runtime: None,
            egress: None,
            netpolicy: None,
            egress_mbit: None,
            max_sessions_per_ip: None,
            invite_token: None,
            idle_minutes: None,
            idle_grace_minutes: None,
            idle_seconds: None,
            idle_grace_seconds: None,
            stop_sessions_on_exit: self.stop_sessions_on_exit.then_some(true),
            registry_mirror: self.registry_mirror.clone(),
            create_per_minute: self.create_per_minute,
            ready_timeout_seconds: self.ready_timeout_seconds,
            playground_warm_pool: self.playground_warm_pool,
            network_pool: None,
            network_prefix: None,
            dockerd_on_demand: None,
        }
    }
}

fn load_config(args: &ServeArgs) -> anyhow::Result<Config> {
    Ok(drydock::ops::load_config(
        args.config.as_deref(),
        &args.settings(),
    )?)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let config = load_config(&args).context("loading the configuration")?;
            drydock::run(config, shutdown_signal())
                .await
                .context("running the server")?;
        }
        Command::Lessons {
            command: LessonsCommand::Lint { dir },
        } => {
            let ok = drydock::lessons::lint::run(
                dir.as_deref(),
                &mut std::io::stdout(),
                &mut std::io::stderr(),
            );
            if !ok {
                std::process::exit(1);
            }
        }
        Command::Backup { config, dest } => {
            let config = drydock::ops::load_config(config.as_deref(), &Settings::default())
                .context("loading the configuration")?;
            let written = drydock::ops::backup::run(&config.data_dir, &dest)
                .await
                .with_context(|| format!("backing up the store to {}", dest.display()))?;
            println!("{}", written.db.display());
            if let Some(id) = written.server_id {
                println!("{}", id.display());
            }
        }
        Command::Doctor { config } => {
            if !drydock::ops::doctor::run(config.as_deref(), &mut std::io::stdout()).await {
                std::process::exit(1);
            }
        }
    }
    Ok(())
}
