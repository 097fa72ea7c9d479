use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::graph::Dag;
use crate::plan::{self, Mode};
use crate::providers::fake::Fake;
use crate::providers::ApiStats;
use crate::render::{Desired, DesiredResource};
use crate::state::crypto::Key;
use crate::state::{LockInfo, SledStore};

fn desired(items: &[(&str, &str, &[&str])]) -> Desired {
    let mut resources: Vec<DesiredResource> = items
        .iter()
        .map(|(addr, value, deps)| DesiredResource {
            address: addr.parse().unwrap(),
            properties: serde_json::from_value(json!({ "value": value })).unwrap(),
            depends_on: deps.iter().map(|d| d.parse().unwrap()).collect(),
            lifecycle: Default::default(),
            template: "test".into(),
        })
        .collect();
    resources.sort_by(|a, b| a.address.cmp(&b.address));
    let mut dag = Dag::new(resources.len());
    for (i, r) in resources.iter().enumerate() {
        for d in &r.depends_on {
            dag.add_edge(i, resources.iter().position(|x| &x.address == d).unwrap());
        }
    }
    Desired {
        resources,
        dag,
        tenants: Default::default(),
    }
}

struct Env {
    _dir: tempfile::TempDir,
    store: SledStore,
    registry: Registry,
    fake: Arc<std::sync::Mutex<crate::providers::fake::FakeState>>,
    stats: Arc<ApiStats>,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let holder = LockInfo {
        scope: "workspace".into(),
        owner: "t".into(),
        host: "h".into(),
        pid: 1,
        command: "t".into(),
        since: "".into(),
        expiry: "".into(),
        process_start: None,
    };
    let store = SledStore::open(dir.path(), Key::generate(), &holder, Duration::ZERO).unwrap();
    let stats = Arc::new(ApiStats::default());
    let fake = Fake::new(stats.clone());
    let state = fake.state.clone();
    let registry = Registry::with_providers(vec![Arc::new(fake)], stats.clone());
    Env {
        _dir: dir,
        store,
        registry,
        fake: state,
        stats,
    }
}

async fn plan_for(e: &Env, d: &Desired, refresh: bool) -> Plan {
    let mut d = d.clone();
    let opts = plan::Options {
        mode: Mode::Normal,
        refresh,
        tenants: vec![],
        allow_bulk: false,
    };
    plan::build(
        &mut d,
        e.store.resources().unwrap(),
        e.store.serial().unwrap(),
        "h",
        &e.registry,
        &opts,
        &mut plan::Assumed::default(),
    )
    .await
    .unwrap()
}

fn fast() -> Options {
    Options {
        retry: RetryPolicy {
            backoff: Duration::from_millis(1),
            ..RetryPolicy::default()
        },
        ..Options::default()
    }
}

#[tokio::test]
async fn batches_creates_refreshes_and_deletes() {
    let e = env();
    let items: Vec<(String, String)> = (0..30)
        .map(|i| (format!("t{i:02}/fake_item.a"), format!("v{i}")))
        .collect();
    let refs: Vec<(&str, &str, &[&str])> = items
        .iter()
        .map(|(a, v)| (a.as_str(), v.as_str(), &[][..]))
        .collect();
    let d = desired(&refs);
    let p = plan_for(&e, &d, true).await;
    assert_eq!(p.summary().add, 30);
    let r = apply(&p, &e.store, &e.registry, &fast(), &NoHook)
        .await
        .unwrap();
    assert_eq!(r.created, 30);
    let batches = e.fake.lock().unwrap().apply_batches.clone();
    assert_eq!(batches.iter().sum::<usize>(), 30);
    assert!(
        batches.iter().any(|&b| b > 1),
        "ready creates share a provider call: {batches:?}"
    );
    let p2 = plan_for(&e, &d, true).await;
    assert!(!p2.has_changes());
    assert_eq!(
        e.fake.lock().unwrap().read_batches,
        vec![30],
        "refresh reads all 30 in one call"
    );
    assert_eq!(e.stats.get("fake", "List"), 1);

    let p3 = plan_for(&e, &desired(&[]), false).await;
    let r = apply(&p3, &e.store, &e.registry, &fast(), &NoHook)
        .await
        .unwrap();
    assert_eq!(r.deleted, 30);
    let batches = e.fake.lock().unwrap().delete_batches.clone();
    assert_eq!(batches.iter().sum::<usize>(), 30);
    assert!(
        batches.iter().any(|&b| b > 1),
        "ready deletes share a provider call: {batches:?}"
    );
    assert!(e.fake.lock().unwrap().objects.is_empty());
}

