//! `aig-sim`: binds, announces the address on stdout, serves until SIGTERM/SIGINT.

use std::io::Write;
use std::process::ExitCode;

use aig_sim::config::{self, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match config::parse(std::env::args().skip(1), |k| std::env::var(k).ok()) {
        Ok(Command::Run(config)) => config,
        Ok(Command::Help) => {
            print!("{}", config::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("aig-sim: {message}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("aig-sim: cannot listen on {}: {e}", config.listen);
            return ExitCode::FAILURE;
        }
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("aig-sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Exactly one line on stdout: tests read it to learn the port.
    let mut stdout = std::io::stdout().lock();
    let announced =
        writeln!(stdout, "{}", serde_json::json!({ "listening": addr.to_string() })).and_then(|()| stdout.flush());
    drop(stdout);
    if let Err(e) = announced {
        eprintln!("aig-sim: cannot write to stdout: {e}");
        return ExitCode::FAILURE;
    }
    eprintln!(
        "aig-sim: account {} gateway {} (auth {}), latency {} ms, cache ttl {} s",
        config.account_id,
        config.gateway_id,
        if config.gateway_token.is_empty() { "off" } else { "on" },
        config.latency_ms,
        config.cache_ttl
    );
    match aig_sim::serve(listener, config, shutdown_signal()).await {
        Ok(()) => {
            eprintln!("aig-sim: shutting down");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("aig-sim: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
