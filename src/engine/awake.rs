//! Keeps the rayon pool's other threads awake while a trainer steps, so that each half of a
//! split product or pass is taken the moment it is offered.
//!
//! A step of a wide net offers work to the other threads some 30 times (each product and fused
//! pass split in two). Between those parts a rayon worker that finds nothing to do soon goes to
//! sleep, and waking it takes tens of microseconds on a virtual machine: on an Intel Xeon the
//! step's own thread waited a median 84 µs at each join for the other half, 6% of a two-thread
//! step at 8x1024x256. A trainer's [`Helpers`] instead put a helper on every other thread of
//! the pool when a step starts: it runs whatever work the pool has, and spins while there is
//! none, until no step has been on for [`GRACE`]. So helpers stay through the short gaps between
//! steps and are sent again only after the trainer pauses. Which thread computes what changes no
//! bits (see [`super::gemm`]).
//!
//! Helpers are detached (`rayon::spawn_broadcast`, one per thread): a step never waits for one,
//! so a helper that meanwhile runs something long (another job, in a shared pool) delays nothing
//! but itself. A helper that starts on a thread already inside a step, as its owner or as
//! another trainer's helper, leaves at once, so helpers neither nest nor hold a thread that has
//! its own work to finish.

use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a helper waits for the next step before it leaves its thread to sleep: longer than
/// the gap between a job's steps, short enough that a pause costs little spinning.
const GRACE: Duration = Duration::from_millis(1);

thread_local! {
    /// Whether this thread is inside a step, as its owner or as a helper.
    static BUSY: Cell<bool> = const { Cell::new(false) };
}

/// One trainer's helpers: whether a step is on, and how many helpers are out (queued or
/// running). A step sends helpers only when none is out, so while the other threads are busy
/// with other work the helpers already queued are not joined by more, step after step.
#[derive(Debug, Default)]
pub struct Helpers(Arc<Shared>);

#[derive(Debug, Default)]
struct Shared {
    stepping: AtomicBool,
    out: AtomicUsize,
}

impl Helpers {
    /// Starts a step: until the returned guard drops (and for [`GRACE`] after), the current
    /// pool's other threads look for work without sleeping.
    pub fn awake(&self) -> Awake {
        let was_busy = BUSY.replace(true);
        self.0.stepping.store(true, Ordering::Release);
        let threads = rayon::current_num_threads();
        if threads > 1 && self.0.out.load(Ordering::Acquire) == 0 {
            self.0.out.store(threads, Ordering::Release);
            let shared = self.0.clone();
            rayon::spawn_broadcast(move |_| help(&shared));
        }
        Awake { shared: self.0.clone(), was_busy, _this_thread: PhantomData }
    }
}

/// A step in progress (see [`Helpers::awake`]). Drop it on the thread that started the step:
/// it is not `Send`.
pub struct Awake {
    shared: Arc<Shared>,
    was_busy: bool,
    _this_thread: PhantomData<*const ()>,
}

impl Drop for Awake {
    fn drop(&mut self) {
        self.shared.stepping.store(false, Ordering::Release);
        BUSY.set(self.was_busy);
    }
}

/// Runs the pool's work while steps go on, spinning while there is none.
fn help(shared: &Shared) {
    if !BUSY.replace(true) {
        let mut idle_since = None;
        loop {
            if shared.stepping.load(Ordering::Acquire) {
                idle_since = None;
            } else {
                let now = Instant::now();
                match idle_since {
                    None => idle_since = Some(now),
                    Some(since) if now - since > GRACE => break,
                    Some(_) => {}
                }
            }
            if rayon::yield_now() != Some(rayon::Yield::Executed) {
                std::hint::spin_loop();
            }
        }
        BUSY.set(false);
    }
    shared.out.fetch_sub(1, Ordering::AcqRel);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a pool")
    }

    /// Whether `cond` holds within 10 s.
    fn eventually(mut cond: impl FnMut() -> bool) -> bool {
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    }

    /// Each thread's [`BUSY`], read by a task on each: a helper runs that task itself, inside
    /// its loop.
    fn busy_threads() -> Vec<bool> {
        rayon::broadcast(|_| BUSY.get())
    }

    fn out(helpers: &Helpers) -> usize {
        helpers.0.out.load(Ordering::SeqCst)
    }

    #[test]
    fn every_thread_helps_while_a_step_runs_and_none_after() {
        let (pool, helpers) = (pool(3), Helpers::default());
        pool.install(|| {
            let step = helpers.awake();
            assert!(eventually(|| busy_threads().iter().all(|&b| b)), "the step's thread and two helpers");
            drop(step);
            assert!(eventually(|| busy_threads().iter().all(|&b| !b)), "every helper leaves after the step");
        });
        assert!(eventually(|| out(&helpers) == 0), "and counts itself back in");
    }

    #[test]
    fn a_helper_on_a_thread_inside_a_step_returns_at_once() {
        let (helpers, other) = (Helpers::default(), Arc::new(Shared::default()));
        other.stepping.store(true, Ordering::SeqCst);
        other.out.store(1, Ordering::SeqCst);
        let later = other.clone();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(2));
            later.stepping.store(false, Ordering::SeqCst);
        });
        let took = pool(1).install(|| {
            let _step = helpers.awake();
            let start = Instant::now();
            help(&other);
            start.elapsed()
        });
        release.join().expect("the releasing thread");
        assert!(took < Duration::from_secs(1), "the helper spun for {took:?} on a thread inside a step");
        assert_eq!(other.out.load(Ordering::SeqCst), 0, "and counted itself back in");
    }

    #[test]
    fn helpers_are_not_sent_again_while_the_last_ones_wait_for_a_thread() {
        let (pool, helpers) = (pool(2), Helpers::default());
        let (hold, held) = std::sync::mpsc::channel::<()>();
        let (started, start) = std::sync::mpsc::channel();
        pool.spawn(move || {
            started.send(()).expect("the test waits");
            held.recv().ok();
        });
        start.recv().expect("one thread is taken");
        let queued = pool.install(|| {
            for _ in 0..100 {
                let _step = helpers.awake();
            }
            out(&helpers)
        });
        assert_eq!(queued, 2, "one helper a thread, sent once, while the other thread is taken");
        drop(hold);
        assert!(eventually(|| out(&helpers) == 0), "they run once their threads are free, and leave");
    }
}