#[tokio::test]
async fn retries_transient_errors_and_skips_only_dependents_of_failures() {
    let e = env();
    e.fake.lock().unwrap().transient.insert("flaky".into(), 2);
    e.fake.lock().unwrap().fatal.push("bad".into());
    let d = desired(&[
        ("acme/fake_item.flaky", "1", &[]),
        ("acme/fake_item.bad", "2", &[]),
        ("acme/fake_item.child", "3", &["acme/fake_item.bad"]),
        ("acme/fake_item.free", "4", &[]),
    ]);
    let p = plan_for(&e, &d, false).await;
    let r = apply(&p, &e.store, &e.registry, &fast(), &NoHook)
        .await
        .unwrap();
    assert_eq!(r.created, 2, "{r:?}");
    assert_eq!(r.failed.len(), 1);
    assert_eq!(
        r.skipped,
        vec!["acme/fake_item.child".parse::<ResourceAddr>().unwrap()]
    );
    assert!(
        e.store.intents().unwrap().is_empty(),
        "failed creates leave no intent"
    );
    let names: Vec<String> = e
        .store
        .resources()
        .unwrap()
        .iter()
        .map(|r| r.address.to_string())
        .collect();
    assert_eq!(names, vec!["acme/fake_item.flaky", "acme/fake_item.free"]);
}

#[tokio::test]
async fn rollback_deletes_what_the_run_created() {
    let e = env();
    e.fake.lock().unwrap().fatal.push("bad".into());
    let d = desired(&[
        ("acme/fake_item.a", "1", &[]),
        ("acme/fake_item.bad", "2", &["acme/fake_item.a"]),
    ]);
    let p = plan_for(&e, &d, false).await;
    let r = apply(
        &p,
        &e.store,
        &e.registry,
        &Options {
            rollback_on_failure: true,
            ..fast()
        },
        &NoHook,
    )
    .await
    .unwrap();
    assert_eq!(r.rolled_back.len(), 1);
    assert!(e.store.resources().unwrap().is_empty());
    assert!(e.fake.lock().unwrap().objects.is_empty());
}

#[tokio::test]
async fn deletes_run_in_reverse_dependency_order() {
    let e = env();
    let d = desired(&[
        ("acme/fake_item.a", "1", &[]),
        ("acme/fake_item.b", "2", &["acme/fake_item.a"]),
        ("acme/fake_item.c", "3", &["acme/fake_item.b"]),
    ]);
    let p = plan_for(&e, &d, false).await;
    apply(&p, &e.store, &e.registry, &fast(), &NoHook)
        .await
        .unwrap();
    let empty = desired(&[]);
    let p = plan_for(&e, &empty, true).await;
    assert_eq!(p.summary().destroy, 3);
    apply(&p, &e.store, &e.registry, &fast(), &NoHook)
        .await
        .unwrap();
    assert_eq!(
        e.fake.lock().unwrap().deletes,
        vec!["acme/fake_item.c", "acme/fake_item.b", "acme/fake_item.a"]
    );
}

#[tokio::test]
async fn intents_of_a_killed_run_are_adopted_or_forgotten() {
    let e = env();
    let addr: ResourceAddr = "acme/fake_item.a".parse().unwrap();
    // The object was created but the run died before recording it.
    e.fake.lock().unwrap().objects.insert(
        addr.to_string(),
        serde_json::from_value(json!({"value": "1", "uid": "u1"})).unwrap(),
    );
    for (tok, a) in [
        ("t1", addr.clone()),
        ("t2", "acme/fake_item.b".parse().unwrap()),
    ] {
        e.store
            .begin(&Intent {
                token: tok.into(),
                address: a,
                op: IntentOp::Create,
                config: serde_json::from_value(json!({"value": "1"})).unwrap(),
                sensitive: vec![],
                dependencies: vec![],
                lifecycle: Default::default(),
                started_at: now_rfc3339(),
            })
            .unwrap();
    }
    assert_eq!(
        recover(&e.store, &e.registry, &NoHook, &|_| true)
            .await
            .unwrap(),
        2
    );
    assert!(e.store.intents().unwrap().is_empty());
    let recs = e.store.resources().unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].id, "u1");
    let d = desired(&[("acme/fake_item.a", "1", &[])]);
    assert!(
        !plan_for(&e, &d, true).await.has_changes(),
        "the adopted object matches"
    );
}

#[tokio::test]
async fn a_panicked_provider_call_fails_its_resources_and_keeps_their_intents() {
    let e = env();
    e.fake.lock().unwrap().panics.push("boom".into());
    let d = desired(&[
        ("acme/fake_item.boom", "1", &[]),
        ("acme/fake_item.after", "2", &["acme/fake_item.boom"]),
    ]);
    let p = plan_for(&e, &d, false).await;
    let r = apply(&p, &e.store, &e.registry, &fast(), &NoHook)
        .await
        .expect("a panic is a resource failure, not a storage error");
    assert_eq!(r.failed.len(), 1, "{r:?}");
    assert!(r.failed[0].1.contains("panicked"), "{r:?}");
    assert!(r.failed[0].1.contains("next run will reconcile"), "{r:?}");
    assert_eq!(r.skipped.len(), 1, "its dependent is skipped");
    let intents = e.store.intents().unwrap();
    assert_eq!(intents.len(), 1, "the outcome is unknown: the intent stays");
    assert_eq!(intents[0].address.to_string(), "acme/fake_item.boom");
}

