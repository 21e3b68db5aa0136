//! Stopping a recording from outside. A signal handler (Ctrl-C, `kill`) or another thread
//! raises an [`Interrupt`]; the guest stops at its next epoch check — the recording engine
//! checks epochs, and a ticker advances them every [`TICK`] — or in the blocking host call it
//! waits in, and the recording ends with an `interrupted` event saying where it was. The same
//! tick hands buffered events to the trace writer, so they reach the file even while the guest
//! makes no host call.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;

/// How often a recording's epoch advances: the most a guest runs before it sees an interrupt,
/// and half the most that buffered events wait before they are written.
pub use wtrace_runtime::engine::TICK;

/// A request to stop a recording, as if by a signal. Clones share the request.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<AtomicUsize>);

impl Interrupt {
    /// A request not yet raised.
    pub fn new() -> Self {
        Interrupt::default()
    }

    /// Asks the recording to stop, as if by signal `signal` (e.g. 2 for SIGINT).
    pub fn raise(&self, signal: i32) {
        self.0.store(usize::try_from(signal).unwrap_or(0).max(1), Ordering::SeqCst);
    }

    /// The signal raised, if any.
    pub fn raised(&self) -> Option<i32> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            signal => Some(i32::try_from(signal).unwrap_or(i32::MAX)),
        }
    }

    /// The cell a signal handler stores the signal's number in (what
    /// `signal_hook::flag::register_usize` takes): storing a non-zero number raises it.
    pub fn cell(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.0)
    }
}

/// The error that stops a guest when its recording is interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the recording was interrupted by signal {0}")]
pub(crate) struct Interrupted(pub(crate) i32);

/// Runs `future` to completion, unless `interrupt` is raised while it waits (looked at every
/// [`TICK`]): then `Err` with the signal. A future that is ready at once costs one load more;
/// the timer is set only once it waits.
pub(crate) async fn unless_raised<F: Future>(
    interrupt: &Interrupt,
    future: F,
) -> Result<F::Output, Interrupted> {
    let mut future = pin!(future);
    let mut tick: Option<Pin<Box<tokio::time::Sleep>>> = None;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(output));
        }
        loop {
            if let Some(signal) = interrupt.raised() {
                return Poll::Ready(Err(Interrupted(signal)));
            }
            let sleep = tick.get_or_insert_with(|| Box::pin(tokio::time::sleep(TICK)));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            tick = None;
        }
    })
    .await
}
