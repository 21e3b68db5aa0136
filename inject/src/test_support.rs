//! What every architecture's stub round-trip tests share: the register patterns they load (a
//! xorshift stream, so that each register holds a distinct, reproducible value), and the
//! labels of their test functions.

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

/// A test function over register file `R` and the labels in its text: where it faults, where
/// the test resumes it, and where it ends (the armed range is `[function, end)`).
pub(crate) struct Labels<R> {
    pub(crate) function: unsafe extern "C" fn(*const R, *mut R),
    pub(crate) fault: unsafe extern "C" fn(),
    pub(crate) resume: unsafe extern "C" fn(),
    pub(crate) end: unsafe extern "C" fn(),
}

impl<R> Clone for Labels<R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R> Copy for Labels<R> {}

impl<R> Labels<R> {
    /// The code range to arm.
    pub(crate) fn range(&self) -> (usize, usize) {
        (self.function as usize, self.end as usize)
    }
}

/// The [`Labels`] of the test function `wtrace_test_NAME` (and its `_fault`, `_resume` and
/// `_end` labels) over register file `R`.
macro_rules! labels {
    ($name:literal, $regs:ty) => {{
        unsafe extern "C" {
            #[link_name = concat!("wtrace_test_", $name)]
            fn function(patterns: *const $regs, results: *mut $regs);
            #[link_name = concat!("wtrace_test_", $name, "_fault")]
            fn fault();
            #[link_name = concat!("wtrace_test_", $name, "_resume")]
            fn resume();
            #[link_name = concat!("wtrace_test_", $name, "_end")]
            fn end();
        }
        $crate::test_support::Labels::<$regs> { function, fault, resume, end }
    }};
}
pub(crate) use labels;
