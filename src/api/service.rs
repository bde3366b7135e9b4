//! The `Experiments` service: thin handlers that validate, call the runner or the store, and
//! convert.

use std::pin::Pin;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};
use tracing::{Instrument, info_span};

use super::pb::{self, experiments_server::Experiments};
use super::status::{from_runner, from_store, invalid};
use super::watch_stream::WatchStream;
use super::{convert, convert_sweep};
use crate::runner::sweep::{DEFAULT_MARGIN, PRESETS, preset};
use crate::runner::{JobId, JobUpdate, PageRequest, Runner, SweepId};
use crate::runner::{histograms, history, trained};

/// Progress events buffered per watcher before the watcher waits for its client.
const WATCH_BUFFER: usize = 256;
/// History pieces (each at most `history::PIECE_VALUES` values) read ahead of a stream's client:
/// a client that stops reading holds the server to this much.
const HISTORY_BUFFER: usize = 2;
/// Bytes per message of an exported file.
const EXPORT_CHUNK: usize = 1 << 20;

pub struct ExperimentsService {
    runner: Runner,
}

impl ExperimentsService {
    pub fn new(runner: Runner) -> Self {
        ExperimentsService { runner }
    }
}

type ProgressStream = Pin<Box<dyn Stream<Item = Result<pb::Progress, Status>> + Send>>;

#[tonic::async_trait]
impl Experiments for ExperimentsService {
    async fn submit_job(&self, request: Request<pb::JobSpec>) -> Result<Response<pb::Job>, Status> {
        let spec = convert::job_spec(request.get_ref()).map_err(invalid)?;
        let span = info_span!("rpc", method = "SubmitJob");
        let record = self.runner.submit(spec, None).instrument(span).await.map_err(from_runner)?;
        Ok(Response::new(convert::job_to_pb(&record)))
    }

    async fn get_job(&self, request: Request<pb::JobId>) -> Result<Response<pb::Job>, Status> {
        let id = JobId(request.get_ref().id);
        let record = self.runner.store().get_job(id).await.map_err(from_store)?;
        let record = record.ok_or_else(|| Status::not_found(format!("job {id} not found")))?;
        let mut job = convert::job_to_pb(&record);
        let checkpoints = self.runner.store().checkpoints(id).await.map_err(from_store)?;
        job.checkpoints = checkpoints.iter().map(convert::checkpoint_to_pb).collect();
        Ok(Response::new(job))
    }

    async fn list_jobs(&self, request: Request<pb::ListJobsRequest>) -> Result<Response<pb::ListJobsResponse>, Status> {
        let (filter, order, page) = convert::list_request(request.get_ref()).map_err(invalid)?;
        let (jobs, next) = self.runner.store().list_jobs(&filter, order, &page).await.map_err(from_store)?;
        Ok(Response::new(pb::ListJobsResponse {
            jobs: jobs.iter().map(convert::job_to_pb).collect(),
            next_page_token: next.unwrap_or_default(),
        }))
    }

    async fn cancel_job(&self, request: Request<pb::JobId>) -> Result<Response<pb::Job>, Status> {
        let id = JobId(request.get_ref().id);
        let span = info_span!("rpc", method = "CancelJob", job = %id);
        let record = self.runner.cancel(id).instrument(span).await.map_err(from_runner)?;
        Ok(Response::new(convert::job_to_pb(&record)))
    }

    type WatchJobStream = ProgressStream;

    async fn watch_job(&self, request: Request<pb::WatchRequest>) -> Result<Response<Self::WatchJobStream>, Status> {
        let req = request.into_inner();
        let id = JobId(req.job_id);
        // Unknown ids fail the call itself, not the first message of a stream.
        self.runner
            .store()
            .get_job(id)
            .await
            .map_err(from_store)?
            .ok_or_else(|| Status::not_found(format!("job {id} not found")))?;
        let slot = self.runner.watch_slot().map_err(from_runner)?;
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        let runner = self.runner.clone();
        let span = info_span!("watch", job = %id, from_step = req.from_step);
        // The watcher ends when the job ends or when the client hangs up; its slot goes with it.
        tokio::spawn(
            async move {
                let _slot = slot;
                runner.watch(id, req.from_step, tx).await
            }
            .instrument(span),
        );
        Ok(Response::new(Box::pin(WatchStream::new(rx, req.max_batch))))
    }

    async fn submit_sweep(&self, request: Request<pb::SweepSpec>) -> Result<Response<pb::Sweep>, Status> {
        let spec = convert_sweep::sweep_spec(request.get_ref()).map_err(invalid)?;
        let span = info_span!("rpc", method = "SubmitSweep");
        let sweep = self.runner.submit_sweep(spec).instrument(span).await.map_err(from_runner)?;
        Ok(Response::new(convert_sweep::sweep_to_pb(&sweep)))
    }

