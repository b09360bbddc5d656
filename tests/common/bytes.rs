//! The one seeded byte generator of the tests (incompressible, deterministic data: the same
//! seed gives the same bytes in every test and every run) and the seed of randomised tests.

/// xorshift64: fast, deterministic, and its output does not compress.
pub struct Xorshift(pub u64);

impl Xorshift {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// `n` incompressible bytes, the same for the same `seed`.
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = Xorshift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    (0..n).map(|_| (x.next_u64() >> 24) as u8).collect()
}

/// The seed of a randomised test: `BMBACKUP_SEED` to replay one, else from the clock (callers
/// print it).
pub fn seed() -> u64 {
    std::env::var("BMBACKUP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}
