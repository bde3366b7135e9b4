//! Following a sweep: a bar of jobs done out of the total with an ETA on a terminal, plain
//! lines elsewhere, and a line per job that finishes while watching.

use std::time::Duration;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::client::{CliError, Client, status};
use super::fmt::{state_name, verdict_name};
use super::sweep::{counts_text, sweep_state_name};
use crate::api::pb::{self, sweep_progress::Event};

/// Exit status of a sweep watch: a sweep with failed jobs is a failure of the command.
pub fn finish(sweep: Option<pb::Sweep>) -> Result<()> {
    match sweep {
        Some(s) if s.counts.is_some_and(|c| c.failed > 0) => Err(CliError(format!(
            "sweep {}: {} jobs failed (gradlab ls --sweep {} --state failed)",
            s.id,
            s.counts.unwrap_or_default().failed,
            s.id
        ))
        .into()),
        _ => Ok(()),
    }
}

/// "job 12 activation=tanh depth=8: succeeded, test acc 0.953, healthy".
pub fn job_line(sweep_name: &str, j: &pb::Job) -> String {
    let spec = j.spec.clone().unwrap_or_default();
    let what = spec.name.strip_prefix(sweep_name).unwrap_or(&spec.name).trim();
    let mut line = format!("job {} {what}: {}", j.id, state_name(j));
    if let Some(s) = &j.summary {
        line += &format!(", test acc {:.3}, {}", s.test_accuracy, verdict_name(s.verdict));
    }
    if !j.error.is_empty() {
        line += &format!(": {}", j.error);
    }
    line
}

enum View {
    Bar(ProgressBar),
    Plain,
}

impl View {
    fn new(plain: bool, total: u64, done: u64) -> View {
        if plain {
            return View::Plain;
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stdout());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix} [{bar:40.cyan/blue}] {pos}/{len} jobs, {eta} left  {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.set_position(done);
        bar.reset_eta();
        bar.enable_steady_tick(Duration::from_millis(200));
        View::Bar(bar)
    }

    fn line(&self, text: &str) {
        match self {
            View::Bar(b) => b.println(text),
            View::Plain => println!("{text}"),
        }
    }

    fn counts(&self, c: &pb::JobCounts) {
        if let View::Bar(b) = self {
            b.set_position(c.succeeded + c.failed + c.cancelled);
            b.set_message(format!(
                "{} running{}",
                c.running,
                if c.failed > 0 { format!(", {} failed", c.failed) } else { String::new() }
            ));
        }
    }

    fn done(self) {
        if let View::Bar(b) = self {
            b.finish_and_clear();
        }
    }
}

/// Watches a sweep to its end (or until Ctrl-C, which detaches and leaves it running).
/// `every_job`: a line for every finished job, also those that finished before watching (a
/// sweep just submitted); otherwise only for jobs finishing while watching (re-attaching).
/// Returns the final sweep, or None when detached.
pub async fn watch(client: &mut Client, id: i64, plain: bool, every_job: bool) -> Result<Option<pb::Sweep>> {
    let mut stream = client.watch_sweep(pb::SweepId { id }).await.map_err(status)?.into_inner();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut view: Option<View> = None;
    let mut name = String::new();
    let mut last: Option<pb::Sweep> = None;
    // The first `total` job messages replay the jobs as they are; later ones are live changes.
    let mut replay_left = 0u64;
    let mut already = 0u64;
    // Jobs with a line so far.
    let mut ended = 0u64;
    loop {
        let msg = tokio::select! {
            m = stream.message() => m.map_err(status)?,
            _ = &mut ctrl_c => {
                if let Some(v) = view.take() { v.done(); }
                eprintln!("detached from sweep {id}; it keeps running (gradlab watch --sweep {id} to come back)");
                return Ok(None);
            }
        };
        let Some(msg) = msg else { break };
        let counts = msg.counts.unwrap_or_default();
        match msg.event {
            Some(Event::Sweep(s)) => {
                if view.is_none() {
                    name = s.spec.as_ref().map(|p| p.name.clone()).unwrap_or_default();
                    replay_left = counts.total;
                    let v = View::new(plain, counts.total, counts.succeeded + counts.failed + counts.cancelled);
                    if let View::Bar(b) = &v {
                        b.set_prefix(format!("sweep {id}"));
                    }
                    v.line(&format!("sweep {id} {name:?}: {}", counts_text(&counts)));
                    view = Some(v);
                }
                last = Some(s);
            }
            Some(Event::Job(j)) => {
                let terminal = matches!(
                    pb::JobState::try_from(j.state),
                    Ok(pb::JobState::Succeeded | pb::JobState::Failed | pb::JobState::Cancelled)
                );
                let replayed = replay_left > 0;
                replay_left = replay_left.saturating_sub(1);
                if replayed && !every_job {
                    already += terminal as u64;
                } else if terminal && let Some(v) = &view {
                    ended += 1;
                    v.line(&format!("[{ended}/{}] {}", counts.total, job_line(&name, &j)));
                }
            }
            None => {}
        }
        if let Some(v) = &view {
            v.counts(&counts);
        }
    }
    if let Some(v) = view.take() {
        v.done();
    }
    if let Some(s) = &last {
        let took =
            if s.finished_ms > 0 { format!(" in {}", duration(s.finished_ms - s.created_ms)) } else { String::new() };
        let replayed = if already > 0 { format!(" ({already} had finished before watching)") } else { String::new() };
        println!(
            "sweep {} {}: {}{took}{replayed}",
            s.id,
            sweep_state_name(s),
            counts_text(&s.counts.unwrap_or_default())
        );
    }
    Ok(last)
}

/// "1h 02m", "3m 05s", "12s".
pub fn duration(ms: i64) -> String {
    let s = (ms.max(0) + 500) / 1000;
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s:02}s"),
        (h, m, _) => format!("{h}h {m:02}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(12_400), "12s");
        assert_eq!(duration(185_000), "3m 05s");
        assert_eq!(duration(3_720_000), "1h 02m");
        assert_eq!(duration(-5), "0s");
    }
}
