//! `spawn_app` for router tests: the control plane's own state and router on
//! a fresh database (a temporary SQLite file, or a fresh PostgreSQL database
//! when `TOLLGATE_TEST_POSTGRES_URL` is set), called with `oneshot`, no
//! Envoy and no listener.

#![allow(dead_code)] // each test file uses its own part of the helpers

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::body::Body;
use axum::http::{header, HeaderMap, Request};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use sqlx::Connection;
use tollgate_control_plane::settings::Settings;
use tower::ServiceExt;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
pub const FILTER_SECRET: &str = "test-filter-secret-0123456789";
pub const FILTER_SECRET_HEADER: &str = "x-tollgate-filter-secret";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// SQLite always; PostgreSQL too when `TOLLGATE_TEST_POSTGRES_URL` is set.
pub fn backends() -> Vec<Backend> {
    let mut all = vec![Backend::Sqlite];
    if postgres_url().is_some() {
        all.push(Backend::Postgres);
    }
    all
}

fn postgres_url() -> Option<String> {
    std::env::var("TOLLGATE_TEST_POSTGRES_URL")
        .ok()
        .filter(|v| !v.is_empty())
}

/// A name no other test, in this run or a parallel one, uses.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// How a request authenticates.
#[derive(Debug, Clone)]
pub enum Auth {
    None,
    Bearer(String),
    FilterSecret,
    /// A data-path caller the filter checked: its secret and the identity
    /// headers, `(key id, account id)`.
    Keyed(String, String),
}

pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn param(&self) -> &Value {
        &self.body["error"]["param"]
    }
}

pub struct TestApp {
    pub backend: Backend,
    /// The state behind the router (its clock, the background steps).
    pub state: tollgate_control_plane::AppState,
    router: Router,
    data_dir: PathBuf,
    /// `(server URL, database name)` of a PostgreSQL database to drop.
    postgres: Option<(String, String)>,
}

/// An app with a key on an account and a provider `p1`, what the
/// bad-input tests start from: `(app, key id, account id)`.
pub async fn spawn_with_key_and_provider(backend: Backend) -> (TestApp, String, String) {
    let app = spawn_app(backend).await;
    let (key, _, account) = app.key().await;
    app.provider("p1").await;
    (app, key, account)
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    let data_dir = std::env::temp_dir().join(unique("tollgate-cp-test"));
    let (database_url, postgres) = match backend {
        Backend::Sqlite => (None, None),
        Backend::Postgres => {
            let server = postgres_url().expect("TOLLGATE_TEST_POSTGRES_URL");
            let name = unique("tollgate_test");
            let mut admin = sqlx::PgConnection::connect(&server)
                .await
                .expect("connect to TOLLGATE_TEST_POSTGRES_URL");
            sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .await
                .expect("create a test database");
            admin.close().await.expect("close");
            let mut url = url::Url::parse(&server).expect("TOLLGATE_TEST_POSTGRES_URL is a URL");
            url.set_path(&format!("/{name}"));
            (Some(url.to_string()), Some((server, name)))
        }
    };
    let settings = Settings {
        listen: "127.0.0.1:0".parse().expect("address"),
        data_dir: data_dir.clone(),
        database_url,
        admin_token: Some(ADMIN_TOKEN.to_string()),
        filter_secret: Some(FILTER_SECRET.to_string()),
        secret_key: None,
        key_prefix: "tg-".to_string(),
        allow_private_upstreams: false,
        redis_url: None,
        lease_fail_open: false,
        snapshot_page_keys: 500,
        clock_offset_ms: 0,
        ui_session_ttl: std::time::Duration::from_secs(3600),
        ui_secure_cookie: false,
        gateway_url: "http://localhost:8080".to_string(),
    };
    let state = tollgate_control_plane::state(settings)
        .await
        .expect("control plane state");
    TestApp {
        backend,
        router: tollgate_control_plane::app(state.clone()),
        state,
        data_dir,
        postgres,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
        if let Some((server, name)) = self.postgres.take() {
            let label = name.clone();
            // Its own runtime on its own thread: a test's runtime may be
            // shutting down, and `Drop` cannot await.
            let dropped = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    let mut admin = sqlx::PgConnection::connect(&server).await?;
                    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut admin)
                        .await?;
                    admin.close().await
                })
            })
            .join();
            if !matches!(dropped, Ok(Ok(()))) {
                eprintln!("could not drop the test database {label}");
            }
        }
    }
}

