//! Finding jobs by what they achieved, on every backend: filters and sorts over a few hundred
//! jobs against an expectation computed here from the records, page by page.

use std::cmp::Ordering;
use std::sync::Arc;

use super::{claim, spec, summary};
use crate::engine::activation::Activation;
use crate::engine::verdict::Verdict;
use crate::runner::filter::{self, SortKey};
use crate::runner::{JobFilter, JobRecord, JobState, Order, PageRequest, Store, StoreError};

const JOBS: usize = 240;
const RAN: usize = 200;

/// Held-out accuracy of job `i`: ties every 100 jobs, and no result (NaN) now and then.
fn accuracy(i: usize) -> f64 {
    if i.is_multiple_of(23) { f64::NAN } else { ((i * 37) % 100) as f64 / 100.0 }
}

fn loss(i: usize) -> f64 {
    if i.is_multiple_of(25) { f64::INFINITY } else { 0.1 + (i % 17) as f64 * 0.13 }
}

/// Jobs of four activations, depths 1-9, widths 16/32/64 (every 11th narrow-wide-narrow),
/// labels on some; the first RAN run: most succeed with results, every 10th fails, every 10th
/// is left running, finishing a minute apart; the rest stay queued.
async fn plant(store: &dyn Store) -> Vec<JobRecord> {
    let acts = [Activation::Tanh, Activation::Ramp, Activation::Logistic, Activation::Softsign];
    let mut ids = Vec::new();
    for i in 0..JOBS {
        let mut labels = Vec::new();
        if i % 3 == 0 {
            labels.push(("team", if i % 2 == 0 { "vision" } else { "speech" }));
        }
        if i % 7 == 0 {
            labels.push(("keep", "true"));
        }
        let mut s = spec(&format!("job-{i}"), acts[i % 4], 1 + i % 9, &labels);
        let width = [16, 32, 64][i % 3];
        s.hidden = if i % 11 == 0 { vec![8, 2 * width, 4] } else { vec![width; 1 + i % 9] };
        ids.push(store.create_job(&s, None, None).await.unwrap().id);
    }
    for (i, &id) in ids.iter().enumerate().take(RAN) {
        let (claimed, attempt) = claim(store).await;
        assert_eq!(claimed, id);
        let finished_ms = i as i64 * 60_000;
        match i % 10 {
            9 => continue,
            8 => store.mark_finished(id, attempt, JobState::Failed, finished_ms, None, Some("boom")).await.unwrap(),
            _ => {
                let mut s = summary(if i % 4 == 0 { Verdict::Vanishing } else { Verdict::Healthy });
                s.run.test_accuracy = accuracy(i);
                s.run.test_loss = loss(i);
                store.mark_finished(id, attempt, JobState::Succeeded, finished_ms, Some(&s), None).await.unwrap();
            }
        }
    }
    let mut all = Vec::new();
    for id in ids {
        all.push(store.get_job(id).await.unwrap().unwrap());
    }
    all
}

fn result(j: &JobRecord, f: impl Fn(&crate::engine::train::Summary) -> f64) -> Option<f64> {
    j.summary.as_ref().map(|s| f(&s.run)).filter(|x| !x.is_nan())
}

fn acc(j: &JobRecord) -> Option<f64> {
    result(j, |s| s.test_accuracy)
}

fn width(j: &JobRecord) -> i64 {
    *j.spec.hidden.iter().max().unwrap() as i64
}

fn label<'a>(j: &'a JobRecord, k: &str) -> Option<&'a str> {
    j.spec.labels.get(k).map(String::as_str)
}

/// The key a sort orders by, as the record has it (None sorts last).
fn key_of(j: &JobRecord, key: SortKey) -> Option<f64> {
    match key {
        SortKey::Created => Some(j.id.0 as f64),
        SortKey::TestAccuracy => acc(j),
        SortKey::TestLoss => result(j, |s| s.test_loss),
        SortKey::Depth => Some(j.spec.depth() as f64),
        SortKey::Width => Some(width(j) as f64),
        SortKey::Steps => Some(j.steps_done as f64),
        SortKey::Started => j.started_ms.map(|t| t as f64),
        SortKey::Finished => j.finished_ms.map(|t| t as f64),
    }
}

