//! Budgets with a period: the spend resets at the period's start (UTC), by
//! the state's clock moved past the boundary (no waiting for a day), and
//! `POST /admin/keys/{id}/reset-spend` resets it now. The snapshot raises
//! the key's budget by the spend before the reset, so the spend the filter
//! rebases on only grows.

mod helpers;

use helpers::{backends, spawn_app, Auth, TestApp};
use serde_json::{json, Value};

const DAY_MS: i64 = 86_400_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Bills `nanos` to the key, as the filter's usage record would.
async fn spend(app: &TestApp, key: &str, account: &str, n: u32, nanos: u64) {
    let record = json!({
        "request_id": format!("req-{key}-{n}"), "key_id": key, "account_id": account,
        "model": "m", "upstream_model": "m", "provider": "p", "status": 200,
        "input_tokens": 1, "output_tokens": 1, "estimated": false, "stream": false,
        "latency_ms": 5, "ttft_ms": null, "cost_nanos": nanos, "created_at_ms": now_ms(),
    });
    let a = app
        .call(
            "POST",
            "/internal/usage",
            &Auth::FilterSecret,
            Some(&json!({"records": [record]})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
}

async fn snapshot_key(app: &TestApp, key: &str) -> Value {
    app.state.try_publish().await.expect("publish");
    let snap = app
        .call("GET", "/internal/config", &Auth::FilterSecret, None)
        .await;
    snap.body["keys"]
        .as_array()
        .and_then(|ks| ks.iter().find(|k| k["id"] == key).cloned())
        .unwrap_or(Value::Null)
}

/// The key as the admin API shows it, and the budget the filter has left.
async fn state_of(app: &TestApp, key: &str) -> (f64, u64) {
    let shown = app
        .admin_ok("GET", &format!("/admin/keys/{key}"), None, 200)
        .await;
    let k = snapshot_key(app, key).await;
    let left = k["budget_nanos"].as_u64().unwrap_or(0) - k["spent_nanos"].as_u64().unwrap_or(0);
    (shown["spent_usd"].as_f64().unwrap_or(-1.0), left)
}

#[tokio::test]
async fn a_daily_budget_resets_at_midnight_utc_and_a_monthly_one_at_the_first() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        // The clock at 23:59:58 UTC of the last day of this month.
        let now = now_ms();
        let next_month = {
            let mut probe = now - now.rem_euclid(DAY_MS);
            let month = |ms: i64| chrono_month(ms);
            let m = month(probe);
            while month(probe) == m {
                probe += DAY_MS;
            }
            probe
        };
        app.state.clock.set_offset_ms(next_month - 2_000 - now);
        let account = app.account("a").await;
        let mut keys = Vec::new();
        for period in ["daily", "monthly", "weekly"] {
            let k = app
                .admin_ok(
                    "POST",
                    "/admin/keys",
                    Some(&json!({"account_id": account, "budget_usd": 1, "budget_period": period})),
                    201,
                )
                .await;
            assert_eq!(k["budget_period"], period);
            let reset_at = k["budget_reset_at"].as_i64().unwrap_or(0) * 1000;
            if period != "weekly" {
                assert_eq!(reset_at, next_month, "{backend:?} {period}");
            } else {
                assert!(
                    reset_at > next_month - 2_000 && reset_at <= next_month - 2_000 + 7 * DAY_MS
                );
            }
            keys.push(k["id"].as_str().unwrap_or_default().to_string());
        }
        let fixed = app
            .admin_ok(
                "POST",
                "/admin/keys",
                Some(&json!({"account_id": account, "budget_usd": 1})),
                201,
            )
            .await["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        keys.push(fixed);
        for (n, k) in keys.iter().enumerate() {
            spend(&app, k, &account, n as u32, 600_000_000).await;
            assert_eq!(state_of(&app, k).await, (0.6, 400_000_000), "{backend:?}");
        }
        // Nothing rolls before the boundary.
        assert!(!tollgate_control_plane::roll_budget_periods(&app.state).await);

        // Past midnight on the 1st: daily and monthly reset, the key
        // without a period does not (weekly only if the 1st is a Monday).
        app.state.clock.set_offset_ms(next_month + 1_000 - now);
        assert!(tollgate_control_plane::roll_budget_periods(&app.state).await);
        assert!(
            !tollgate_control_plane::roll_budget_periods(&app.state).await,
            "once"
        );
        assert_eq!(
            state_of(&app, &keys[0]).await,
            (0.0, 1_000_000_000),
            "{backend:?}"
        );
        assert_eq!(state_of(&app, &keys[1]).await, (0.0, 1_000_000_000));
        assert_eq!(state_of(&app, &keys[3]).await, (0.6, 400_000_000));
        let shown = app
            .admin_ok("GET", &format!("/admin/keys/{}", keys[0]), None, 200)
            .await;
        assert_eq!(shown["lifetime_spent_usd"], json!(0.6));
        assert_eq!(
            shown["budget_reset_at"].as_i64().unwrap_or(0) * 1000,
            next_month + DAY_MS
        );
        // Spend after the reset counts in the new period.
        spend(&app, &keys[0], &account, 10, 250_000_000).await;
        assert_eq!(state_of(&app, &keys[0]).await, (0.25, 750_000_000));

        // The admin resets any key now; a missing key is a 404.
        let reset = app
            .admin_ok(
                "POST",
                &format!("/admin/keys/{}/reset-spend", keys[3]),
                None,
                200,
            )
            .await;
        assert_eq!(reset["spent_usd"], json!(0.0), "{backend:?}: {reset}");
        assert_eq!(state_of(&app, &keys[3]).await, (0.0, 1_000_000_000));
        app.admin_ok("POST", "/admin/keys/key_nope/reset-spend", None, 404)
            .await;
    }
}

#[tokio::test]
async fn a_period_is_set_and_cleared_by_patch_and_bad_ones_are_400s() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (key, _, account) = app.key().await;
        for body in [
            json!({"account_id": account, "budget_period": "hourly"}),
            json!({"account_id": account, "budget_period": 1}),
        ] {
            let a = app.admin("POST", "/admin/keys", Some(&body)).await;
            assert_eq!(a.status, 400, "{backend:?}: {}", a.body);
        }
        let uri = format!("/admin/keys/{key}");
        let a = app
            .admin("PATCH", &uri, Some(&json!({"budget_period": "yearly"})))
            .await;
        assert_eq!((a.status, a.param().clone()), (400, json!("budget_period")));
        let k = app
            .admin_ok(
                "PATCH",
                &uri,
                Some(&json!({"budget_period": "weekly"})),
                200,
            )
            .await;
        assert_eq!(k["budget_period"], "weekly");
        assert!(k["budget_reset_at"].as_i64().unwrap_or(0) * 1000 > now_ms());
        let k = app
            .admin_ok("PATCH", &uri, Some(&json!({"budget_period": null})), 200)
            .await;
        assert_eq!(
            (&k["budget_period"], &k["budget_reset_at"]),
            (&json!(null), &json!(null))
        );
    }
}

/// The month (1-12) of a unix-ms time (days to civil date).
fn chrono_month(ms: i64) -> i64 {
    let z = ms.div_euclid(DAY_MS) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    if mp < 10 {
        mp + 3
    } else {
        mp - 9
    }
}
