//! The session's checkpoints: forked copies of the replay waiting at points of it, so that
//! going back re-executes from the nearest one instead of from the start (rr's technique). A
//! run forks them as it goes; each connects to the session's rendezvous socket and says where it
//! waits. Going back asks the latest one at or before the target to fork a run from there.
//!
//! Their memory is what they alone hold — pages the runs have written since the copy — and is
//! capped: past the cap, the checkpoint whose removal leaves the smallest gap goes.

use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use wtrace_runtime::process;

use super::engine::Goal;
use super::link::{CheckpointAt, Command, Link, Reply, SessionLink};
use super::{Position, SessionError};

/// How a session takes checkpoints.
#[derive(Debug, Clone)]
pub struct CheckpointOptions {
    /// Take them at all (they fork the process; Unix only).
    pub enabled: bool,
    /// Running time of the guest between two of them: going back re-executes at most about
    /// this much before single-stepping.
    pub interval: Duration,
    /// The memory they may hold together, in bytes.
    pub memory_cap: u64,
    /// How many may wait at once.
    pub max_count: usize,
}

impl Default for CheckpointOptions {
    fn default() -> CheckpointOptions {
        CheckpointOptions {
            enabled: cfg!(unix),
            interval: Duration::from_millis(15),
            memory_cap: 1 << 30,
            max_count: 1024,
        }
    }
}

/// What the checkpoints hold now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointStats {
    /// How many wait.
    pub count: usize,
    /// The memory they alone hold, in bytes (`None` where the system does not say).
    pub memory: Option<u64>,
    /// The cap on it.
    pub memory_cap: u64,
    /// How many were dropped to stay under the caps.
    pub dropped: u64,
}

struct Checkpoint {
    at: CheckpointAt,
    pid: u32,
    link: SessionLink,
}

/// Where forked copies connect: a socket in a directory only this user may enter.
struct Rendezvous {
    listener: UnixListener,
    dir: PathBuf,
    path: PathBuf,
}

impl Drop for Rendezvous {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

pub(crate) struct Checkpoints {
    options: CheckpointOptions,
    rendezvous: Option<Rendezvous>,
    /// By position.
    list: Vec<Checkpoint>,
    dropped: u64,
    /// When their memory was last measured (reading it costs a little for each).
    measured: Option<Instant>,
}

/// How often the checkpoints' memory is measured against the cap.
const MEASURE_EVERY: Duration = Duration::from_millis(500);

/// How long a forked copy may take to connect before it is given up on.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl Checkpoints {
    pub(crate) fn new(options: CheckpointOptions) -> Checkpoints {
        let rendezvous = if options.enabled { Self::rendezvous().ok() } else { None };
        Checkpoints { options, rendezvous, list: Vec::new(), dropped: 0, measured: None }
    }

