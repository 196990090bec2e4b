//! Embeddings: a fixed small vector per input.

use serde_json::{json, Value};

use super::{with_usage, Meta};

const EMBEDDING_DIMS: usize = 8;

pub fn embeddings_answer(m: &Meta, inputs: usize) -> Value {
    let data: Vec<Value> = (0..inputs)
        .map(|index| {
            let base = (index * EMBEDDING_DIMS) as f64;
            let vector: Vec<f64> = (0..EMBEDDING_DIMS)
                .map(|j| (base + j as f64 + 1.0) / 100.0)
                .collect();
            json!({"object": "embedding", "index": index, "embedding": vector})
        })
        .collect();
    let body = json!({"object": "list", "data": data, "model": m.model});
    let usage = json!({"prompt_tokens": m.prompt_tokens, "total_tokens": m.prompt_tokens});
    with_usage(body, m.final_usage(usage))
}
