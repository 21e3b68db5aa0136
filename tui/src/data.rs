//! The trace as the UI reads it, without loading it whole: event lines decoded a page at a time
//! through the reader's index and kept in a small cache, sets of seqs (a filter's matches) as
//! bitmaps with rank and select, and the timeline's columns computed from the index.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use wtrace_runtime::describe;
use wtrace_traces::{Event, EventKind, ImportName, Trace};

use crate::filter::short_kind;

/// Events per cached page of lines.
const PAGE: u64 = 256;
/// Pages kept.
const PAGES: usize = 64;

/// One line of the event list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLine {
    /// `call`, `trap`, `exit`, `returned`.
    pub kind: EventKind,
    /// What happened, on one line.
    pub summary: String,
    /// A host call that failed, for colouring.
    pub failed: bool,
}

impl EventLine {
    /// Describes `event`.
    pub fn of(imports: &[ImportName], event: &Event) -> EventLine {
        let (summary, failed) = match event {
            Event::HostCall(call) => {
                let d = describe::call(imports, call);
                (d.summary, d.failed)
            }
            other => (describe::summary(imports, other), false),
        };
        EventLine { kind: event.kind(), summary, failed }
    }

    /// The text search and the list show: `call  fd_write(1, "hi\n") = 3`.
    pub fn text(&self) -> String {
        format!("{:<5} {}", short_kind(self.kind), self.summary)
    }
}

/// Event lines, decoded a page at a time and cached.
pub struct EventStore {
    trace: Trace,
    imports: Arc<[ImportName]>,
    pages: HashMap<u64, Arc<Vec<EventLine>>>,
    order: VecDeque<u64>,
    /// The error that stopped the last decode, if one did.
    pub error: Option<String>,
}

impl EventStore {
    /// The lines of `trace`.
    pub fn new(trace: Trace) -> EventStore {
        let imports: Arc<[ImportName]> = trace.header().run.imports.clone().into();
        EventStore { trace, imports, pages: HashMap::new(), order: VecDeque::new(), error: None }
    }

    /// The trace's imports.
    pub fn imports(&self) -> &Arc<[ImportName]> {
        &self.imports
    }

    /// The line of event `seq`.
    pub fn line(&mut self, seq: u64) -> Option<EventLine> {
        let page = seq / PAGE;
        let lines = if let Some(lines) = self.pages.get(&page) {
            Arc::clone(lines)
        } else {
            let lines = Arc::new(self.decode_page(page));
            if self.order.len() >= PAGES
                && let Some(old) = self.order.pop_front()
            {
                self.pages.remove(&old);
            }
            self.order.push_back(page);
            self.pages.insert(page, Arc::clone(&lines));
            lines
        };
        lines.get(usize::try_from(seq - page * PAGE).ok()?).cloned()
    }

    fn decode_page(&mut self, page: u64) -> Vec<EventLine> {
        let start = page * PAGE;
        let mut lines = Vec::new();
        let mut events = self.trace.range(start..start + PAGE);
        let mut event = Event::Exit { code: 0 };
        while let Some(seq) = events.next_into(&mut event) {
            match seq {
                Ok(_) => lines.push(EventLine::of(&self.imports, &event)),
                Err(error) => {
                    self.error = Some(error.to_string());
                    break;
                }
            }
        }
        lines
    }
}

/// A set of seqs out of `0..len`: a bitmap, with the count of members before each word for
/// rank (a seq's place among the members) and select (the member at a place).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeqSet {
    words: Vec<u64>,
    before: Vec<u64>,
    len: u64,
}

impl SeqSet {
    /// An empty set over `0..universe`.
    pub fn new(universe: u64) -> SeqSet {
        SeqSet { words: vec![0; universe.div_ceil(64) as usize], before: Vec::new(), len: 0 }
    }

    /// Adds `seq` (in increasing order or not); call [`SeqSet::seal`] when done.
    pub fn insert(&mut self, seq: u64) {
        if let Some(word) = self.words.get_mut((seq / 64) as usize) {
            *word |= 1 << (seq % 64);
        }
    }

    /// Computes the counts rank and select need.
    pub fn seal(&mut self) {
        self.before.clear();
        let mut count = 0;
        for word in &self.words {
            self.before.push(count);
            count += u64::from(word.count_ones());
        }
        self.len = count;
    }

    /// Members.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `seq` is a member.
    pub fn contains(&self, seq: u64) -> bool {
        self.words.get((seq / 64) as usize).is_some_and(|w| w & (1 << (seq % 64)) != 0)
    }