    fn rendezvous() -> std::io::Result<Rendezvous> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "wtrace-debug-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let path = dir.join("checkpoints.sock");
        let listener = UnixListener::bind(&path)?;
        listener.set_nonblocking(true)?;
        Ok(Rendezvous { listener, dir, path })
    }

    /// Where runs tell their checkpoints to connect (`None`: take none).
    pub(crate) fn path(&self) -> Option<PathBuf> {
        self.rendezvous.as_ref().map(|r| r.path.clone())
    }

    pub(crate) fn interval(&self) -> Duration {
        self.options.interval
    }

    /// How many checkpoints a run may take on the way to one goal.
    pub(crate) fn budget(&self) -> u32 {
        u32::try_from(self.options.max_count).unwrap_or(u32::MAX)
    }

    /// The stretches that have a checkpoint, for a goal.
    pub(crate) fn stretches(&self) -> Vec<u64> {
        let mut seqs: Vec<u64> = self.list.iter().map(|c| c.at.position.seq).collect();
        seqs.dedup();
        seqs
    }

    /// The positions of the checkpoints before `here`, latest first.
    pub(crate) fn before(&self, here: Position) -> Vec<Position> {
        self.list.iter().rev().map(|c| c.at.position).filter(|p| *p < here).collect()
    }

    /// Accepts one connection; `None` when none came in time.
    fn accept_one(&mut self) -> Option<(Option<CheckpointAt>, u32, SessionLink)> {
        let rendezvous = self.rendezvous.as_ref()?;
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        loop {
            match rendezvous.listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).ok()?;
                    let mut link: SessionLink = Link::Socket(stream);
                    if let Ok(Some(Reply::Hello(hello))) = link.recv_within(CONNECT_TIMEOUT) {
                        return Some((hello.checkpoint, hello.pid, link));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() > deadline {
                        return None;
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err(_) => return None,
            }
        }
    }

    fn insert(&mut self, at: CheckpointAt, pid: u32, link: SessionLink) {
        let index = self.list.partition_point(|c| c.at.position <= at.position);
        if index > 0 && self.list[index - 1].at.position == at.position {
            // One is waiting there already.
            end(Checkpoint { at, pid, link });
            return;
        }
        self.list.insert(index, Checkpoint { at, pid, link });
    }

    /// Takes in the `count` checkpoints a run says it forked, then keeps under the caps.
    pub(crate) fn adopt(&mut self, count: u32) {
        if count == 0 {
            return;
        }
        for _ in 0..count {
            match self.accept_one() {
                Some((Some(at), pid, link)) => self.insert(at, pid, link),
                Some((None, pid, _)) => process::kill(pid),
                None => break,
            }
        }
        self.keep_under_caps();
    }

    /// The latest checkpoint a run to `target` may start from. One in the middle of `target`'s
    /// stretch counts hits from where it was taken, not from the boundary, so a run to a hit
    /// (`hit_in`) of that stretch must not start there.
    pub(crate) fn best(&self, target: Position, hit_in: Option<u64>) -> Option<usize> {
        self.list.iter().rposition(|c| {
            let p = c.at.position;
            p <= target && !(p.steps > 0 && hit_in == Some(p.seq))
        })
    }

    /// Has checkpoint `index` fork a run toward `goal`; returns the run's conversation and
    /// process id. A checkpoint that fails at it is dropped.
    pub(crate) fn spawn(
        &mut self,
        index: usize,
        goal: Goal,
        breakpoints: Vec<u32>,
    ) -> Result<(SessionLink, u32), SessionError> {
        let pid = self.list[index].pid;
        let spawned = self.try_spawn(index, goal, breakpoints);
        if spawned.is_err()
            && let Some(index) = self.list.iter().position(|c| c.pid == pid)
        {
            let gone = self.list.remove(index);
            end(gone);
        }
        spawned
    }

    fn try_spawn(
        &mut self,
        index: usize,
        goal: Goal,
        breakpoints: Vec<u32>,
    ) -> Result<(SessionLink, u32), SessionError> {
        let checkpoint = &mut self.list[index];
        let failed =
            |e: String| SessionError::Run(format!("checkpoint at {:?}: {e}", checkpoint.at.position));
        let answer = checkpoint
            .link
            .send(Command::Spawn { goal, breakpoints })
            .and_then(|()| checkpoint.link.recv())
            .map_err(|e| failed(e.to_string()));
        let pid = match answer {
            Ok(Reply::Spawned { pid }) => pid,
            Ok(Reply::Failed(e)) => return Err(failed(e)),
            Ok(other) => return Err(failed(format!("unexpected answer {other:?}"))),
            Err(e) => return Err(e),
        };
        loop {
            match self.accept_one() {
                Some((None, runner, link)) if runner == pid => return Ok((link, pid)),
                Some((Some(at), pid, link)) => self.insert(at, pid, link),
                Some((None, other, _)) => process::kill(other),
                None => return Err(SessionError::Run("the run a checkpoint forked did not connect".into())),
            }
        }
    }

    /// The latest checkpoint before `here` whose bytes at `address` are not `now`, and the
    /// one after it (or `here`). The questions go out to a batch of checkpoints at a time
    /// before the answers are read, so their round trips overlap.
    pub(crate) fn last_difference(
        &mut self,
        here: Position,
        address: u64,
        len: u64,
        now: Option<&[u8]>,
    ) -> (Option<Position>, Position) {
        const BATCH: usize = 64;
        let candidates: Vec<usize> =
            (0..self.list.len()).rev().filter(|&i| self.list[i].at.position < here).collect();
        let mut after = here;
        for batch in candidates.chunks(BATCH) {
            let asked: Vec<bool> = batch
                .iter()
                .map(|&i| self.list[i].link.send(Command::ReadMemory { address, len }).is_ok())
                .collect();
            let mut answers = Vec::with_capacity(batch.len());
            for (&i, asked) in batch.iter().zip(asked) {
                let bytes = match asked.then(|| self.list[i].link.recv()) {
                    Some(Ok(Reply::Memory(bytes))) => Some(bytes),
                    _ => None,
                };
                answers.push((i, bytes));
            }
            for (i, bytes) in answers {
                // A checkpoint that did not answer tells nothing.
                let Some(bytes) = bytes else { continue };
                let position = self.list[i].at.position;
                if bytes.as_deref() != now {
                    return (Some(position), after);
                }
                after = position;
            }
        }
        (None, after)
    }

    fn memory(&self) -> Option<u64> {
        self.list.iter().map(|c| process::private_memory(c.pid)).sum()
    }

    pub(crate) fn stats(&self) -> CheckpointStats {
        CheckpointStats {
            count: self.list.len(),
            memory: if self.list.is_empty() { Some(0) } else { self.memory() },
            memory_cap: self.options.memory_cap,
            dropped: self.dropped,
        }
    }

    /// Drops checkpoints while there are too many or they hold too much: each time the one
    /// whose neighbours are closest in running time, never the latest. Their memory grows as
    /// the runs write pages they share, slowly; it is measured at most every
    /// [`MEASURE_EVERY`].
    fn keep_under_caps(&mut self) {
        let measure = self.measured.is_none_or(|at| at.elapsed() >= MEASURE_EVERY);
        if measure {
            self.measured = Some(Instant::now());
        }
        loop {
            let over_count = self.list.len() > self.options.max_count;
            let over_memory = !over_count
                && measure
                && self.list.len() > 1
                && self.memory().is_some_and(|bytes| bytes > self.options.memory_cap);
            if !(over_count || over_memory) || self.list.len() < 2 {
                return;
            }
            let time = |i: usize| if i == usize::MAX { 0 } else { self.list[i].at.run_nanos };
            let victim = (0..self.list.len() - 1)
                .min_by_key(|&i| time(i + 1).saturating_sub(time(i.wrapping_sub(1))))
                .unwrap_or(0);
            let gone = self.list.remove(victim);
            end(gone);
            self.dropped += 1;
        }
    }
}

/// Tells a checkpoint it is done, and reaps it when this process forked it.
fn end(mut checkpoint: Checkpoint) {
    let _ = checkpoint.link.send(Command::Exit);
    drop(checkpoint.link);
    process::reap(checkpoint.pid);
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        for checkpoint in self.list.drain(..) {
            end(checkpoint);
        }
    }
}
