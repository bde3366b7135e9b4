//! `gradlab watch`: live progress of one job, as bars on a terminal and plain lines elsewhere.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Result;
use clap::{ArgGroup, Args};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::client::{CliError, Client, ServerArgs, connect, status};
use super::fmt::{job_state, summary_line};
use crate::api::pb::{self, progress::Event};

#[derive(Args, Debug)]
// One of the two, and the usage line says so: `gradlab watch <JOB|--sweep <SWEEP>>`.
#[command(group(ArgGroup::new("target").required(true).args(["job", "sweep"])))]
pub struct WatchArgs {
    /// The job id.
    pub job: Option<i64>,
    /// Watch this sweep instead: a bar of jobs done and a line per job that finishes.
    #[arg(long)]
    pub sweep: Option<i64>,
    /// Replay from this step (default: from the start).
    #[arg(long, default_value_t = 0)]
    pub from_step: u64,
    /// Plain lines even on a terminal.
    #[arg(long)]
    pub plain: bool,
}

pub async fn run(args: WatchArgs, server: &ServerArgs) -> Result<()> {
    let mut client = connect(server).await?;
    let plain = args.plain || !std::io::stdout().is_terminal();
    match (args.job, args.sweep) {
        (_, Some(sweep)) => {
            super::sweep_watch::finish(super::sweep_watch::watch(&mut client, sweep, plain, false).await?)
        }
        (Some(job), None) => finish(watch(&mut client, job, args.from_step, plain).await?),
        (None, None) => unreachable!("clap requires a job or --sweep"),
    }
}

/// Exit status of a watch: a failed job is a failure of the command.
pub fn finish(job: Option<pb::Job>) -> Result<()> {
    match job {
        Some(j) if job_state(&j) == pb::JobState::Failed => {
            Err(CliError(format!("job {} failed: {}", j.id, j.error)).into())
        }
        _ => Ok(()),
    }
}

const BAR_UNITS: u64 = 1000;
/// Steps a message from the server when the terminal falls behind (a replay, a fast job).
const WATCH_BATCH: u32 = 256;

/// The decades the layer bars span: fitted to the norms seen, a decade of room each side, and
/// only ever widened, so bars stay comparable across the run.
#[derive(Clone, Copy, Debug, PartialEq)]
struct LogScale {
    lo: f64,
    hi: f64,
}

impl LogScale {
    /// Widens the scale to cover `norms`; true if it changed.
    fn fit(scale: &mut Option<LogScale>, norms: impl Iterator<Item = f64>) -> bool {
        let logs: Vec<f64> = norms.filter(|v| v.is_finite() && *v > 0.0).map(f64::log10).collect();
        let Some(min) = logs.iter().copied().reduce(f64::min) else { return false };
        let max = logs.iter().copied().fold(min, f64::max);
        let want = LogScale { lo: (min - 1.0).floor(), hi: (max + 1.0).ceil() };
        let new = match *scale {
            None => want,
            Some(s) => LogScale { lo: s.lo.min(want.lo), hi: s.hi.max(want.hi) },
        };
        let changed = *scale != Some(new);
        *scale = Some(new);
        changed
    }

    fn position(&self, v: f64) -> u64 {
        if v.is_nan() || v <= 0.0 || v.is_infinite() {
            return 0;
        }
        let t = ((v.log10() - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0);
        (t * BAR_UNITS as f64).round() as u64
    }
}

/// What a watch shows; bars on a terminal, lines elsewhere.
enum View {
    Bars {
        multi: MultiProgress,
        main: ProgressBar,
        axis: ProgressBar,
        layers: Vec<ProgressBar>,
        scale: Option<LogScale>,
    },
    Lines {
        every: u64,
    },
}

impl View {
    fn new(plain: bool, job: &pb::Job) -> View {
        if plain {
            return View::Lines { every: (job.total_steps / 20).max(1) };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout_with_hz(10));
        let main = multi.add(ProgressBar::new(job.total_steps));
        main.set_style(
            ProgressStyle::with_template(
                "{prefix:.bold} [{bar:40.cyan/blue}] {pos}/{len} steps done  {rate}  ETA {eta}  {msg}",
            )
            .expect("valid template")
            .with_key("rate", |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0} steps/s", state.per_sec());
            })
            .progress_chars("=> "),
        );
        main.set_prefix(format!("job {}", job.id));
        let axis = multi.add(ProgressBar::new(1));
        axis.set_style(ProgressStyle::with_template("  {msg}").expect("valid template"));
        View::Bars { multi, main, axis, layers: Vec::new(), scale: None }
    }

    fn job(&mut self, job: &pb::Job) {
        match self {
            View::Bars { main, .. } => {
                main.set_length(job.total_steps.max(1));
                main.set_position(job.steps_done);
                if job_state(job) != pb::JobState::Running {
                    main.set_message(
                        job_state(job).as_str_name().trim_start_matches("JOB_STATE_").to_ascii_lowercase(),
                    );
                }
            }
            View::Lines { .. } => println!(
                "job {} {}",
                job.id,
                job_state(job).as_str_name().trim_start_matches("JOB_STATE_").to_ascii_lowercase()
            ),
        }
    }

    fn step(&mut self, s: &pb::StepEvent, total: u64, test: Option<&pb::EvalEvent>) {
        match self {
            View::Bars { main, layers, multi, axis, scale } => {
                main.set_position(s.step + 1);
                main.set_message(format!(
                    "step {}  loss {:.4}  acc {:.3}{}",
                    s.step,
                    s.loss,
                    s.accuracy,
                    test_text(test)
                ));
                while layers.len() < s.layers.len() {
                    let bar = multi.add(ProgressBar::new(BAR_UNITS));
                    bar.set_style(
                        ProgressStyle::with_template("  {prefix:>8} |{bar:40.green}| {msg}")
                            .expect("valid template")
                            .progress_chars("#  "),
                    );
                    let l = layers.len();
                    bar.set_prefix(if l + 1 == s.layers.len() { "output".to_string() } else { format!("layer {l}") });
                    layers.push(bar);
                }
                if LogScale::fit(scale, s.layers.iter().map(|l| l.grad_norm))
                    && let Some(sc) = scale
                {
                    axis.set_message(format!(
                        "gradient norm ||dL/dW|| per layer, log scale 1e{} .. 1e{}",
                        sc.lo as i64, sc.hi as i64
                    ));
                }
                let Some(sc) = *scale else { return };
                for (bar, l) in layers.iter().zip(&s.layers) {
                    bar.set_position(sc.position(l.grad_norm));
                    bar.set_message(format!("{:.3e}", l.grad_norm));
                }
            }
            View::Lines { every } => {
                if s.step.is_multiple_of(*every) || s.step + 1 == total {
                    let norms: Vec<String> = s.layers.iter().map(|l| format!("{:.2e}", l.grad_norm)).collect();
                    let done = if total > 0 { 100.0 * (s.step + 1) as f64 / total as f64 } else { 0.0 };
                    println!(
                        "step {} ({done:.0}%) loss {:.4} acc {:.3}{} grad_norm [{}]",
                        s.step,
                        s.loss,
                        s.accuracy,
                        test_text(test),
                        norms.join(" ")
                    );
                }
            }
        }
    }

    fn done(self, job: Option<&pb::Job>) {
        if let View::Bars { main, layers, axis, .. } = self {
            // Leave the last values standing, not full bars.
            axis.abandon();
            for b in layers {
                b.abandon();
            }
            match job {
                Some(j) => main.finish_with_message(
                    job_state(j).as_str_name().trim_start_matches("JOB_STATE_").to_ascii_lowercase(),
                ),
                None => main.abandon_with_message("detached"),
            }
        }
    }
}

