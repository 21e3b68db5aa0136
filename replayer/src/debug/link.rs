//! What a session and its debug runs say to each other, and how it travels: over channels to a
//! run on a thread of this process, over a Unix socket to a forked copy (a checkpoint, or a run
//! a checkpoint forked), as length-prefixed bincode frames.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{Receiver, Sender};
use std::time::Duration;

use bincode::{Decode, Encode};
use wtrace_traces::Value;

use super::engine::Goal;
use super::{Position, Stop};

/// What the session asks.
#[derive(Debug, Encode, Decode)]
pub(crate) enum Command {
    /// Run on to the goal (a run).
    Resume(Goal),
    /// Set these breakpoint PCs, replacing the set.
    Breakpoints(Vec<u32>),
    /// Read linear memory 0.
    ReadMemory { address: u64, len: u64 },
    /// Every global's value.
    Globals,
    /// Fork a run from here that goes on to the goal, with these breakpoints (a checkpoint).
    Spawn { goal: Goal, breakpoints: Vec<u32> },
    /// End: the session no longer needs this run or checkpoint.
    Exit,
}

/// What a run or a checkpoint answers.
#[derive(Debug, Encode, Decode)]
pub(crate) enum Reply {
    /// The first words on a new connection.
    Hello(Hello),
    Stopped(Box<Stop>),
    Memory(Option<Vec<u8>>),
    Globals(Vec<Value>),
    Done,
    /// A checkpoint forked a run, which connects on its own.
    Spawned {
        pid: u32,
    },
    /// The run could not start, or could not do what was asked.
    Failed(String),
}

/// Who connected.
#[derive(Debug, Clone, Encode, Decode)]
pub(crate) struct Hello {
    /// Its process id.
    pub pid: u32,
    /// A checkpoint at this place, or (`None`) a run a checkpoint forked.
    pub checkpoint: Option<CheckpointAt>,
}

/// Where a checkpoint waits.
#[derive(Debug, Clone, Copy, Encode, Decode)]
pub(crate) struct CheckpointAt {
    /// Its position; `steps > 0` only when the run was counting steps there.
    pub position: Position,
    /// Time spent running the guest from the start to here.
    pub run_nanos: u64,
}

/// One end of a conversation.
pub(crate) enum Link<Out, In> {
    /// With a thread of this process.
    Thread { send: Sender<Out>, recv: Receiver<In> },
    /// With another process.
    Socket(UnixStream),
}

/// The session's end.
pub(crate) type SessionLink = Link<Command, Reply>;
/// A run's end.
pub(crate) type RunLink = Link<Reply, Command>;

/// Frames larger than this are refused: nothing the two sides say comes near it.
const MAX_FRAME: u32 = 1 << 30;

impl<Out: Encode, In: Decode<()>> Link<Out, In> {
    pub(crate) fn send(&mut self, message: Out) -> std::io::Result<()> {
        match self {
            Link::Thread { send, .. } => {
                send.send(message).map_err(|_| std::io::ErrorKind::BrokenPipe.into())
            }
            Link::Socket(stream) => {
                let bytes = bincode::encode_to_vec(&message, bincode::config::standard())
                    .map_err(std::io::Error::other)?;
                let len = u32::try_from(bytes.len()).map_err(std::io::Error::other)?;
                let mut frame = Vec::with_capacity(bytes.len() + 4);
                frame.extend_from_slice(&len.to_le_bytes());
                frame.extend_from_slice(&bytes);
                stream.write_all(&frame)
            }
        }
    }

    pub(crate) fn recv(&mut self) -> std::io::Result<In> {
        match self {
            Link::Thread { recv, .. } => recv.recv().map_err(|_| std::io::ErrorKind::UnexpectedEof.into()),
            Link::Socket(stream) => {
                let mut first = [0; 1];
                stream.read_exact(&mut first)?;
                read_frame(stream, first[0])
            }
        }
    }

    /// Waits at most `timeout` for the next message on a socket (`None` when none came).
    pub(crate) fn recv_within(&mut self, timeout: Duration) -> std::io::Result<Option<In>> {
        let Link::Socket(stream) = self else { return self.recv().map(Some) };
        stream.set_read_timeout(Some(timeout))?;
        let mut first = [0; 1];
        let read = stream.read(&mut first);
        stream.set_read_timeout(None)?;
        match read {
            Ok(0) => Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => read_frame(stream, first[0]).map(Some),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// Reads the rest of a frame whose first byte has been read.
fn read_frame<In: Decode<()>>(stream: &mut UnixStream, first: u8) -> std::io::Result<In> {
    let mut rest = [0; 3];
    stream.read_exact(&mut rest)?;
    let len = u32::from_le_bytes([first, rest[0], rest[1], rest[2]]);
    if len > MAX_FRAME {
        return Err(std::io::Error::other(format!("a {len}-byte message")));
    }
    let mut bytes = vec![0; len as usize];
    stream.read_exact(&mut bytes)?;
    bincode::decode_from_slice(&bytes, bincode::config::standard())
        .map(|(message, _)| message)
        .map_err(std::io::Error::other)
}
