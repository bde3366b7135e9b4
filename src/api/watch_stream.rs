//! A job watch's outgoing messages: one per event, or, when the client asks for batches
//! (`WatchRequest.max_batch` > 1), the steps already waiting gathered into one `StepBatch`.
//! Nothing waits to fill a batch: a step goes out as soon as the client can take a message,
//! with whatever steps queued up behind it meanwhile.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::Status;

use super::convert;
use super::pb;
use super::status::from_runner;
use crate::runner::{LiveEvent, RunnerError};

type Item = Result<LiveEvent, RunnerError>;

pub struct WatchStream {
    rx: mpsc::Receiver<Item>,
    /// Taken from the channel while gathering steps, but not a step: sent next.
    held: Option<Item>,
    max_batch: usize,
}

impl WatchStream {
    pub fn new(rx: mpsc::Receiver<Item>, max_batch: u32) -> Self {
        WatchStream { rx, held: None, max_batch: max_batch as usize }
    }

    fn batch(&mut self, first: pb::StepEvent) -> pb::Progress {
        let mut steps = vec![first];
        while steps.len() < self.max_batch {
            match self.rx.try_recv() {
                Ok(Ok(LiveEvent::Step(s))) => steps.push(convert::step_to_pb(&s)),
                Ok(other) => {
                    self.held = Some(other);
                    break;
                }
                Err(_) => break,
            }
        }
        pb::Progress { event: Some(pb::progress::Event::Steps(pb::StepBatch { steps })) }
    }
}

impl Stream for WatchStream {
    type Item = Result<pb::Progress, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = match self.held.take() {
            Some(item) => item,
            None => match self.rx.poll_recv(cx) {
                Poll::Ready(Some(item)) => item,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            },
        };
        Poll::Ready(Some(match next {
            Ok(LiveEvent::Step(s)) if self.max_batch > 1 => Ok(self.batch(convert::step_to_pb(&s))),
            Ok(ev) => Ok(convert::progress_to_pb(&ev)),
            Err(e) => Err(from_runner(e)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio_stream::StreamExt;

    use super::*;
    use crate::engine::train::{EvalRecord, StepRecord};

    fn step(n: u64) -> Item {
        Ok(LiveEvent::Step(Arc::new(StepRecord {
            step: n,
            loss: 1.0,
            accuracy: 0.5,
            lr: 0.1,
            grad_norm: 1.0,
            layers: vec![],
            histograms: vec![],
        })))
    }

    fn kinds(msgs: &[pb::Progress]) -> Vec<String> {
        use pb::progress::Event;
        msgs.iter()
            .map(|m| match m.event.as_ref().unwrap() {
                Event::Step(s) => format!("s{}", s.step),
                Event::Steps(b) => format!("b{:?}", b.steps.iter().map(|s| s.step).collect::<Vec<_>>()),
                Event::Eval(e) => format!("e{}", e.step),
                Event::Job(_) => "j".into(),
            })
            .collect()
    }

    async fn sent(max_batch: u32, items: Vec<Item>) -> Vec<pb::Progress> {
        let (tx, rx) = mpsc::channel(64);
        for i in items {
            tx.send(i).await.unwrap();
        }
        drop(tx);
        WatchStream::new(rx, max_batch).map(|m| m.unwrap()).collect().await
    }

    #[tokio::test]
    async fn waiting_steps_travel_together_in_order_and_nothing_else_is_reordered() {
        let eval = || Ok(LiveEvent::Eval(EvalRecord { step: 2, test_loss: 1.0, test_accuracy: 0.5 }));
        let items = || vec![step(0), step(1), step(2), eval(), step(3), step(4), step(5), step(6)];
        assert_eq!(kinds(&sent(3, items()).await), ["b[0, 1, 2]", "e2", "b[3, 4, 5]", "b[6]"]);
        assert_eq!(kinds(&sent(0, items()).await), ["s0", "s1", "s2", "e2", "s3", "s4", "s5", "s6"]);
        assert_eq!(kinds(&sent(1, items()).await), kinds(&sent(0, items()).await));
    }

    #[tokio::test]
    async fn a_step_is_not_held_back_to_fill_a_batch() {
        let (tx, rx) = mpsc::channel(8);
        let mut stream = WatchStream::new(rx, 100);
        tx.send(step(7)).await.unwrap();
        let first = tokio::time::timeout(std::time::Duration::from_secs(1), stream.next()).await;
        assert_eq!(kinds(&[first.unwrap().unwrap().unwrap()]), ["b[7]"]);
    }
}
