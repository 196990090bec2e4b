//! The control plane's binary: reads its settings from the environment and
//! serves the router from the library until SIGINT or SIGTERM.

use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use tollgate_control_plane::settings::Settings;

/// How long a graceful shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Dropped last: what traces are still queued go out at exit.
    let _telemetry = tollgate_control_plane::telemetry::init()?;
    let settings = Settings::from_env()?;
    let listen = settings.listen;
    let state = tollgate_control_plane::state(settings).await?;
    tollgate_control_plane::spawn_background(&state);

    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let app = tollgate_control_plane::app(state.clone());
    let bound = listener.local_addr()?;
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    println!("tollgate-control-plane listening on http://{bound}");
    use std::io::Write;
    std::io::stdout().flush()?;

    let closing = state.clone();
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        // Held config polls end at once; other requests get SHUTDOWN_GRACE.
        tollgate_control_plane::closing(&closing);
        let _ = stop_tx.send(true);
    });
    let forced = async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = server => result.context("serving")?,
        _ = forced => tracing::warn!("requests still in flight after the grace period; exiting"),
    }
    tollgate_control_plane::close(&state).await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