    async fn get_sweep(&self, request: Request<pb::SweepId>) -> Result<Response<pb::Sweep>, Status> {
        let sweep = self.runner.get_sweep(SweepId(request.get_ref().id)).await.map_err(from_runner)?;
        Ok(Response::new(convert_sweep::sweep_to_pb(&sweep)))
    }

    async fn list_sweeps(
        &self,
        request: Request<pb::ListSweepsRequest>,
    ) -> Result<Response<pb::ListSweepsResponse>, Status> {
        let req = request.get_ref();
        let page =
            PageRequest { size: req.page_size, token: (!req.page_token.is_empty()).then(|| req.page_token.clone()) };
        let (sweeps, next) = self.runner.store().list_sweeps(&page).await.map_err(from_store)?;
        Ok(Response::new(pb::ListSweepsResponse {
            sweeps: sweeps.iter().map(convert_sweep::sweep_to_pb).collect(),
            next_page_token: next.unwrap_or_default(),
        }))
    }

    async fn cancel_sweep(&self, request: Request<pb::SweepId>) -> Result<Response<pb::Sweep>, Status> {
        let id = SweepId(request.get_ref().id);
        let span = info_span!("rpc", method = "CancelSweep", sweep = %id);
        let sweep = self.runner.cancel_sweep(id).instrument(span).await.map_err(from_runner)?;
        Ok(Response::new(convert_sweep::sweep_to_pb(&sweep)))
    }

    type WatchSweepStream = Pin<Box<dyn Stream<Item = Result<pb::SweepProgress, Status>> + Send>>;

