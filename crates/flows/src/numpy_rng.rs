//! NumPy's generators, reproduced exactly so that fixed permutations match the Python
//! code's: the legacy global one (`np.random.seed`, a Mersenne Twister MT19937, DifferNet's)
//! and `np.random.default_rng(seed)` (a `SeedSequence` seeding PCG64, CS-Flow's), each with
//! its `permutation`.

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

/// NumPy's `SeedSequence(seed)` with its default pool of four 32-bit words: `generate_state`
/// gives the words that seed a bit generator.
struct SeedSequence {
    pool: [u32; 4],
}

const INIT_A: u32 = 0x43b0_d7e5;
const MULT_A: u32 = 0x931e_8875;
const INIT_B: u32 = 0x8b51_f9dd;
const MULT_B: u32 = 0x58f3_8ded;
const MIX_MULT_L: u32 = 0xca01_f9dd;
const MIX_MULT_R: u32 = 0x4973_f715;
const XSHIFT: u32 = 16;

impl SeedSequence {
    fn new(seed: u64) -> Self {
        // The seed as little-endian 32-bit words (one word for a seed below 2³²).
        let mut entropy = vec![seed as u32];
        if seed >> 32 != 0 {
            entropy.push((seed >> 32) as u32);
        }
        let mut hash_const = INIT_A;
        let mut hashmix = |value: u32| {
            let mut v = value ^ hash_const;
            hash_const = hash_const.wrapping_mul(MULT_A);
            v = v.wrapping_mul(hash_const);
            v ^ (v >> XSHIFT)
        };
        let mix = |x: u32, y: u32| {
            let r = MIX_MULT_L
                .wrapping_mul(x)
                .wrapping_sub(MIX_MULT_R.wrapping_mul(y));
            r ^ (r >> XSHIFT)
        };
        let mut pool = [0u32; 4];
        for (i, p) in pool.iter_mut().enumerate() {
            *p = hashmix(entropy.get(i).copied().unwrap_or(0));
        }
        for src in 0..4 {
            for dst in 0..4 {
                if src != dst {
                    let h = hashmix(pool[src]);
                    pool[dst] = mix(pool[dst], h);
                }
            }
        }
        for &e in entropy.iter().skip(4) {
            for p in pool.iter_mut() {
                let h = hashmix(e);
                *p = mix(*p, h);
            }
        }
        SeedSequence { pool }
    }

    /// `generate_state(n, np.uint64)`.
    fn generate_u64(&self, n: usize) -> Vec<u64> {
        let mut hash_const = INIT_B;
        let words: Vec<u32> = (0..2 * n)
            .map(|i| {
                let mut v = self.pool[i % 4] ^ hash_const;
                hash_const = hash_const.wrapping_mul(MULT_B);
                v = v.wrapping_mul(hash_const);
                v ^ (v >> XSHIFT)
            })
            .collect();
        words
            .chunks(2)
            .map(|w| w[0] as u64 | ((w[1] as u64) << 32))
            .collect()
    }
}

/// PCG64 (XSL-RR 128/64) as NumPy's `Generator` drives it, with its buffered 32-bit draws.
pub struct Pcg64 {
    state: u128,
    inc: u128,
    spare: Option<u32>,
}

const PCG_MULT: u128 = 0x2360_ed05_1fc6_5da4_4385_df64_9fcc_f645;

impl Pcg64 {
    /// `np.random.default_rng(seed)`'s bit generator.
    pub fn from_seed(seed: u64) -> Self {
        let w = SeedSequence::new(seed).generate_u64(4);
        let init_state = ((w[0] as u128) << 64) | w[1] as u128;
        let init_seq = ((w[2] as u128) << 64) | w[3] as u128;
        let mut g = Pcg64 {
            state: 0,
            inc: (init_seq << 1) | 1,
            spare: None,
        };
        g.step();
        g.state = g.state.wrapping_add(init_state);
        g.step();
        g
    }

    fn step(&mut self) {
        self.state = self.state.wrapping_mul(PCG_MULT).wrapping_add(self.inc);
    }

    pub fn next_u64(&mut self) -> u64 {
        self.step();
        let rot = (self.state >> 122) as u32;
        (((self.state >> 64) as u64) ^ (self.state as u64)).rotate_right(rot)
    }

    /// A 32-bit draw: the low half of a fresh 64-bit one, then its high half.
    pub fn next_u32(&mut self) -> u32 {
        if let Some(v) = self.spare.take() {
            return v;
        }
        let n = self.next_u64();
        self.spare = Some((n >> 32) as u32);
        n as u32
    }

    /// A uniform integer in `0..=max` by masked rejection, as NumPy's `random_interval`.
    fn interval(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        let mask = u64::MAX >> max.leading_zeros();
        loop {
            let v = if max <= u32::MAX as u64 {
                (self.next_u32() as u64) & mask
            } else {
                self.next_u64() & mask
            };
            if v <= max {
                return v;
            }
        }
    }
}

/// `numpy.random.default_rng(seed).permutation(n)`.
pub fn default_rng_permutation(seed: u64, n: usize) -> Vec<usize> {
    let mut g = Pcg64::from_seed(seed);
    let mut out: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = g.interval(i as u64) as usize;
        out.swap(i, j);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rng_permutations_match_numpys() {
        // Printed by NumPy 2.4: np.random.default_rng(k).permutation(10).
        assert_eq!(
            default_rng_permutation(0, 10),
            vec![4, 6, 2, 7, 3, 5, 9, 0, 8, 1]
        );
    }

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
