//! Books transactions into accounts, round after round, and checks the ledger at the end: a
//! program that runs for seconds, calls the host every round (the clock, a line of output), and
//! traps at the very end on a bad value stored into memory in an early round — the shape of
//! bug a reverse watchpoint is for. The first argument is the number of rounds.

use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};

const ACCOUNTS: usize = 4096;

/// Balances, and an index of slots into them with one spare slot at the end.
struct Ledger {
    balances: Vec<i64>,
    index: Vec<u32>,
}

impl Ledger {
    #[inline(never)]
    fn book(&mut self, round: u64, seed: u64) -> u64 {
        let mut state = seed;
        for _ in 0..2000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let from = (state % ACCOUNTS as u64) as usize;
            let to = ((state >> 20) % ACCOUNTS as u64) as usize;
            let amount = (state >> 40) as i64 % 1000;
            self.balances[from] -= amount;
            self.balances[to] += amount;
        }
        // Most rounds re-file an account under its own slot; one early round files the spare
        // slot under an account that does not exist.
        let slot = (state % ACCOUNTS as u64) as usize;
        self.index[slot] = slot as u32;
        if round == 7 {
            self.index[ACCOUNTS] = u32::MAX;
        }
        state
    }

    #[inline(never)]
    fn audit(&self) -> i64 {
        let mut total = 0;
        for &slot in &self.index {
            total += self.balances[slot as usize];
        }
        total
    }
}

fn main() {
    let rounds: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let mut ledger = Ledger { balances: vec![0; ACCOUNTS], index: (0..=ACCOUNTS as u32).map(|a| a % ACCOUNTS as u32).collect() };
    // Where the bad value will be, for the benchmark's reverse watchpoint.
    println!("spare slot at {:p}", &ledger.index[ACCOUNTS]);
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for round in 0..rounds {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        black_box(now);
        seed = ledger.book(round, seed);
        if round % 16 == 0 {
            println!("round {round}: {seed:016x}");
        }
    }
    println!("audit: {}", black_box(&ledger).audit());
}
