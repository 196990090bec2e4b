//! Group commit of ingest's batches: the batches that arrive while a
//! transaction is under way are written together in the next one, so that
//! the pages every batch touches (the records' last page and each index's,
//! a model's leaf in `usage_model`, the key's and account's spend) are
//! written once per group rather than once per batch. On SQLite most of
//! ingest's time was writing those pages to the WAL (`pwrite` a fifth of
//! the control plane's CPU, `fsync` at checkpoints another 7%).
//!
//! Every batch is still answered only after the commit that holds it. A
//! group whose records are all new goes in as one transaction
//! (`usage_insert::insert_all_new`); any other (a record already stored, or
//! an error) is rolled back whole and each of its batches done again alone
//! (`usage_insert::insert_batch`), so that a redelivery or a bad batch
//! changes nothing for the others. The commit runs on a task of its own:
//! a caller that goes away (its client gone) neither cancels it nor leaves
//! the other batches unanswered.

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use tollgate_contract::usage::UsageRecord;

use super::usage_insert::{insert_all_new, insert_batch};
use super::Db;
use crate::error::{ApiError, ApiResult};

/// The most records one group's transaction takes.
const MAX_GROUP_RECORDS: usize = 4000;

type Answer = (Vec<UsageRecord>, ApiResult<(usize, usize)>);

struct Waiting {
    records: Vec<UsageRecord>,
    answer: oneshot::Sender<Answer>,
}

/// The batches waiting for the next commit, and whose turn it is to commit.
#[derive(Default)]
pub struct Queue {
    waiting: Mutex<Vec<Waiting>>,
    turn: Arc<tokio::sync::Mutex<()>>,
}

/// Stores a batch (in a group with the batches that arrive beside it);
/// returns it with (inserted, already there), once committed.
pub async fn insert(db: &Db, records: Vec<UsageRecord>) -> Answer {
    let (answer, mut answered) = oneshot::channel();
    match db.commits.waiting.lock() {
        Ok(mut waiting) => waiting.push(Waiting { records, answer }),
        Err(_) => return (records, Err(gone())),
    }
    loop {
        let turn = tokio::select! {
            biased;
            a = &mut answered => return a.unwrap_or_else(|_| (Vec::new(), Err(gone()))),
            turn = db.commits.turn.clone().lock_owned() => turn,
        };
        // The commit before this turn may have taken this batch: then its
        // answer is here, else the batch is among those waiting now.
        if let Ok(a) = answered.try_recv() {
            return a;
        }
        let group = take_group(db);
        if group.is_empty() {
            continue;
        }
        let db = db.clone();
        tokio::spawn(async move {
            commit(&db, group).await;
            drop(turn);
        });
    }
}

/// The waiting batches, oldest first, up to `MAX_GROUP_RECORDS` records
/// (always at least one batch); the rest wait for the next turn.
fn take_group(db: &Db) -> Vec<Waiting> {
    let Ok(mut waiting) = db.commits.waiting.lock() else {
        return Vec::new();
    };
    let mut records = 0;
    let mut n = 0;
    for w in waiting.iter() {
        if n > 0 && records + w.records.len() > MAX_GROUP_RECORDS {
            break;
        }
        records += w.records.len();
        n += 1;
    }
    waiting.drain(..n).collect()
}

async fn commit(db: &Db, group: Vec<Waiting>) {
    if group.len() > 1 {
        let batches: Vec<&[UsageRecord]> = group.iter().map(|w| w.records.as_slice()).collect();
        if let Ok(true) = insert_all_new(db, &batches).await {
            for w in group {
                let n = w.records.len();
                let _ = w.answer.send((w.records, Ok((n, 0))));
            }
            return;
        }
    }
    for w in group {
        let result = insert_batch(db, &w.records).await;
        let _ = w.answer.send((w.records, result));
    }
}

fn gone() -> ApiError {
    ApiError::Internal(anyhow::anyhow!("the usage writer stopped"))
}
