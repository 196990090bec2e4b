use super::*;

fn record() -> UsageRecord {
    UsageRecord {
        request_id: "r".into(),
        key_id: "k".into(),
        account_id: "a".into(),
        model: "gpt-4.1".into(),
        upstream_model: "u".into(),
        provider: "openai".into(),
        status: 200,
        input_tokens: 100,
        output_tokens: 11,
        cache_read_tokens: 40,
        cache_creation_tokens: 0,
        estimated: false,
        stream: true,
        latency_ms: 600,
        ttft_ms: Some(100),
        cost_nanos: 5,
        created_at_ms: 0,
        attempts: 1,
        cut: false,
    }
}

fn find<'u>(us: &'u [Update], name: &str) -> Option<&'u Update> {
    us.iter().find(|u| u.name == name)
}

#[test]
fn a_streamed_request_adds_its_count_tokens_by_type_and_three_timings() {
    let us = for_record(&record(), "chat_completions", 1);
    let on = "model.gpt-4_1.provider.openai";
    let req = find(
        &us,
        &format!("tollgate_requests.{on}.operation.chat_completions.status_class.2xx"),
    )
    .unwrap();
    assert_eq!((req.kind, req.value), (Kind::Counter, 1));
    assert_eq!(
        find(&us, &format!("tollgate_tokens.{on}.type.input"))
            .unwrap()
            .value,
        60
    );
    assert_eq!(
        find(&us, &format!("tollgate_tokens.{on}.type.cached"))
            .unwrap()
            .value,
        40
    );
    assert_eq!(
        find(&us, &format!("tollgate_tokens.{on}.type.output"))
            .unwrap()
            .value,
        11
    );
    let d = find(&us, &format!("tollgate_request_duration_ms.{on}")).unwrap();
    assert_eq!((d.kind, d.value), (Kind::Histogram, 600));
    assert_eq!(
        find(&us, &format!("tollgate_ttft_ms.{on}")).unwrap().value,
        100
    );
    // (600 - 100) ms over the 10 tokens after the first.
    assert_eq!(
        find(&us, &format!("tollgate_time_per_output_token_us.{on}"))
            .unwrap()
            .value,
        50_000
    );
    assert!(us
        .iter()
        .all(|u| !u.name.starts_with("tollgate_upstream_errors")));
    assert!(us.iter().all(|u| !u.name.starts_with("tollgate_failover")));
}

#[test]
fn an_error_a_failover_and_an_estimate_each_have_their_series() {
    let mut r = record();
    r.status = 502;
    r.stream = false;
    r.output_tokens = 0;
    r.cache_read_tokens = 0;
    r.estimated = true;
    let us = for_record(&r, "messages", 3);
    assert!(find(
        &us,
        "tollgate_requests.model.gpt-4_1.provider.openai.operation.messages.status_class.5xx"
    )
    .is_some());
    assert_eq!(
        find(&us, "tollgate_upstream_errors.model.gpt-4_1.status.502")
            .unwrap()
            .value,
        1
    );
    assert_eq!(
        find(&us, "tollgate_failover_retries.model.gpt-4_1")
            .unwrap()
            .value,
        2
    );
    assert_eq!(
        find(&us, "tollgate_tokens_estimated.model.gpt-4_1")
            .unwrap()
            .value,
        1
    );
    // No stream: no time to first token; no zero-token counters.
    assert!(us.iter().all(|u| !u.name.starts_with("tollgate_ttft_ms")));
    assert!(us
        .iter()
        .all(|u| !u.name.contains(".type.output") && !u.name.contains(".type.cached")));
}

