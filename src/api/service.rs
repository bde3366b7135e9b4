//! The `Experiments` service: thin handlers that validate, call the runner or the store, and
//! convert.

use std::pin::Pin;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};
use tracing::{Instrument, info_span};

use super::convert;
use super::pb::{self, experiments_server::Experiments};
use super::status::{from_runner, from_store, invalid};
use crate::runner::{JobId, Runner};

/// Progress events buffered per watcher before the watcher waits for its client.
const WATCH_BUFFER: usize = 256;

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
        Ok(Response::new(convert::job_to_pb(&record)))
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
        let stream =
            ReceiverStream::new(rx).map(|item| item.map(|ev| convert::progress_to_pb(&ev)).map_err(from_runner));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_history(&self, request: Request<pb::HistoryRequest>) -> Result<Response<pb::History>, Status> {
        let req = request.get_ref();
        let query = convert::history_query(req).map_err(invalid)?;
        let history = self.runner.store().history(JobId(req.job_id), &query).await.map_err(from_store)?;
        Ok(Response::new(convert::history_to_pb(req.job_id, history)))
    }
}
