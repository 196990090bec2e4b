//! The first choice among a model's deployments, with their health
//! (`health.rs`): by priority and weight among the usable ones; one that is
//! cooling down is nobody's first choice while another is usable, and one
//! that is probing is the first choice of the one request that claims it.

use tollgate_contract::snapshot::{Deployment, Model, Strategy};

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
        return by_strategy(model, &known, pick, view).map(|d| found(d, Vec::new()));
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
    let mut chosen = by_strategy(model, &usable(true), pick, view);
    if let Some(d) = chosen {
        if health(d) == Health::Probing && !view.claim_probe(&model.id, index_of(d)) {
            chosen = by_strategy(model, &usable(false), pick, view);
        }
    }
    chosen
        .or_else(|| by_strategy(model, &known, pick, view))
        .map(|d| found(d, marked))
}

/// One request in this many is chosen by weight under `least_latency`, so
/// that the slower deployments keep being measured.
pub const EXPLORE_ONE_IN: u64 = 10;

/// The choice among the `usable` deployments of the best priority, as the
/// model's strategy makes it.
fn by_strategy<'a>(
    model: &'a Model,
    usable: &dyn Fn(&Deployment) -> bool,
    pick: u64,
    view: &dyn View,
) -> Option<&'a Deployment> {
    let best = || {
        model
            .deployments
            .iter()
            .filter(|d| usable(d))
            .map(|d| d.priority)
            .min()
    };
    match model.strategy {
        Strategy::Weighted => routing::choose(&model.deployments, usable, pick),
        Strategy::Priority => {
            let best = best()?;
            model
                .deployments
                .iter()
                .find(|d| usable(d) && d.priority == best)
        }
        // The high bits: the low ones already pick by weight.
        Strategy::LeastLatency if (pick >> 32) % EXPLORE_ONE_IN == 0 => {
            routing::choose(&model.deployments, usable, pick)
        }
        Strategy::LeastLatency => {
            let best = best()?;
            model
                .deployments
                .iter()
                .enumerate()
                .filter(|(_, d)| usable(d) && d.priority == best)
                .min_by_key(|(i, _)| view.latency_us(&model.id, *i))
                .map(|(_, d)| d)
        }
    }
}

#[cfg(test)]
#[path = "choice_tests.rs"]
mod tests;