impl TestApp {
    pub async fn call(&self, method: &str, uri: &str, auth: &Auth, body: Option<&Value>) -> Answer {
        let mut req = Request::builder().method(method).uri(uri);
        match auth {
            Auth::None => {}
            Auth::Bearer(token) => {
                req = req.header(header::AUTHORIZATION, format!("Bearer {token}"))
            }
            Auth::FilterSecret => req = req.header(FILTER_SECRET_HEADER, FILTER_SECRET),
            Auth::Keyed(key_id, account_id) => {
                req = req
                    .header(FILTER_SECRET_HEADER, FILTER_SECRET)
                    .header("x-tollgate-key-id", key_id)
                    .header("x-tollgate-account-id", account_id)
            }
        }
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(v).expect("json"))
            }
            None => Body::empty(),
        };
        let res = self
            .router
            .clone()
            .oneshot(req.body(body).expect("request"))
            .await
            .expect("the router answers");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        let csv = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/csv"));
        let body = if bytes.is_empty() {
            Value::Null
        } else if csv {
            // The usage export: its text, as a JSON string.
            Value::String(String::from_utf8_lossy(&bytes).into_owned())
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!(
                    "{method} {uri}: {status} with a body that is not JSON: {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    /// A call with the admin token.
    pub async fn admin(&self, method: &str, uri: &str, body: Option<&Value>) -> Answer {
        self.call(method, uri, &Auth::Bearer(ADMIN_TOKEN.to_string()), body)
            .await
    }

    /// A call as a keyed caller, as the filter forwards it.
    pub async fn keyed(&self, method: &str, uri: &str, key_id: &str, account_id: &str) -> Answer {
        let auth = Auth::Keyed(key_id.to_string(), account_id.to_string());
        self.call(method, uri, &auth, None).await
    }

    /// A call with the admin token that must answer `want`.
    pub async fn admin_ok(
        &self,
        method: &str,
        uri: &str,
        body: Option<&Value>,
        want: u16,
    ) -> Value {
        let answer = self.admin(method, uri, body).await;
        assert_eq!(
            answer.status, want,
            "{:?}: {method} {uri}: {}",
            self.backend, answer.body
        );
        answer.body
    }

    /// A new account, with no balance or limit.
    pub async fn account(&self, name: &str) -> String {
        let account = self
            .admin_ok("POST", "/admin/accounts", Some(&json!({"name": name})), 201)
            .await;
        account["id"].as_str().expect("account id").to_string()
    }

    /// A new provider `id` at a public URL, with no credential; its answer.
    pub async fn provider(&self, id: &str) -> Value {
        let body = json!({"id": id, "base_url": "https://example.com/v1"});
        self.admin_ok("POST", "/admin/providers", Some(&body), 201)
            .await
    }

    /// A new key on a new account: `(key id, secret, account id)`.
    pub async fn key(&self) -> (String, String, String) {
        let account = self.account("key owner").await;
        let key = self
            .admin_ok(
                "POST",
                "/admin/keys",
                Some(&json!({"account_id": account})),
                201,
            )
            .await;
        (
            key["id"].as_str().expect("key id").to_string(),
            key["key"].as_str().expect("the secret").to_string(),
            account,
        )
    }
}

/// A usage record as the filter posts it (`/internal/usage`): key `key_<key>`
/// of `acct_0`, model `m<model>`, at `at` (unix ms), costing `cost` nanos.
pub fn record_json(id: &str, key: usize, model: usize, at: i64, cost: u64) -> Value {
    json!({
        "request_id": id, "key_id": format!("key_{key}"), "account_id": "acct_0",
        "model": format!("m{model}"), "upstream_model": "u", "provider": "p",
        "status": 200, "input_tokens": 10 + key, "output_tokens": 1 + model,
        "estimated": false, "stream": false, "latency_ms": 30 + model,
        "ttft_ms": null, "cost_nanos": cost, "created_at_ms": at,
    })
}
