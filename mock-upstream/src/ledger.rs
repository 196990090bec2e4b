//! The ledger: what the mock served, one entry a `POST` under `/v1`,
//! kept in memory and served at `/_mock/ledger`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Map, Value};

#[derive(Default)]
pub struct AppState {
    /// Ledger entries, each tagged with a unique id so that updates land on
    /// the right entry even if the ledger was cleared in between.
    pub ledger: Mutex<Vec<(u64, Value)>>,
    pub ledger_seq: AtomicU64,
    /// Numbers the answers: `chatcmpl-mock-<n>`, `resp_mock_<n>`, ...
    pub counter: AtomicU64,
}

pub type Shared = Arc<AppState>;

impl AppState {
    pub fn next_id(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn ledger(&self) -> MutexGuard<'_, Vec<(u64, Value)>> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends an entry and returns its id.
    pub fn record(&self, entry: Value) -> u64 {
        let id = self.ledger_seq.fetch_add(1, Ordering::Relaxed);
        self.ledger().push((id, entry));
        id
    }

    /// Sets fields of the entry `id`, if it is still in the ledger.
    pub fn update(&self, id: u64, fields: &[(&str, Value)]) {
        let mut ledger = self.ledger();
        if let Some((_, Value::Object(entry))) = ledger.iter_mut().rev().find(|(i, _)| *i == id) {
            for (name, value) in fields {
                entry.insert((*name).to_owned(), value.clone());
            }
        }
    }
}

/// Writes the final state of a streamed answer into the ledger when dropped,
/// i.e. when the stream ends, is cut, or the client goes away.
pub struct LedgerGuard {
    pub state: Shared,
    pub id: u64,
    pub words: usize,
    pub completed: bool,
}

impl Drop for LedgerGuard {
    fn drop(&mut self) {
        let fields = [
            ("completion_tokens", self.words.into()),
            ("completed", self.completed.into()),
        ];
        self.state.update(self.id, &fields);
    }
}

pub fn headers_json(headers: &HeaderMap) -> Value {
    let mut map = Map::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match map.get_mut(name.as_str()) {
            Some(Value::String(existing)) => *existing = format!("{existing}, {value}"),
            _ => drop(map.insert(name.as_str().to_owned(), value.into())),
        }
    }
    Value::Object(map)
}

pub fn header_string(headers: &HeaderMap, name: &str) -> Value {
    let value = headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    value.map_or(Value::Null, Value::from)
}

pub async fn ledger_get(State(state): State<Shared>) -> Json<Value> {
    let entries: Vec<Value> = state.ledger().iter().map(|(_, e)| e.clone()).collect();
    Json(json!({ "entries": entries }))
}

pub async fn ledger_delete(State(state): State<Shared>) -> StatusCode {
    state.ledger().clear();
    StatusCode::NO_CONTENT
}
