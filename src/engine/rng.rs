//! Seeded random streams. Every random choice in a job comes from one of these, so a spec and a
//! seed fix every bit of a run on every platform (ChaCha8 is specified; `StdRng` is not).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// What a stream is used for; each purpose gets its own ChaCha stream of the job's seed, so
/// adding draws to one purpose never shifts another.
#[derive(Clone, Copy, Debug)]
#[repr(u64)]
pub enum Purpose {
    Init = 1,
    Split = 2,
    Shuffle = 3,
    Data = 4,
}

pub fn stream(seed: u64, purpose: Purpose) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(purpose as u64);
    rng
}