    /// How many members are smaller than `seq`.
    pub fn rank(&self, seq: u64) -> u64 {
        let word = (seq / 64) as usize;
        let Some(bits) = self.words.get(word) else { return self.len };
        let below = bits & ((1u64 << (seq % 64)) - 1);
        self.before[word] + u64::from(below.count_ones())
    }

    /// The member at place `index`.
    pub fn select(&self, index: u64) -> Option<u64> {
        if index >= self.len {
            return None;
        }
        let word = self.before.partition_point(|&b| b <= index) - 1;
        let mut left = index - self.before[word];
        let mut bits = self.words[word];
        loop {
            let bit = bits.trailing_zeros();
            if left == 0 {
                return Some(word as u64 * 64 + u64::from(bit));
            }
            bits &= bits - 1;
            left -= 1;
        }
    }
}

/// One column of the timeline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Column {
    /// The first seq it covers.
    pub first: u64,
    /// Bytes of events in it (the index's decompressed frame sizes, spread over their events).
    pub bytes: u64,
    /// A trap is in it.
    pub trap: bool,
    /// An exit or return is in it.
    pub end: bool,
    /// The category of most of its host calls, once the scan has found it.
    pub category: Option<Category>,
}

/// What a host call is about, for the timeline's colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// Reading and writing descriptors.
    Io,
    /// Files and directories by path.
    Files,
    /// Clocks, randomness, polling.
    Time,
    /// Arguments, environment, process.
    Process,
    /// Imports outside WASI.
    Other,
}

impl Category {
    /// The category of an import.
    pub fn of(import: &ImportName) -> Category {
        if import.module != wtrace_runtime::wasi::MODULE {
            return Category::Other;
        }
        let name = import.name.as_str();
        if name.starts_with("path_") || name.starts_with("fd_readdir") || name.starts_with("fd_filestat") {
            Category::Files
        } else if name.starts_with("fd_") || name.starts_with("sock_") {
            Category::Io
        } else if name.starts_with("clock_")
            || name == "random_get"
            || name == "poll_oneoff"
            || name == "sched_yield"
        {
            Category::Time
        } else {
            Category::Process
        }
    }
}

/// The timeline's columns for a trace of `len` events over `width` columns, from the index.
pub(crate) fn columns(trace: &Trace, width: usize, categories: Option<&[Option<Category>]>) -> Vec<Column> {
    let len = trace.len();
    if width == 0 || len == 0 {
        return Vec::new();
    }
    let first = |c: usize| (c as u128 * u128::from(len) / width as u128) as u64;
    let mut columns: Vec<Column> =
        (0..width).map(|c| Column { first: first(c), ..Column::default() }).collect();
    let column_of = |seq: u64| ((u128::from(seq) * width as u128 / u128::from(len)) as usize).min(width - 1);
    for frame in trace.frames() {
        if frame.events == 0 {
            continue;
        }
        let (start, end) = (frame.first_seq, frame.first_seq + u64::from(frame.events));
        let per_event = u64::from(frame.content_len) / u64::from(frame.events);
        let (a, b) = (column_of(start), column_of(end - 1));
        for (c, column) in columns.iter_mut().enumerate().take(b + 1).skip(a) {
            let lo = start.max(first(c));
            let hi = end.min(if c + 1 < width { first(c + 1) } else { len });
            column.bytes += hi.saturating_sub(lo) * per_event;
        }
    }
    if let Some(categories) = categories {
        for (column, category) in columns.iter_mut().zip(categories) {
            column.category = *category;
        }
    }
    columns
}

/// Marks the columns holding these seqs.
pub(crate) fn mark(columns: &mut [Column], len: u64, traps: &[u64], ends: &[u64]) {
    let width = columns.len();
    if width == 0 || len == 0 {
        return;
    }
    let column_of = |seq: u64| ((u128::from(seq) * width as u128 / u128::from(len)) as usize).min(width - 1);
    for &seq in traps {
        columns[column_of(seq)].trap = true;
    }
    for &seq in ends {
        columns[column_of(seq)].end = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_and_select_agree_with_a_list() {
        let members: Vec<u64> = (0..1000).filter(|n| n % 7 == 3 || n % 64 == 63).collect();
        let mut set = SeqSet::new(1000);
        for &m in members.iter().rev() {
            set.insert(m);
        }
        set.seal();
        assert_eq!(set.len(), members.len() as u64);
        for (i, &m) in members.iter().enumerate() {
            assert_eq!(set.select(i as u64), Some(m));
            assert_eq!(set.rank(m), i as u64);
            assert!(set.contains(m));
        }
        assert_eq!(set.select(members.len() as u64), None);
        assert!(!set.contains(4));
        assert_eq!(set.rank(1000), members.len() as u64);
    }
}