#[test]
fn label_values_cannot_end_a_value_or_grow_without_bound() {
    assert_eq!(label("gpt-4.1"), "gpt-4_1");
    assert_eq!(label("Qwen/Qwen2.5 72B"), "Qwen_Qwen2_5_72B");
    assert_eq!(label(""), "none");
    assert_eq!(label(&"x".repeat(300)).len(), 64);
    assert_eq!(label("é.ü"), "___");
    assert_eq!(
        for_reply("rate_limit_exceeded").name,
        "tollgate_replies.code.rate_limit_exceeded"
    );
    assert_eq!(
        bounded("tollgate_requests.model.m.provider.p.operation.o.status_class.2xx"),
        "tollgate_requests.model.other.provider.other.operation.other.status_class.other"
    );
    assert_eq!(
        bounded("tollgate_replies.code.x"),
        "tollgate_replies.code.other"
    );
}

#[test]
fn per_key_series_count_requests_tokens_and_cost_under_the_keys_label() {
    let mut r = record();
    r.key_id = "key.with.dots".into();
    r.cost_nanos = 1_500;
    let us = for_key(&r);
    let names: Vec<(&str, u64)> = us.iter().map(|u| (u.name.as_str(), u.value)).collect();
    assert!(names.contains(&(
        "tollgate_key_requests.key.key_with_dots.status_class.2xx",
        1
    )));
    assert!(names.contains(&("tollgate_key_cost_nanos.key.key_with_dots", 1_500)));
    assert!(us.iter().all(|u| u.kind == Kind::Counter));
    r.status = 429;
    r.input_tokens = 0;
    r.output_tokens = 0;
    r.cost_nanos = 0;
    let names: Vec<String> = for_key(&r).into_iter().map(|u| u.name).collect();
    assert_eq!(
        names,
        vec!["tollgate_key_requests.key.key_with_dots.status_class.4xx"]
    );
}

#[test]
fn every_series_written_belongs_to_a_family_with_its_labels_and_kind() {
    let mut r = record();
    r.status = 503;
    r.estimated = true;
    let mut all = for_record(&r, "chat_completions", 3);
    all.extend(for_key(&r));
    all.push(for_reply("rate_limited"));
    all.push(for_idle_cut("gpt-4.1"));
    assert_eq!(
        all.last().map(|u| u.name.as_str()),
        Some("tollgate_idle_cuts.model.gpt-4_1")
    );
    let mut seen = std::collections::BTreeSet::new();
    for u in &all {
        let (index, values) = family_of(&u.name).unwrap_or_else(|| panic!("{}", u.name));
        assert_eq!(FAMILIES[index].kind, u.kind, "{}", u.name);
        assert_eq!(values.len(), FAMILIES[index].labels.len());
        seen.insert(FAMILIES[index].name);
    }
    assert_eq!(
        seen.len(),
        FAMILIES.len(),
        "a family nothing writes: {seen:?}"
    );
    let (_, values) = family_of("tollgate_tokens.model.m.provider.p.type.input").unwrap();
    assert_eq!(values, ["m", "p", "input"]);
}

#[test]
fn a_name_whose_labels_are_not_its_familys_has_no_family() {
    assert_eq!(family_of("tollgate_tokens.model.m.type.input"), None);
    assert_eq!(
        family_of("tollgate_tokens.model.m.provider.p.type.input.x.y"),
        None
    );
    assert_eq!(family_of("tollgate_tokens.model.m.provider.p.type"), None);
    assert_eq!(family_of("tollgate_unknown.model.m"), None);
    assert_eq!(
        family_of(&bounded("tollgate_replies.code.x")),
        Some((8, vec!["other"]))
    );
}

#[test]
fn past_the_bound_a_new_series_is_written_as_other_and_a_known_one_as_itself() {
    let mut seen: std::collections::HashMap<String, u32> = (0..MAX_SERIES)
        .map(|i| (format!("tollgate_replies.code.c{i}"), 0))
        .collect();
    assert_eq!(
        series_name("tollgate_replies.code.c7", &seen),
        "tollgate_replies.code.c7"
    );
    assert_eq!(
        series_name("tollgate_replies.code.new", &seen),
        "tollgate_replies.code.other"
    );
    seen.remove("tollgate_replies.code.c7");
    assert_eq!(
        series_name("tollgate_replies.code.new", &seen),
        "tollgate_replies.code.new"
    );
}