#[tokio::test]
async fn an_apply_that_did_not_converge_fails_naming_the_attribute_and_records_what_is_live() {
    let e = env();
    e.fake.lock().unwrap().lies.push("liar".into());
    let d = desired(&[
        ("acme/fake_item.liar", "1", &[]),
        ("acme/fake_item.honest", "2", &[]),
    ]);
    let p = plan_for(&e, &d, false).await;
    let r = apply(&p, &e.store, &e.registry, &fast(), &NoHook)
        .await
        .unwrap();
    assert_eq!(r.created, 1, "{r:?}");
    assert_eq!(r.failed.len(), 1, "{r:?}");
    assert!(r.failed[0].1.contains("`value` did not converge"), "{r:?}");
    let names: Vec<String> = e
        .store
        .resources()
        .unwrap()
        .iter()
        .map(|r| r.address.to_string())
        .collect();
    assert_eq!(names, vec!["acme/fake_item.honest", "acme/fake_item.liar"]);
    let liar = e
        .store
        .resource(&"acme/fake_item.liar".parse().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(
        liar.attributes["value"], "something else",
        "the live value is recorded"
    );
    let again = plan_for(&e, &d, true).await;
    assert_eq!(again.changes.len(), 1, "the next plan shows the difference");
    assert_eq!(again.changes[0].action, crate::plan::Action::Update);
}

#[tokio::test]
async fn a_create_left_half_made_by_a_throttled_step_is_finished_not_adopted_as_is() {
    let e = env();
    e.fake.lock().unwrap().half.push("bucket".into());
    let d = desired(&[("acme/fake_item.bucket", "1", &[])]);
    let p = plan_for(&e, &d, false).await;
    let r = apply(&p, &e.store, &e.registry, &fast(), &NoHook)
        .await
        .unwrap();
    assert_eq!((r.created, r.failed.len()), (1, 0), "{r:?}");
    let st = e.fake.lock().unwrap();
    assert_eq!(st.objects.len(), 1, "no second object");
    assert_eq!(
        st.objects["acme/fake_item.bucket"]["value"], "1",
        "finished"
    );
    assert_eq!(
        st.recovers,
        vec!["acme/fake_item.bucket"],
        "found by its token first"
    );
    drop(st);
    let rec = e
        .store
        .resource(&"acme/fake_item.bucket".parse().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(rec.attributes["value"], "1");
}

#[tokio::test]
async fn a_failed_lookup_after_a_failed_create_is_retried_instead_of_creating_again() {
    let e = env();
    e.fake.lock().unwrap().half.push("zone".into());
    e.fake.lock().unwrap().recover_failures = 2;
    let d = desired(&[("acme/fake_item.zone", "1", &[])]);
    let p = plan_for(&e, &d, false).await;
    let r = apply(&p, &e.store, &e.registry, &fast(), &NoHook)
        .await
        .unwrap();
    assert_eq!((r.created, r.failed.len()), (1, 0), "{r:?}");
    let st = e.fake.lock().unwrap();
    assert_eq!(st.recovers.len(), 3, "looked up until the lookup answered");
    assert_eq!(
        st.apply_batches.len(),
        2,
        "one create, then one update of the half-made object: never a second create"
    );
    assert_eq!(st.objects["acme/fake_item.zone"]["value"], "1");
}

#[tokio::test]
async fn throttled_calls_are_retried_past_their_attempts_within_the_throttle_budget() {
    let e = env();
    e.fake.lock().unwrap().throttled.insert("busy".into(), 8);
    e.fake.lock().unwrap().transient.insert("flaky".into(), 8);
    let d = desired(&[
        ("acme/fake_item.busy", "1", &[]),
        ("acme/fake_item.flaky", "2", &[]),
    ]);
    let p = plan_for(&e, &d, false).await;
    let r = apply(&p, &e.store, &e.registry, &fast(), &NoHook)
        .await
        .unwrap();
    assert_eq!(r.created, 1, "the throttled one waits its turn: {r:?}");
    assert_eq!(r.failed.len(), 1, "{r:?}");
    assert_eq!(
        r.failed[0].0.name, "flaky",
        "other transient failures stop after 5 attempts"
    );
    let mut no_budget = fast();
    no_budget.retry.throttle_budget = Duration::ZERO;
    e.fake.lock().unwrap().throttled.insert("late".into(), 8);
    let d = desired(&[("acme/fake_item.late", "3", &[])]);
    let p = plan_for(&e, &d, false).await;
    let r = apply(&p, &e.store, &e.registry, &no_budget, &NoHook)
        .await
        .unwrap();
    assert_eq!(
        r.failed.len(),
        1,
        "without a budget the attempts bound it: {r:?}"
    );
}
