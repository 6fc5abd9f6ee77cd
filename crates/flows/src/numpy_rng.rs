//! NumPy's legacy global generator (`np.random.seed`, a Mersenne Twister MT19937) and its
//! `permutation`, reproduced exactly so that DifferNet's fixed permutations match.

const N: usize = 624;
const M: usize = 397;

/// MT19937 seeded the way `np.random.seed(int)` seeds it.
#[derive(Clone)]
pub struct Mt19937 {
    state: [u32; N],
    index: usize,
}

impl Mt19937 {
    /// `np.random.seed(seed)` for a seed in `0..2^32`.
    pub fn new(seed: u32) -> Self {
        let mut state = [0u32; N];
        state[0] = seed;
        for i in 1..N {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        Mt19937 { state, index: N }
    }

    fn twist(&mut self) {
        for i in 0..N {
            let y = (self.state[i] & 0x8000_0000) | (self.state[(i + 1) % N] & 0x7fff_ffff);
            let mut next = self.state[(i + M) % N] ^ (y >> 1);
            if y & 1 == 1 {
                next ^= 0x9908_b0df;
            }
            self.state[i] = next;
        }
        self.index = 0;
    }

    /// The next 32-bit output.
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= N {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// The next 64-bit output: two 32-bit outputs, high word first, as NumPy draws them.
    pub fn next_u64(&mut self) -> u64 {
        let hi = self.next_u32() as u64;
        (hi << 32) | self.next_u32() as u64
    }

    /// A uniform integer in `0..=max` by masked rejection (NumPy's `random_interval`).
    pub fn interval(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        let mut mask = max;
        for shift in [1, 2, 4, 8, 16, 32] {
            mask |= mask >> shift;
        }
        loop {
            let value = if max <= u32::MAX as u64 {
                self.next_u32() as u64 & mask
            } else {
                self.next_u64() & mask
            };
            if value <= max {
                return value;
            }
        }
    }

    /// `np.random.permutation(n)`: a Fisher–Yates shuffle of `0..n` from the last element down.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut out: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.interval(i as u64) as usize;
            out.swap(i, j);
        }
        out
    }
}

/// `numpy.random.seed(seed); numpy.random.permutation(n)`.
pub fn seeded_permutation(seed: u32, n: usize) -> Vec<usize> {
    Mt19937::new(seed).permutation(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_numpy_permutations() {
        // Printed by NumPy 2.4: np.random.seed(k); np.random.permutation(10).
        assert_eq!(
            seeded_permutation(0, 10),
            vec![2, 8, 4, 9, 1, 6, 7, 3, 0, 5]
        );
        assert_eq!(
            seeded_permutation(1, 10),
            vec![2, 9, 6, 4, 0, 3, 1, 7, 8, 5]
        );
        assert_eq!(
            seeded_permutation(7, 10),
            vec![8, 5, 0, 2, 1, 9, 7, 3, 6, 4]
        );
    }

    #[test]
    fn reference_mt19937_output() {
        // The first output of MT19937 seeded with 5489 (the generator's reference value).
        assert_eq!(Mt19937::new(5489).next_u32(), 3_499_211_612);
    }
}