/// The latest evaluation, for a step line: "  test acc 0.912 (step 500)".
fn test_text(e: Option<&pb::EvalEvent>) -> String {
    e.map_or(String::new(), |e| format!("  test acc {:.3} (step {})", e.test_accuracy, e.step))
}

/// Watches a job to its end (or until Ctrl-C, which detaches and leaves the job running).
/// Returns the final job, or None when detached.
pub async fn watch(client: &mut Client, id: i64, from_step: u64, plain: bool) -> Result<Option<pb::Job>> {
    let mut stream = client
        .watch_job(pb::WatchRequest { job_id: id, from_step, max_batch: WATCH_BATCH })
        .await
        .map_err(status)?
        .into_inner();
    let mut view: Option<View> = None;
    let mut last_job: Option<pb::Job> = None;
    let mut last_eval: Option<pb::EvalEvent> = None;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let msg = tokio::select! {
            m = stream.message() => m.map_err(status)?,
            _ = &mut ctrl_c => {
                if let Some(v) = view.take() {
                    v.done(None);
                }
                eprintln!("detached from job {id}; it keeps running (gradlab watch {id} to come back)");
                return Ok(None);
            }
        };
        let Some(msg) = msg else { break };
        match msg.event {
            Some(Event::Job(j)) => {
                let v = view.get_or_insert_with(|| View::new(plain, &j));
                v.job(&j);
                last_job = Some(j);
            }
            Some(Event::Step(s)) => {
                let total = last_job.as_ref().map_or(0, |j| j.total_steps);
                if let Some(v) = view.as_mut() {
                    v.step(&s, total, last_eval.as_ref());
                }
            }
            Some(Event::Steps(b)) => {
                let total = last_job.as_ref().map_or(0, |j| j.total_steps);
                if let Some(v) = view.as_mut() {
                    for s in &b.steps {
                        v.step(s, total, last_eval.as_ref());
                    }
                }
            }
            // Evaluations ride on the step lines (at their rate), never lines of their own.
            Some(Event::Eval(e)) => last_eval = Some(e),
            None => {}
        }
    }
    if let Some(v) = view.take() {
        v.done(last_job.as_ref());
    }
    // Let the last frame flush before the summary.
    tokio::time::sleep(Duration::from_millis(20)).await;
    if let Some(j) = &last_job {
        println!("{}", summary_line(j));
    }
    Ok(last_job)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_fits_the_norms_and_only_widens() {
        let mut s = None;
        assert!(!LogScale::fit(&mut s, [0.0, f64::NAN].into_iter()), "nothing to fit");
        assert!(LogScale::fit(&mut s, [1e-3, 2e-1].into_iter()));
        assert_eq!(s, Some(LogScale { lo: -4.0, hi: 1.0 }));
        assert!(!LogScale::fit(&mut s, [1e-2].into_iter()), "inside: unchanged");
        assert!(LogScale::fit(&mut s, [5e-9].into_iter()));
        let sc = s.unwrap();
        assert_eq!((sc.lo, sc.hi), (-10.0, 1.0));
        assert_eq!(sc.position(1e-10), 0);
        assert_eq!(sc.position(10.0), BAR_UNITS);
        assert_eq!(sc.position(f64::INFINITY), 0);
        assert!(sc.position(1e-4) > sc.position(1e-5));
    }
}
