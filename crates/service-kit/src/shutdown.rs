//! Graceful shutdown signal.

/// Resolves when the process receives SIGTERM or SIGINT (Ctrl-C).
///
/// The signal handlers are installed on first poll; a signal received before that
/// uses the default disposition (terminates the process).
pub async fn signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(
        signal = name,
        "shutdown signal received, draining in-flight requests"
    );
}
