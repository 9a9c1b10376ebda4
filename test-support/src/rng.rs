//! The one generator for fault schedules: tiny, seeded, the same everywhere.

/// xorshift64*, seeded from a printed seed so that any failure replays.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`; 0 (a fixed point of xorshift) is mapped to 1.
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next number.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "Rng::below(0)");
        self.next() % n
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn a_seed_replays_the_same_schedule() {
        let a: Vec<u64> = {
            let mut rng = Rng::new(0x00c0_ffee);
            (0..8).map(|_| rng.below(300)).collect()
        };
        let mut rng = Rng::new(0x00c0_ffee);
        let b: Vec<u64> = (0..8).map(|_| rng.below(300)).collect();
        assert_eq!(a, b);
        assert!(a.iter().any(|&n| n != a[0]), "not constant: {a:?}");
    }

    #[test]
    fn seed_zero_is_not_stuck_at_zero() {
        let mut rng = Rng::new(0);
        assert_ne!(rng.next(), 0);
    }
}
