//! Deleting and updating jobs and sweeps, on every backend.

use std::sync::Arc;

use super::{claim, fill, spec, summary, sweep_spec};
use crate::engine::activation::Activation;
use crate::engine::verdict::Verdict;
use crate::runner::{
    HistoryQuery, JobFilter, JobId, JobState, JobUpdate, Order, PageRequest, Store, StoreError, SweepId,
};

async fn finished(store: &dyn Store, labels: &[(&str, &str)]) -> JobId {
    let id = store.create_job(&spec("done", Activation::Tanh, 2, labels), None, None).await.unwrap().id;
    let (claimed, attempt) = claim(store).await;
    assert_eq!(claimed, id);
    fill(store, id, 700, 3, &[100]).await;
    store.mark_finished(id, attempt, JobState::Succeeded, 10, Some(&summary(Verdict::Healthy)), None).await.unwrap();
    id
}

async fn listed(store: &dyn Store, filter: JobFilter) -> Vec<JobId> {
    let page = PageRequest { size: 100, token: None };
    store.list_jobs(&filter, Order::OLDEST_FIRST, &page).await.unwrap().0.iter().map(|j| j.id).collect()
}

pub(crate) async fn a_delete_takes_a_job_whole_or_nothing(store: Arc<dyn Store>) {
    let done = finished(&*store, &[("k", "v")]).await;
    let running = store.create_job(&spec("run", Activation::Tanh, 2, &[]), None, None).await.unwrap().id;
    claim(&*store).await;
    let queued = store.create_job(&spec("q", Activation::Tanh, 2, &[]), None, None).await.unwrap().id;

    // One active job among them: nothing is deleted.
    match store.delete_jobs(&[done, running]).await {
        Err(StoreError::Active(id, JobState::Running)) => assert_eq!(id, running),
        other => panic!("{other:?}"),
    }
    assert!(matches!(store.delete_jobs(&[queued]).await, Err(StoreError::Active(_, JobState::Queued))));
    assert!(matches!(store.delete_jobs(&[done, JobId(999_999)]).await, Err(StoreError::NotFound(JobId(999_999)))));
    assert_eq!(store.read_steps(done, 0, 1000).await.unwrap().len(), 700, "still whole");

    store.delete_jobs(&[done]).await.unwrap();
    assert_eq!(store.get_job(done).await.unwrap(), None);
    assert!(matches!(store.history_meta(done).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.history(done, &HistoryQuery::default()).await, Err(StoreError::NotFound(_))));
    let labelled = JobFilter { label: Some(("k".into(), None)), ..Default::default() };
    assert!(listed(&*store, labelled).await.is_empty(), "its labels went with it");
    assert_eq!(listed(&*store, JobFilter::default()).await, vec![running, queued]);
    assert!(matches!(store.delete_jobs(&[done]).await, Err(StoreError::NotFound(_))));
}

pub(crate) async fn ids_are_never_reused_after_a_delete(store: Arc<dyn Store>) {
    let first = finished(&*store, &[]).await;
    let newest = finished(&*store, &[]).await;
    store.delete_jobs(&[newest]).await.unwrap();
    let next = store.create_job(&spec("next", Activation::Tanh, 1, &[]), None, None).await.unwrap().id;
    assert!(next.0 > newest.0, "job {next} after deleting job {newest} (first {first})");
    let (claimed, attempt) = claim(&*store).await;
    assert_eq!(claimed, next);
    store.mark_finished(next, attempt, JobState::Failed, 10, None, Some("stop")).await.unwrap();

    let (sweep, jobs) = store.create_sweep(&sweep_spec("s"), &sweep_spec("s").expand(10).unwrap(), None).await.unwrap();
    for _ in &jobs {
        let (id, attempt) = claim(&*store).await;
        store
            .mark_finished(id, attempt, JobState::Succeeded, 10, Some(&summary(Verdict::Healthy)), None)
            .await
            .unwrap();
    }
    store.delete_sweep(sweep.id).await.unwrap();
    let (again, again_jobs) =
        store.create_sweep(&sweep_spec("t"), &sweep_spec("t").expand(10).unwrap(), None).await.unwrap();
    assert!(again.id.0 > sweep.id.0);
    assert!(again_jobs[0].id.0 > jobs.last().unwrap().id.0);
}

