//! Histories of any size (issue 18): `StreamHistory` sends bounded messages whatever the job's
//! length, equal to `GetHistory` where that fits, and the CLI writes the stream as it arrives.

use gradlab::api::pb;
use prost::Message;
use tonic::Code;

use crate::common::{TestServer, gradlab, ok, state, wait_for};

/// A job long enough for many messages: 17 layers x 6,000 steps.
fn long_job() -> pb::JobSpec {
    pb::JobSpec {
        activation: "tanh".into(),
        depth: Some(16),
        width: Some(8),
        steps: Some(6_000),
        batch: Some(16),
        eval_every: Some(100),
        seed: Some(3),
        ..Default::default()
    }
}

async fn chunks(client: &mut crate::common::Client, req: pb::HistoryRequest) -> Vec<pb::HistoryChunk> {
    let mut s = client.stream_history(req).await.unwrap().into_inner();
    let mut out = Vec::new();
    while let Some(c) = s.message().await.unwrap() {
        out.push(c);
    }
    out
}

/// The chunks put together as GetHistory's series (one per layer and metric).
/// (layer, metric, steps, bits of the values).
type SeriesBits = (Option<u32>, String, Vec<u64>, Vec<u64>);

fn as_series(chunks: &[pb::HistoryChunk]) -> Vec<SeriesBits> {
    let mut out: Vec<SeriesBits> = Vec::new();
    for c in chunks {
        for col in &c.columns {
            let bits = col.values.iter().map(|v| v.to_bits());
            match out.iter_mut().find(|s| s.0 == c.layer && s.1 == col.metric) {
                Some(s) => {
                    s.2.extend(&c.steps);
                    s.3.extend(bits);
                }
                None => out.push((c.layer, col.metric.clone(), c.steps.clone(), bits.collect())),
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_history_streams_in_bounded_messages_and_equals_the_unary_read() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("h.db"), 2).await;
    let mut client = server.client().await;
    let id = client.submit_job(long_job()).await.unwrap().into_inner().id;
    let job = wait_for(&mut client, id, |j| state(j) == pb::JobState::Succeeded).await;
    assert_eq!(job.steps_done, 6_000);

    let all = chunks(&mut client, pb::HistoryRequest { job_id: id, ..Default::default() }).await;
    assert!(all.len() >= 17 * 2, "many messages: {}", all.len());
    let largest = all.iter().map(|c| c.encoded_len()).max().unwrap();
    assert!(largest < 1 << 20, "the largest message is {largest} bytes");
    // The unary answer is 32 MB: past gRPC's default 4 MB, which is why the stream exists.
    let mut big = client.clone().max_decoding_message_size(64 << 20);
    let e = client.get_history(pb::HistoryRequest { job_id: id, ..Default::default() }).await.unwrap_err();
    assert_eq!(e.code(), Code::OutOfRange);
    let unary = big.get_history(pb::HistoryRequest { job_id: id, ..Default::default() }).await.unwrap().into_inner();
    let expected: Vec<_> = unary
        .series
        .iter()
        .map(|s| (s.layer, s.metric.clone(), s.steps.clone(), s.values.iter().map(|v| v.to_bits()).collect()))
        .collect::<Vec<_>>();
    assert_eq!(as_series(&all), expected);
    let evals: Vec<u64> = all.iter().flat_map(|c| c.evals.iter().map(|e| e.step)).collect();
    assert_eq!(evals, unary.evals.iter().map(|e| e.step).collect::<Vec<_>>());
    assert_eq!(evals.len(), 61);

    // Downsampled: min/max/last per bucket, the same as GetHistory's.
    let req = pb::HistoryRequest { job_id: id, layers: vec![0, 16], max_points: 300, ..Default::default() };
    let down = chunks(&mut client, req.clone()).await;
    assert!(down.iter().all(|c| c.downsampled && c.columns.iter().all(|col| col.min.len() == c.steps.len())));
    let unary = client.get_history(req).await.unwrap().into_inner();
    let max_bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for s in &unary.series {
        let (steps, max): (Vec<u64>, Vec<u64>) = down
            .iter()
            .filter(|c| c.layer == s.layer && !c.columns.is_empty())
            .flat_map(|c| {
                let col = c.columns.iter().find(|col| col.metric == s.metric).unwrap();
                c.steps.iter().copied().zip(max_bits(&col.max))
            })
            .unzip();
        assert_eq!((steps, max), (s.steps.clone(), max_bits(&s.max)), "{:?} {}", s.layer, s.metric);
    }

    // Bad requests fail the call itself.
    let e = client.stream_history(pb::HistoryRequest { job_id: 999, ..Default::default() }).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let bad = pb::HistoryRequest { job_id: id, metrics: vec!["nope".into()], ..Default::default() };
    assert_eq!(client.stream_history(bad).await.unwrap_err().code(), Code::InvalidArgument);
    let bad = pb::HistoryRequest { job_id: id, layers: vec![17], ..Default::default() };
    assert_eq!(client.stream_history(bad).await.unwrap_err().code(), Code::InvalidArgument);

    // The CLI's full export is the per-layer exports one after the other.
    let url = server.url();
    let full = ok(&gradlab(&url, &["history", &id.to_string(), "--format", "csv"]));
    assert_eq!(full.lines().count(), 1 + 6_000 * (4 + 17 * 12));
    let mut parts = String::from("step,layer,metric,value\n");
    let scalars = ok(&gradlab(
        &url,
        &["history", &id.to_string(), "--metrics", "loss,accuracy,lr,global_grad_norm", "--format", "csv"],
    ));
    parts.extend(scalars.lines().skip(1).map(|l| format!("{l}\n")));
    let layer_metrics = "grad_norm,bias_grad_norm,err_norm,grad_mean_abs,grad_max_abs,weight_norm,update_ratio,act_mean,act_std,saturated,dead,nonfinite";
    for l in 0..17 {
        let one = ok(&gradlab(
            &url,
            &["history", &id.to_string(), "--layers", &l.to_string(), "--metrics", layer_metrics, "--format", "csv"],
        ));
        parts.extend(one.lines().skip(1).map(|l| format!("{l}\n")));
    }
    assert!(full == parts, "the full export differs from the per-layer ones");
    server.stop().await;
}
