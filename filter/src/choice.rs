//! The first choice among a model's deployments, with their health
//! (`health.rs`): by priority and weight among the usable ones; one that is
//! cooling down is nobody's first choice while another is usable, and one
//! that is probing is the first choice of the one request that claims it.

use tollgate_contract::snapshot::{Deployment, Model};

use crate::health::{Health, View};
use crate::routing;

#[derive(Debug)]
pub struct Choice<'a> {
    pub deployment: &'a Deployment,
    pub index: usize,
    /// Deployments that had a health mark when the choice was made (the
    /// answer of one of them clears its mark).
    pub marked: Vec<u32>,
}

/// `known`: its provider is in the snapshot. Health is asked only of a
/// model with failover routes (the forward proxy has no one to fail over to).
pub fn first<'a>(
    model: &'a Model,
    known: impl Fn(&Deployment) -> bool,
    view: &dyn View,
    pick: u64,
) -> Option<Choice<'a>> {
    let index_of = |d: &Deployment| {
        model
            .deployments
            .iter()
            .position(|x| std::ptr::eq(x, d))
            .unwrap_or_default()
    };
    let found = |d: &'a Deployment, marked: Vec<u32>| Choice {
        deployment: d,
        index: index_of(d),
        marked,
    };
    if model.routes.is_empty() {
        return routing::choose(&model.deployments, known, pick).map(|d| found(d, Vec::new()));
    }
    // Each mark read once (a shared-data read each).
    let now = view.now_ms();
    let marks: Vec<_> = (0..model.deployments.len())
        .map(|i| view.mark(&model.id, i))
        .collect();
    let health = |d: &Deployment| {
        marks
            .get(index_of(d))
            .copied()
            .unwrap_or_default()
            .health(now)
    };
    let marked: Vec<u32> = marks
        .iter()
        .enumerate()
        .filter(|(_, m)| **m != Default::default())
        .map(|(i, _)| i as u32)
        .collect();
    let usable = |probe: bool| {
        let known = &known;
        move |d: &Deployment| {
            known(d)
                && match health(d) {
                    Health::Healthy => true,
                    Health::Probing => probe,
                    Health::Cooling { .. } => false,
                }
        }
    };
    let mut chosen = routing::choose(&model.deployments, usable(true), pick);
    if let Some(d) = chosen {
        if health(d) == Health::Probing && !view.claim_probe(&model.id, index_of(d)) {
            chosen = routing::choose(&model.deployments, usable(false), pick);
        }
    }
    chosen
        .or_else(|| routing::choose(&model.deployments, &known, pick))
        .map(|d| found(d, marked))
}

#[cfg(test)]
#[path = "choice_tests.rs"]
mod tests;