pub(crate) async fn a_sweep_is_deleted_with_its_jobs(store: Arc<dyn Store>) {
    let outside = finished(&*store, &[]).await;
    let spec = sweep_spec("s");
    let (sweep, jobs) = store.create_sweep(&spec, &spec.expand(10).unwrap(), None).await.unwrap();
    match store.delete_sweep(sweep.id).await {
        Err(StoreError::Active(id, JobState::Queued)) => assert_eq!(id, jobs[0].id),
        other => panic!("{other:?}"),
    }
    for _ in &jobs {
        let (id, attempt) = claim(&*store).await;
        fill(&*store, id, 20, 2, &[20]).await;
        store
            .mark_finished(id, attempt, JobState::Succeeded, 10, Some(&summary(Verdict::Healthy)), None)
            .await
            .unwrap();
    }
    assert_eq!(store.delete_sweep(sweep.id).await.unwrap(), 4);
    assert_eq!(store.get_sweep(sweep.id).await.unwrap(), None);
    for j in &jobs {
        assert_eq!(store.get_job(j.id).await.unwrap(), None);
    }
    assert_eq!(listed(&*store, JobFilter::default()).await, vec![outside], "other jobs stay");
    assert!(matches!(store.delete_sweep(sweep.id).await, Err(StoreError::SweepNotFound(_))));
    assert!(matches!(store.delete_sweep(SweepId(777)).await, Err(StoreError::SweepNotFound(_))));
}

pub(crate) async fn an_update_renames_and_relabels_and_nothing_else(store: Arc<dyn Store>) {
    let id = finished(&*store, &[("a", "1"), ("b", "2")]).await;
    let before = store.get_job(id).await.unwrap().unwrap();
    let update = JobUpdate {
        name: Some("renamed".into()),
        set_labels: [("b".to_string(), "3".to_string()), ("c".to_string(), "4".to_string())].into(),
        remove_labels: vec!["a".into()],
    };
    let after = store.update_job(id, &update).await.unwrap();
    assert_eq!(after.spec.name, "renamed");
    let labels: Vec<(&str, &str)> = after.spec.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(labels, [("b", "3"), ("c", "4")]);
    assert_eq!(store.get_job(id).await.unwrap().unwrap(), after);
    let mut expected = before.clone();
    update.apply(&mut expected.spec);
    assert_eq!(after, expected, "only the name and the labels changed");
    // The label index follows.
    let by =
        |k: &str, v: Option<&str>| JobFilter { label: Some((k.into(), v.map(str::to_string))), ..Default::default() };
    assert!(listed(&*store, by("a", None)).await.is_empty());
    assert!(listed(&*store, by("b", Some("2"))).await.is_empty());
    assert_eq!(listed(&*store, by("b", Some("3"))).await, vec![id]);
    assert_eq!(listed(&*store, by("c", Some("4"))).await, vec![id]);
    let named = JobFilter { name_contains: Some("renamed".into()), ..Default::default() };
    assert_eq!(listed(&*store, named).await, vec![id]);
    assert!(matches!(store.update_job(JobId(999_999), &update).await, Err(StoreError::NotFound(_))));
}

pub(crate) async fn empty_sweeps_go_and_the_size_is_known(store: Arc<dyn Store>) {
    let spec = sweep_spec("s");
    let (sweep, jobs) = store.create_sweep(&spec, &spec.expand(10).unwrap(), None).await.unwrap();
    let (other, _) = store.create_sweep(&spec, &spec.expand(10).unwrap(), None).await.unwrap();
    for _ in 0..jobs.len() {
        let (id, attempt) = claim(&*store).await;
        fill(&*store, id, 600, 3, &[200]).await;
        store
            .mark_finished(id, attempt, JobState::Succeeded, 10, Some(&summary(Verdict::Healthy)), None)
            .await
            .unwrap();
    }
    let size = store.size_bytes().await.unwrap();
    assert!(size > 0);
    assert_eq!(store.delete_empty_sweeps().await.unwrap(), 0, "no sweep is empty yet");
    store.delete_jobs(&jobs.iter().map(|j| j.id).collect::<Vec<_>>()).await.unwrap();
    assert_eq!(store.delete_empty_sweeps().await.unwrap(), 1);
    assert_eq!(store.get_sweep(sweep.id).await.unwrap(), None);
    assert!(store.get_sweep(other.id).await.unwrap().is_some(), "a sweep with jobs stays");
    store.vacuum().await.unwrap();
    assert!(store.size_bytes().await.unwrap() > 0);
}
