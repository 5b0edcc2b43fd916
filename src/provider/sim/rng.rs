//! A small deterministic generator (SplitMix64): the simulator's output must depend on the
//! seed alone, on every platform and with every version of every dependency.

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SimRng(u64);

impl SimRng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in [-1, 1).
    pub fn signed(&mut self) -> f32 {
        self.unit() * 2.0 - 1.0
    }

    /// An EC2-shaped id: `prefix` + "-0" + 16 hex digits.
    pub fn ec2_id(&mut self, prefix: &str) -> String {
        format!("{prefix}-0{:016x}", self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_ids_look_like_ec2() {
        let (mut a, mut b) = (SimRng::new(7), SimRng::new(7));
        assert_eq!(a.next_u64(), b.next_u64());
        let id = a.ec2_id("i");
        assert_eq!(id.len(), 19);
        assert!(id.starts_with("i-0") && id[2..].chars().all(|c| c.is_ascii_hexdigit()));
        assert!((0.0..1.0).contains(&a.unit()));
    }
}
