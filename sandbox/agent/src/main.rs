//! The `drydock-agent` binary: reads the configuration from the environment, prepares the
//! instance when it is PID 1, and runs the agent until SIGTERM/SIGINT (exit status 0).

use std::process::ExitCode;

use drydock_agent::config::Config;
use drydock_protocol::agent::SECRET_ENV;

fn main() -> ExitCode {
    if std::env::args().any(|a| a == "--version" || a == "-V") {
        println!("drydock-agent {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if std::env::args().any(|a| a == "--help" || a == "-h") {
        println!(
            "drydock-agent {}: the Drydock in-instance agent.\n\
             Configured by the environment: {SECRET_ENV} (required), DRYDOCK_AGENT_LISTEN, \
             DRYDOCK_AGENT_HOME, DRYDOCK_AGENT_FILES_ROOT, DRYDOCK_AGENT_MAX_FILE, \
             DRYDOCK_DOCKERD, DRYDOCK_DOCKERD_BIN, DRYDOCK_REGISTRY_MIRROR, \
             DRYDOCK_INSECURE_REGISTRIES, DRYDOCK_K3S, DRYDOCK_K3S_BIN, RUST_LOG.",
            env!("CARGO_PKG_VERSION")
        );
        return ExitCode::SUCCESS;
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("drydock-agent: {e}");
            return ExitCode::from(2);
        }
    };
    // Nothing started later inherits the secret. Still single-threaded here.
    std::env::remove_var(SECRET_ENV);

    if std::process::id() == 1 {
        drydock_agent::process::oom::protect_self();
        drydock_agent::process::cgroups::make_root_rshared();
        if config.cgroup_setup {
            drydock_agent::process::cgroups::setup();
        } else {
            tracing::info!("DRYDOCK_CGROUP_SETUP=0: leaving /sys/fs/cgroup as it is");
        }
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("drydock-agent: starting the async runtime failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(drydock_agent::run(config)) {
        Ok(()) => {
            tracing::info!("stopped");
            // Threads blocked on PTY reads must not hold the exit.
            std::process::exit(0);
        }
        Err(e) => {
            eprintln!("drydock-agent: {e:#}");
            ExitCode::FAILURE
        }
    }
}