    async fn watch_sweep(&self, request: Request<pb::SweepId>) -> Result<Response<Self::WatchSweepStream>, Status> {
        let id = SweepId(request.get_ref().id);
        // Unknown ids fail the call itself, not the first message of a stream.
        self.runner.get_sweep(id).await.map_err(from_runner)?;
        let slot = self.runner.watch_slot().map_err(from_runner)?;
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        let runner = self.runner.clone();
        let span = info_span!("watch_sweep", sweep = %id);
        tokio::spawn(
            async move {
                let _slot = slot;
                runner.watch_sweep(id, tx).await
            }
            .instrument(span),
        );
        let stream = ReceiverStream::new(rx)
            .map(|item| item.map(|ev| convert_sweep::sweep_progress_to_pb(&ev)).map_err(from_runner));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_sweep_report(
        &self,
        request: Request<pb::SweepReportRequest>,
    ) -> Result<Response<pb::SweepReport>, Status> {
        let req = request.get_ref();
        let margin = req.margin.unwrap_or(DEFAULT_MARGIN);
        let (sweep, report) = self.runner.sweep_report(SweepId(req.sweep_id), margin).await.map_err(from_runner)?;
        Ok(Response::new(convert_sweep::report_to_pb(&sweep, &report)))
    }

    async fn delete_job(
        &self,
        request: Request<pb::DeleteJobRequest>,
    ) -> Result<Response<pb::DeleteJobResponse>, Status> {
        let req = request.get_ref();
        let span = info_span!("rpc", method = "DeleteJob", job = req.id);
        self.runner.delete_jobs(&[JobId(req.id)], req.cancel).instrument(span).await.map_err(from_runner)?;
        Ok(Response::new(pb::DeleteJobResponse { id: req.id }))
    }

    async fn delete_sweep(
        &self,
        request: Request<pb::DeleteSweepRequest>,
    ) -> Result<Response<pb::DeleteSweepResponse>, Status> {
        let req = request.get_ref();
        let span = info_span!("rpc", method = "DeleteSweep", sweep = req.id);
        let n = self.runner.delete_sweep(SweepId(req.id), req.cancel).instrument(span).await.map_err(from_runner)?;
        Ok(Response::new(pb::DeleteSweepResponse { id: req.id, jobs_deleted: n }))
    }

    async fn collect_garbage(&self, request: Request<pb::GcRequest>) -> Result<Response<pb::GcResponse>, Status> {
        let req = request.get_ref();
        let span =
            info_span!("rpc", method = "CollectGarbage", before_ms = req.finished_before_ms, dry_run = req.dry_run);
        let r = self
            .runner
            .collect_garbage(req.finished_before_ms, req.dry_run, req.vacuum)
            .instrument(span)
            .await
            .map_err(from_runner)?;
        Ok(Response::new(pb::GcResponse {
            job_ids: r.jobs.iter().map(|j| j.0).collect(),
            sweeps_deleted: r.sweeps,
            bytes_before: r.bytes_before,
            bytes_after: r.bytes_after,
        }))
    }

    async fn update_job(&self, request: Request<pb::UpdateJobRequest>) -> Result<Response<pb::Job>, Status> {
        let req = request.get_ref();
        let update = JobUpdate {
            name: req.name.clone(),
            set_labels: req.set_labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            remove_labels: req.remove_labels.clone(),
        };
        let record = self.runner.update_job(JobId(req.id), &update).await.map_err(from_runner)?;
        Ok(Response::new(convert::job_to_pb(&record)))
    }

    async fn get_histograms(
        &self,
        request: Request<pb::HistogramsRequest>,
    ) -> Result<Response<pb::Histograms>, Status> {
        let req = request.get_ref();
        let query = convert::histogram_query(req).map_err(invalid)?;
        let h = histograms::read(&**self.runner.store(), JobId(req.job_id), &query).await.map_err(from_store)?;
        Ok(Response::new(convert::histograms_to_pb(req.job_id, &h)))
    }

    async fn list_presets(
        &self,
        _request: Request<pb::ListPresetsRequest>,
    ) -> Result<Response<pb::ListPresetsResponse>, Status> {
        let presets = PRESETS
            .iter()
            .map(|(name, about)| {
                let spec = preset(name).map_err(invalid)?;
                Ok(pb::Preset {
                    name: name.to_string(),
                    about: about.to_string(),
                    spec: Some(convert_sweep::sweep_spec_to_pb(&spec)),
                })
            })
            .collect::<Result<_, Status>>()?;
        Ok(Response::new(pb::ListPresetsResponse { presets }))
    }

    async fn get_history(&self, request: Request<pb::HistoryRequest>) -> Result<Response<pb::History>, Status> {
        let req = request.get_ref();
        let query = convert::history_query(req).map_err(invalid)?;
        let history = self.runner.store().history(JobId(req.job_id), &query).await.map_err(from_store)?;
        Ok(Response::new(convert::history_to_pb(req.job_id, history)))
    }

    type StreamHistoryStream = Pin<Box<dyn Stream<Item = Result<pb::HistoryChunk, Status>> + Send>>;

    async fn stream_history(
        &self,
        request: Request<pb::HistoryRequest>,
    ) -> Result<Response<Self::StreamHistoryStream>, Status> {
        let req = request.into_inner();
        let query = convert::history_query(&req).map_err(invalid)?;
        let id = JobId(req.job_id);
        // Unknown jobs and bad queries fail the call itself, not its first message.
        let meta = self.runner.store().history_meta(id).await.map_err(from_store)?;
        history::check(id, &meta, &query).map_err(from_store)?;
        let (out, rx) = mpsc::channel(HISTORY_BUFFER);
        let store = self.runner.store().clone();
        tokio::spawn(
            async move {
                let (tx, mut pieces) = mpsc::channel(1);
                let reading = async move { history::read(&*store, id, &query, &tx).await };
                // A client that hangs up drops `pieces`, and the read stops at its next send.
                let forwarding = async {
                    while let Some(p) = pieces.recv().await {
                        if out.send(Ok(convert::history_piece_to_pb(id.0, p))).await.is_err() {
                            break;
                        }
                    }
                    drop(pieces);
                };
                let (read, ()) = tokio::join!(reading, forwarding);
                if let Err(e) = read {
                    let _ = out.send(Err(from_store(e))).await;
                }
            }
            .instrument(info_span!("stream_history", job = %id)),
        );
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type ExportWeightsStream = Pin<Box<dyn Stream<Item = Result<pb::ExportChunk, Status>> + Send>>;

    async fn export_weights(
        &self,
        request: Request<pb::ExportRequest>,
    ) -> Result<Response<Self::ExportWeightsStream>, Status> {
        let req = request.into_inner();
        let format = convert::weights_format(req.format).map_err(invalid)?;
        let file = self.runner.export(JobId(req.job_id), req.step, format).await.map_err(from_runner)?;
        let (step, total_bytes) = (file.step, file.bytes.len() as u64);
        let chunks: Vec<_> = file
            .bytes
            .chunks(EXPORT_CHUNK)
            .map(|c| Ok(pb::ExportChunk { data: c.to_vec(), step, total_bytes }))
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }

    async fn fork_job(&self, request: Request<pb::ForkRequest>) -> Result<Response<pb::Job>, Status> {
        let req = request.into_inner();
        let changes = req.changes.unwrap_or_default();
        let record = self
            .runner
            .fork(JobId(req.job_id), req.at_step, |parent| convert::job_spec_over(&changes, parent))
            .await
            .map_err(from_runner)?;
        Ok(Response::new(convert::job_to_pb(&record)))
    }

    async fn predict(&self, request: Request<pb::PredictRequest>) -> Result<Response<pb::PredictResponse>, Status> {
        let req = request.into_inner();
        let inputs = trained::rows(req.inputs, req.input_dim as usize, "inputs").map_err(invalid)?;
        let (step, out) = self.runner.predict(JobId(req.job_id), req.step, inputs).await.map_err(from_runner)?;
        Ok(Response::new(pb::PredictResponse {
            step,
            rows: out.nrows() as u32,
            outputs: out.ncols() as u32,
            values: out.iter().copied().collect(),
        }))
    }
}
