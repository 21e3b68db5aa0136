//! The register patterns every stub round-trip test loads: a xorshift stream, so that each
//! register holds a distinct, reproducible value.

/// A xorshift stream of register patterns.
pub(crate) struct Patterns(pub(crate) u64);

impl Patterns {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub(crate) fn next_u128(&mut self) -> u128 {
        u128::from(self.next_u64()) << 64 | u128::from(self.next_u64())
    }
}
