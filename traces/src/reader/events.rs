//! Reading events in order: [`Events`] decodes each frame's records as it goes, reusing one
//! event's buffers, while the next frame is decompressed ahead.

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender};

use crate::codec;
use crate::container::{self, FrameShape};
use crate::error::Result;
use crate::event::Event;

use super::{LoadedFrame, Trace, decode_frame, record_error};

/// Iterator over a range of events; see [`Trace::range`]. Stops after the first error.
pub struct Events {
    trace: Trace,
    next: u64,
    end: u64,
    current: Option<(usize, Arc<LoadedFrame>)>,
    failed: bool,
    prefetch: Option<Prefetcher>,
    /// Decompress the next frame on another thread.
    prefetching: bool,
}

impl Iterator for Events {
    type Item = Result<(u64, Event)>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut event = Event::Exit { code: 0 };
        let seq = self.next_into(&mut event)?;
        Some(seq.map(|seq| (seq, event)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.end.saturating_sub(self.next)).unwrap_or(usize::MAX);
        (0, Some(left))
    }
}

impl Events {
    /// The events of `trace` from `next` up to (not including) `end`.
    pub(super) fn new(trace: Trace, next: u64, end: u64) -> Events {
        Events { trace, next, end, current: None, failed: false, prefetch: None, prefetching: true }
    }

    /// The same events, all decompressed on the reading thread: for a reader that may be
    /// copied into a process of its own by `fork`, where no other thread would run.
    #[must_use]
    pub fn on_this_thread(mut self) -> Events {
        self.prefetching = false;
        self.prefetch = None;
        self
    }

    /// Decodes the next event into `event` and returns its seq, like [`Iterator::next`] but
    /// reusing `event`'s buffers: once they have grown, a sequential pass over host calls
    /// allocates nothing. The fastest way to read a whole trace.
    ///
    /// ```no_run
    /// # fn main() -> wtrace_traces::Result<()> {
    /// let trace = wtrace_traces::Trace::open("trace.zst")?;
    /// let mut events = trace.events();
    /// let mut event = wtrace_traces::Event::Exit { code: 0 };
    /// while let Some(seq) = events.next_into(&mut event) {
    ///     println!("{}: {:?}", seq?, event.kind());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// After an error, `event` holds unspecified (but valid) contents and the iteration ends.
    pub fn next_into(&mut self, event: &mut Event) -> Option<Result<u64>> {
        while !self.failed && self.next < self.end {
            let seq = self.next;
            let result = self.decode_into(seq, event);
            self.next += 1;
            match result {
                Ok(true) => return Some(Ok(seq)),
                Ok(false) => {}
                Err(error) => {
                    self.failed = true;
                    return Some(Err(error));
                }
            }
        }
        None
    }

    /// Starts decompressing the frame after `index` if the range reaches into it.
    fn prefetch_after(&mut self, index: usize) -> Result<()> {
        let trace = &*self.trace.0;
        let next = index + 1;
        if next >= trace.entries.len() || trace.entries[next].first_seq >= self.end {
            return Ok(());
        }
        if self.prefetch.is_none() && self.prefetching {
            self.prefetch = Prefetcher::spawn();
        }
        let Some(prefetch) = self.prefetch.as_mut() else { return Ok(()) };
        let shape = trace.indexed_shape(next);
        let offset = trace.entries[next].offset;
        let compressed = container::read_bytes(trace.src.as_ref(), offset, shape.len(), "data frame")?;
        let events = trace.entries[next].events;
        if prefetch.jobs.send((next, offset, compressed, shape, events)).is_ok() {
            prefetch.in_flight = Some(next);
        }
        Ok(())
    }

    /// Decodes event `seq` into `event`; `false` for a record of a kind from a newer minor
    /// version, which is skipped.
    fn decode_into(&mut self, seq: u64, event: &mut Event) -> Result<bool> {
        let in_current = self.current.as_ref().is_some_and(|(index, _)| {
            let e = &self.trace.0.entries[*index];
            seq >= e.first_seq && seq < e.first_seq + u64::from(e.events)
        });
        if !in_current {
            self.load_frame_of(seq)?;
        }
        let trace = &*self.trace.0;
        let (index, frame) = self.current.as_ref().expect("loaded above");
        let entry = &trace.entries[*index];
        codec::decode_record_into(frame.record((seq - entry.first_seq) as usize), trace.newer_minor(), event)
            .map_err(|error| record_error(*index, entry, seq, error))
    }

    /// Makes the frame holding `seq` current, from the prefetcher when it has it, and starts
    /// fetching the next.
    fn load_frame_of(&mut self, seq: u64) -> Result<()> {
        let trace = &*self.trace.0;
        let index = trace.frame_of(seq)?;
        let frame = match self.prefetch.as_mut().and_then(|p| p.take(index)) {
            Some(frame) => {
                let frame = frame?;
                trace.check_count(index, &frame)?;
                Arc::new(frame)
            }
            None => trace.frame(index)?,
        };
        self.current = Some((index, frame));
        self.prefetch_after(index)
    }
}

/// A job for the prefetch thread: frame index, file offset, compressed bytes, shape, and the
/// events its index entry counts.
type PrefetchJob = (usize, u64, Vec<u8>, FrameShape, u32);

/// Decompresses the next data frame on another thread while the reader decodes the current
/// one. Decoding stays on the reader's thread: freeing memory that another thread allocated
/// costs glibc's allocator more than decoding there would save.
struct Prefetcher {
    jobs: SyncSender<PrefetchJob>,
    results: Receiver<(usize, Result<LoadedFrame>)>,
    in_flight: Option<usize>,
}

impl Prefetcher {
    fn spawn() -> Option<Prefetcher> {
        let (jobs, job_rx) = mpsc::sync_channel::<PrefetchJob>(1);
        let (result_tx, results) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("wtrace-prefetch".into())
            .spawn(move || {
                for (index, offset, compressed, shape, events) in job_rx {
                    let result = decode_frame(index, offset, &compressed, shape, Some(events));
                    if result_tx.send((index, result)).is_err() {
                        break;
                    }
                }
            })
            .ok()?;
        Some(Prefetcher { jobs, results, in_flight: None })
    }

    /// The prefetched frame `index`, if that is the one in flight.
    fn take(&mut self, index: usize) -> Option<Result<LoadedFrame>> {
        self.in_flight.take()?;
        let (got, frame) = self.results.recv().ok()?;
        (got == index).then_some(frame)
    }
}
