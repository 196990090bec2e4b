//! The loops that keep the filters' snapshot current without an admin write
//! here: a periodic rebuild (expiries, spend, writes by another replica) and,
//! on PostgreSQL, a `LISTEN` for the other control planes' `NOTIFY`.

use std::time::Duration;

use crate::db::{self, Backend, CONFIG_CHANNEL};
use crate::period::Period;
use crate::state::AppState;

/// How often the snapshot is rebuilt without an admin write.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5);
/// The shortest gap between two rebuilds for spend. The filter counts spend
/// locally in between, so this bounds work, not accuracy.
pub const SPEND_EVERY: Duration = Duration::from_millis(500);

/// How often keys whose budget period ended are reset (so a reset lands
/// within about this long of the period's start, plus the snapshot's trip).
pub const ROLL_EVERY: Duration = Duration::from_secs(1);

pub fn spawn(state: &AppState) {
    tokio::spawn(refresh_forever(state.clone()));
    tokio::spawn(roll_forever(state.clone()));
    tokio::spawn(db::rollup_writer::run_forever(state.db.clone()));
    if let (Backend::Postgres, Some(url)) = (state.db.backend, state.settings.database_url.clone())
    {
        tokio::spawn(listen_forever(state.clone(), url));
    }
}

/// On PostgreSQL: rebuild as soon as another control plane says it changed
/// something (`LISTEN tollgate_config`); reconnects with a backoff.
async fn listen_forever(state: AppState, url: String) {
    let mut delay = Duration::from_millis(200);
    loop {
        match sqlx::postgres::PgListener::connect(&url).await {
            Ok(mut listener) => {
                if let Err(e) = listener.listen(CONFIG_CHANNEL).await {
                    tracing::warn!(error = %e, "LISTEN failed");
                } else {
                    delay = Duration::from_millis(200);
                    // Whatever changed while not listening.
                    state.publish_from(false).await;
                    while listener.recv().await.is_ok() {
                        tracing::debug!("another control plane changed the config");
                        state.publish_from(false).await;
                    }
                    tracing::warn!("lost the LISTEN connection; reconnecting");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot LISTEN for other control planes' changes"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

/// Rebuilds every few seconds (expiries, writes by another replica) and soon
/// after spend changed.
async fn refresh_forever(state: AppState) {
    let mut tick = tokio::time::interval(REFRESH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let spend = tokio::select! {
            _ = tick.tick() => false,
            _ = state.config.spend_changed_notified() => true,
        };
        // Spend moved here: the others' filters need it too. A periodic
        // rebuild only catches up with what others did: nothing to tell.
        state.publish_from(spend).await;
        tokio::time::sleep(SPEND_EVERY).await;
    }
}

/// Starts the current period for every key with a budget period still in an
/// earlier one (their spend resets, by the state's clock); whether any was.
pub async fn roll_periods(state: &AppState) -> bool {
    let now = state.clock.now_ms();
    let mut rolled = 0;
    for p in Period::ALL {
        match db::keys::roll_period(&state.db, p.as_str(), p.start(now)).await {
            Ok(n) => rolled += n,
            Err(e) => {
                tracing::warn!(period = p.as_str(), error = %e, "could not reset budget periods")
            }
        }
    }
    if rolled > 0 {
        tracing::info!(keys = rolled, "budget period started: spend reset");
    }
    rolled > 0
}

/// Resets the keys whose period ended, and publishes when any was.
async fn roll_forever(state: AppState) {
    let mut tick = tokio::time::interval(ROLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if roll_periods(&state).await {
            state.publish().await;
        }
    }
}