fn expected(all: &[JobRecord], pred: &dyn Fn(&JobRecord) -> bool, order: Order) -> Vec<i64> {
    let mut jobs: Vec<&JobRecord> = all.iter().filter(|j| pred(j)).collect();
    jobs.sort_by(|a, b| {
        let by_key = match (key_of(a, order.key), key_of(b, order.key)) {
            (Some(x), Some(y)) if order.descending => y.partial_cmp(&x).unwrap(),
            (Some(x), Some(y)) => x.partial_cmp(&y).unwrap(),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        let by_id = if order.descending { b.id.cmp(&a.id) } else { a.id.cmp(&b.id) };
        by_key.then(by_id)
    });
    jobs.iter().map(|j| j.id.0).collect()
}

async fn listed(store: &dyn Store, filter: &JobFilter, order: Order, size: u32) -> Vec<i64> {
    let mut got = Vec::new();
    let mut token = None;
    for _ in 0..1000 {
        let (page, next) = store.list_jobs(filter, order, &PageRequest { size, token: token.clone() }).await.unwrap();
        assert!(page.len() <= size as usize);
        got.extend(page.iter().map(|j| j.id.0));
        match next {
            Some(t) => token = Some(t),
            None => return got,
        }
    }
    panic!("pages never end");
}

fn parsed(text: &str) -> JobFilter {
    JobFilter { conditions: filter::parse(text, 0).unwrap(), ..Default::default() }
}

type Pred = Box<dyn Fn(&JobRecord) -> bool>;

pub(crate) async fn filters_and_sorts_agree_with_the_records(store: Arc<dyn Store>) {
    let all = plant(&*store).await;
    let hour = 60 * 60_000;
    let cases: Vec<(&str, Pred)> = vec![
        ("test_accuracy >= 0.9", Box::new(|j| acc(j).is_some_and(|a| a >= 0.9))),
        ("test_accuracy < 0.3 and depth >= 5", Box::new(|j| acc(j).is_some_and(|a| a < 0.3) && j.spec.depth() >= 5)),
        ("test_loss > 1.5", Box::new(|j| result(j, |s| s.test_loss).is_some_and(|l| l > 1.5))),
        ("test_accuracy != 0.5", Box::new(|j| acc(j).is_some_and(|a| a != 0.5))),
        ("width >= 64", Box::new(|j| width(j) >= 64)),
        (
            "width = 32 and activation in (tanh, relu)",
            Box::new(|j| width(j) == 32 && matches!(j.spec.activation, Activation::Tanh | Activation::Ramp)),
        ),
        ("label.team = vision", Box::new(|j| label(j, "team") == Some("vision"))),
        ("label.team != vision", Box::new(|j| label(j, "team") != Some("vision"))),
        ("label.keep and !label.team", Box::new(|j| label(j, "keep").is_some() && label(j, "team").is_none())),
        ("verdict != healthy", Box::new(|j| j.verdict().is_some_and(|v| v != Verdict::Healthy))),
        ("state not in (queued, running)", Box::new(|j| j.state.is_terminal())),
        ("finished >= 1970-01-01T01:00:00Z", Box::new(move |j| j.finished_ms.is_some_and(|t| t >= hour))),
        ("started > 2020-01-01", Box::new(|j| j.started_ms.is_some_and(|t| t > 1_577_836_800_000))),
        ("name ~ 'job-1' and depth != 3", Box::new(|j| j.spec.name.contains("job-1") && j.spec.depth() != 3)),
        (
            "test_accuracy > 0.5 and label.team exists and depth <= 6 and state = succeeded",
            Box::new(|j| {
                acc(j).is_some_and(|a| a > 0.5)
                    && label(j, "team").is_some()
                    && j.spec.depth() <= 6
                    && j.state == JobState::Succeeded
            }),
        ),
    ];
    for (text, pred) in &cases {
        let f = parsed(text);
        let want = expected(&all, pred, Order::NEWEST_FIRST);
        assert!(!want.is_empty() && want.len() < all.len(), "{text:?} selects {} of {}: weak", want.len(), all.len());
        assert_eq!(listed(&*store, &f, Order::NEWEST_FIRST, 1000).await, want, "{text}");
        assert_eq!(listed(&*store, &f, Order::OLDEST_FIRST, 9).await, want.iter().rev().copied().collect::<Vec<_>>());
    }

    let sorted_filters: [(&str, Pred); 2] =
        [("", Box::new(|_| true)), ("label.team exists", Box::new(|j| label(j, "team").is_some()))];
    for (key_name, key) in SortKey::NAMES {
        for descending in [false, true] {
            let order = Order { key, descending };
            for (text, pred) in &sorted_filters {
                let want = expected(&all, pred, order);
                for size in [7, 50, 1000] {
                    let got = listed(&*store, &parsed(text), order, size).await;
                    assert_eq!(got, want, "sort {key_name} descending {descending}, filter {text:?}, pages of {size}");
                }
            }
        }
    }

    // Keyset tokens belong to their sort.
    let by_acc = Order { key: SortKey::TestAccuracy, descending: true };
    let (_, token) =
        store.list_jobs(&JobFilter::default(), by_acc, &PageRequest { size: 5, token: None }).await.unwrap();
    let token = token.expect("a second page");
    assert!(token.contains(':'), "{token}");
    let page = PageRequest { size: 5, token: Some(token) };
    let reused = store.list_jobs(&JobFilter::default(), Order::NEWEST_FIRST, &page).await;
    assert!(matches!(reused, Err(StoreError::Invalid(_))), "{reused:?}");
    for bad in ["x:3", "0.5:", "0.5:-1", "NaN:4"] {
        let page = PageRequest { size: 5, token: Some(bad.into()) };
        assert!(
            matches!(store.list_jobs(&JobFilter::default(), by_acc, &page).await, Err(StoreError::Invalid(_))),
            "{bad}"
        );
    }
}

/// Jobs as a schema without result columns stored them: (id, state, spec JSON, summary JSON).
pub(super) fn old_rows() -> Vec<(i64, &'static str, String, Option<String>)> {
    let row = |id, hidden: Vec<usize>, result: Option<(f64, f64)>| {
        let mut s = spec("old", Activation::Tanh, 1, &[]);
        s.hidden = hidden;
        let summary = result.map(|(a, l)| {
            let mut m = summary(Verdict::Healthy);
            m.run.test_accuracy = a;
            m.run.test_loss = l;
            serde_json::to_string(&m).unwrap()
        });
        let state = if summary.is_some() { "succeeded" } else { "failed" };
        (id, state, serde_json::to_string(&s).unwrap(), summary)
    };
    vec![
        row(1, vec![8, 32, 8], Some((0.7, 0.3))),
        row(2, vec![16], Some((f64::NAN, f64::INFINITY))),
        row(3, vec![4, 4], Some((0.25, f64::NEG_INFINITY))),
        row(4, vec![], None),
    ]
}

/// What the migration to result columns made of [`old_rows`].
pub(super) async fn old_rows_have_their_results(store: &dyn Store) {
    let ids = |text: &str| {
        let f = parsed(text);
        async move { listed(store, &f, Order::OLDEST_FIRST, 100).await }
    };
    assert_eq!(ids("test_accuracy = 0.7").await, vec![1]);
    assert_eq!(ids("test_accuracy < 1").await, vec![1, 3], "NaN is no result");
    assert_eq!(ids("test_loss > 1e300").await, vec![2]);
    assert_eq!(ids("test_loss < -1e300").await, vec![3]);
    assert_eq!(ids("width = 32").await, vec![1]);
    assert_eq!(ids("width >= 4").await, vec![1, 2, 3], "no hidden layer, no width");
    let by_acc = Order { key: SortKey::TestAccuracy, descending: true };
    assert_eq!(listed(store, &JobFilter::default(), by_acc, 100).await, vec![1, 3, 4, 2]);
}
