//! Where a server's random ids (session ids, event ids) come from.
//!
//! In simulation they come from the run's seed, so a replay hands out the same
//! ids; on real TCP (`mcpsim serve`) they come from the operating system's
//! CSPRNG, because a session id is a bearer credential and must not be
//! guessable. The server code only ever asks for bytes.

use rand::Rng as _;
use rand::TryRng as _;
use rand_chacha::ChaCha8Rng;

/// A source of random bytes for ids.
pub enum Ids {
    /// Drawn from the run's seed (simulation).
    Seeded(Box<ChaCha8Rng>),
    /// The operating system's CSPRNG (real TCP).
    Os,
}

impl Ids {
    /// Fill `buf` with random bytes.
    ///
    /// # Panics
    /// With [`Ids::Os`], if the operating system has no entropy to give: a
    /// server that cannot make an unguessable session id must not make one.
    pub fn fill(&mut self, buf: &mut [u8]) {
        match self {
            Ids::Seeded(r) => r.fill_bytes(buf),
            Ids::Os => rand::rngs::SysRng
                .try_fill_bytes(buf)
                .expect("the OS CSPRNG failed; refusing to make guessable ids"),
        }
    }
}
