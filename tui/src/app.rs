//! The UI's state and how it changes: an [`App`] and [`App::update`], which takes one message
//! (a key, a mouse event, a resize, a worker's answer) and returns the requests to send to the
//! worker. Nothing here draws or touches the terminal, so behaviour is tested without one.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::{Position, Rect};
use wtrace_replayer::debug::{DebugFrame, Stop};
use wtrace_runtime::introspect::{DisasmLine, ModuleInfo};
use wtrace_traces::{Completeness, Event, EventKind, Frame, MemoryBytes, SourceLocation, Trace};

use crate::data::{Category, EventLine, EventStore, SeqSet};
use crate::debugger::{DebugAction, DebugFailure, DebugRequest, DebugView};
use crate::filter::Filter;
use crate::keymap::{self, Action};
use crate::layout::{self, Layout};
use crate::worker::{ReplayReport, Request, Response, Writer};

/// A function's disassembly, or why there is none.
pub type Disassembly = Arc<Result<Vec<DisasmLine>, String>>;

/// The panes, in focus order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pane {
    Events,
    Details,
    Code,
    Frames,
    Registers,
    Memory,
    Locals,
}

impl Pane {
    /// Every pane, in focus order (and by number, 1 to 7).
    pub const ALL: [Pane; 7] =
        [Pane::Events, Pane::Details, Pane::Code, Pane::Frames, Pane::Registers, Pane::Memory, Pane::Locals];

    /// Its number, for `1`–`7`.
    pub fn number(self) -> usize {
        Pane::ALL.iter().position(|p| *p == self).unwrap_or(0) + 1
    }

    /// Its name.
    pub fn title(self) -> &'static str {
        match self {
            Pane::Events => "Events",
            Pane::Details => "Details",
            Pane::Code => "Code",
            Pane::Frames => "Frames",
            Pane::Registers => "Registers",
            Pane::Memory => "Memory",
            Pane::Locals => "Locals",
        }
    }
}

/// What the app answers to.
#[derive(Debug, Clone)]
pub enum Msg {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Resize(u16, u16),
    Worker(Response),
}

/// What a prompt asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    Goto,
    Search,
    Filter,
    Address,
}

impl PromptKind {
    /// What the prompt line starts with.
    pub fn label(self) -> &'static str {
        match self {
            PromptKind::Goto => "go to event: ",
            PromptKind::Search => "/",
            PromptKind::Filter => "filter: ",
            PromptKind::Address => "go to address: ",
        }
    }
}

/// What the keyboard is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Prompt {
        kind: PromptKind,
        text: String,
    },
    Help,
    /// The host calls that wrote an address, newest first, one selected.
    Writers {
        address: u64,
        writers: Vec<Writer>,
        selected: usize,
    },
}

/// Whether the Code pane shows source or disassembly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeView {
    /// Source when DWARF names a file that exists here, else disassembly.
    Source,
    Disassembly,
}

/// The module, as far as the worker has got with it.
#[derive(Debug, Clone)]
pub enum ModuleState {
    Loading,
    Ready(Arc<ModuleInfo>),
    Failed(String),
}

/// A running or finished replay.
#[derive(Debug, Clone)]
pub enum ReplayState {
    Idle,
    Running,
    Done(Result<ReplayReport, String>),
}

/// The debug replay as the UI knows it.
#[derive(Debug, Clone, Default)]
pub struct DebugState {
    /// The last stop, once there is one.
    pub view: Option<DebugView>,
    /// The stop before it, for showing which values changed.
    pub previous: Option<Stop>,
    /// The breakpoints' Wasm PCs.
    pub breakpoints: Vec<u32>,
    /// The watched bytes: `c`/`C` run to their next or previous change.
    pub watch: Option<(u64, u64)>,
    /// The request running: its id and what it does.
    pub running: Option<(u64, &'static str)>,
}

impl DebugState {
    /// The event a stop is at: the host call it is about to make, or the trap or exit ahead.
    pub fn stop_event(&self, len: u64) -> Option<u64> {
        let stop = &self.view.as_ref()?.stop;
        Some(stop.position.seq.min(len.saturating_sub(1)))
    }
}

/// The bytes a watchpoint (`W`) watches from the Memory pane's cursor: an `i32`'s worth.
pub const WATCH_LEN: u64 = 4;

/// What the Code pane's cursor is on, for a breakpoint there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeCursor {
    /// The Wasm PCs of the line.
    pub pcs: Vec<u32>,
    /// `0x16a`, `main.rs:12`.
    pub label: String,
}

/// Colours, or (with `NO_COLOR`) none: then marks and modifiers carry the meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

/// The whole UI state.
pub struct App {
    pub trace: Trace,
    /// The trace's file name.
    pub name: String,
    pub store: RefCell<EventStore>,
    pub len: u64,
    pub selected: u64,
    /// The first list position on screen.
    pub top: u64,
    pub filter: Option<(Filter, Arc<SeqSet>)>,
    pub focus: Pane,
    pub zoom: bool,
    pub mode: Mode,
    pub search: Option<String>,
    /// Every trap's seq, once the worker found them.
    pub traps: Vec<u64>,
    /// Every exit's and return's seq.
    pub ends: Vec<u64>,
    pub categories: Option<Vec<Option<Category>>>,
    pub module: ModuleState,
    pub code_view: CodeView,
    /// The selected frame of a trap.
    pub frame: usize,
    pub vectors: bool,
    pub memory_cursor: Option<u64>,
    /// A region the Memory pane shows beyond the selected event's own: what a writer wrote.
    pub memory_extra: Option<(u64, MemoryBytes)>,
    /// A one-line message for the user.
    pub status: Option<String>,
    /// A long job running: what, and how far.
    pub busy: Option<(&'static str, f32)>,
    pub replay: ReplayState,
    pub debug: DebugState,
    /// Said once at the top: a recovered trace.
    pub notice: Option<String>,
    pub size: (u16, u16),
    pub theme: Theme,
    pub quit: bool,
    pub scroll: HashMap<Pane, u16>,
    /// The Code pane's cursor, in lines from the frame's own (negative: above it).
    pub code_offset: i64,
    /// How far the help is scrolled.
    pub help_scroll: u16,
    next_id: u64,
    /// The request each kind of job is waiting for; older answers are dropped.
    waiting: HashMap<&'static str, u64>,
    /// The last decoded event, by seq.
    event_cache: RefCell<Option<(u64, Arc<Event>)>>,
    pub disasm_cache: RefCell<HashMap<u32, Disassembly>>,
    pub source_cache: RefCell<HashMap<PathBuf, Option<Arc<Vec<String>>>>>,
}

impl App {
    /// The UI for `trace` (named `name`) on a terminal of `size`; returns the requests to start.
    pub fn new(trace: Trace, name: String, size: (u16, u16), theme: Theme) -> (App, Vec<Request>) {
        let notice = match trace.completeness() {
            Completeness::Complete => None,
            Completeness::Recovered { index_problem, .. } => Some(format!(
                "INCOMPLETE: {} events recovered ({index_problem}); `wtrace repair` rewrites the index",
                trace.len()
            )),
        };
        let app = App {
            store: RefCell::new(EventStore::new(trace.clone())),
            len: trace.len(),
            trace,
            name,
            selected: 0,
            top: 0,
            filter: None,
            focus: Pane::Events,
            zoom: false,
            mode: Mode::Normal,
            search: None,
            traps: Vec::new(),
            ends: Vec::new(),
            categories: None,
            module: ModuleState::Loading,
            code_view: CodeView::Source,
            frame: 0,
            vectors: false,
            memory_cursor: None,
            memory_extra: None,
            status: None,
            busy: None,
            replay: ReplayState::Idle,
            debug: DebugState::default(),
            notice,
            size,
            theme,
            quit: false,
            scroll: HashMap::new(),
            code_offset: 0,
            help_scroll: 0,
            next_id: 0,
            waiting: HashMap::new(),
            event_cache: RefCell::new(None),
            disasm_cache: RefCell::new(HashMap::new()),
            source_cache: RefCell::new(HashMap::new()),
        };
        (app, vec![Request::LoadModule, Request::Markers])
    }

    /// The screen's layout now.
    pub fn layout(&self) -> Layout {
        layout::compute(Rect::new(0, 0, self.size.0, self.size.1), self.focus, self.zoom)
    }

    // ---- the event list, over all events or a filter's matches ----

    /// Rows in the list.
    pub fn list_len(&self) -> u64 {
        self.filter.as_ref().map_or(self.len, |(_, set)| set.len())
    }

    /// The seq at list position `position`.
    pub fn seq_at(&self, position: u64) -> Option<u64> {
        match &self.filter {
            None => (position < self.len).then_some(position),
            Some((_, set)) => set.select(position),
        }
    }

    /// The list position of `seq` (for a seq the filter hides, the next shown one's).
    pub fn position_of(&self, seq: u64) -> u64 {
        self.filter.as_ref().map_or(seq, |(_, set)| set.rank(seq))
    }

    /// The line of event `seq`.
    pub fn line(&self, seq: u64) -> Option<EventLine> {
        self.store.borrow_mut().line(seq)
    }

    /// The selected event, decoded (and kept until another is selected).
    pub fn selected_event(&self) -> Option<Arc<Event>> {
        if self.len == 0 {
            return None;
        }
        if let Some((seq, event)) = &*self.event_cache.borrow()
            && *seq == self.selected
        {
            return Some(Arc::clone(event));
        }
        let event = Arc::new(self.trace.event(self.selected).ok()?);
        *self.event_cache.borrow_mut() = Some((self.selected, Arc::clone(&event)));
        Some(event)
    }

    /// The module, once loaded.
    pub fn module_info(&self) -> Option<&Arc<ModuleInfo>> {
        match &self.module {
            ModuleState::Ready(info) => Some(info),
            _ => None,
        }
    }

    /// The debug stop, when it is at the selected event: the panes show it then.
    pub fn debug_stop(&self) -> Option<&DebugView> {
        (self.debug.stop_event(self.len) == Some(self.selected)).then_some(self.debug.view.as_ref()).flatten()
    }

    /// The Wasm frames the Code and Frames panes show: the debug stop's, else the selected
    /// trap's backtrace.
    pub fn shown_frames(&self) -> Vec<Frame> {
        if let Some(view) = self.debug_stop() {
            return view.stop.frames.iter().map(frame_of).collect();
        }
        match self.selected_event().as_deref() {
            Some(Event::Trap(trap)) => trap.frames.clone(),
            _ => Vec::new(),
        }
    }

    /// Where a frame is in the source, and the file's lines, when the Code pane can show them.
    pub fn source_of(&self, frame: &Frame) -> Option<(SourceLocation, Arc<Vec<String>>)> {
        if self.code_view != CodeView::Source {
            return None;
        }
        let location =
            wtrace_runtime::describe::frame_location(frame, self.module_info().map(AsRef::as_ref))?;
        let text = self.source(std::path::Path::new(&location.file))?;
        Some((location, text))
    }

    /// What the Code pane's cursor is on: the line `scroll` lines from the frame's own.
    pub fn code_cursor(&self) -> Option<CodeCursor> {
        let frames = self.shown_frames();
        let frame = frames.get(self.frame)?;
        let info = self.module_info()?;
        let offset = self.code_offset;
        if let Some((location, text)) = self.source_of(frame) {
            let line = (i64::from(location.line) + offset).clamp(1, text.len().max(1) as i64) as u32;
            let pcs = info.pcs_at_line(&location.file, line);
            let file = std::path::Path::new(&location.file)
                .file_name()
                .map_or_else(|| location.file.clone(), |n| n.to_string_lossy().into_owned());
            return Some(CodeCursor { pcs, label: format!("{file}:{line}") });
        }
        let pc = frame.module_offset?;
        let index = info.function_at(pc).unwrap_or(frame.func_index);
        let listing = self.disassembly(index)?;
        let listing = listing.as_ref().as_ref().ok()?;
        let at = disassembly_index(listing, pc);
        let line = listing.get((at as i64 + offset).clamp(0, listing.len() as i64 - 1) as usize)?;
        let pc = line.offset?;
        Some(CodeCursor { pcs: vec![pc], label: format!("{pc:#x}") })
    }

    /// The disassembly of function `index`, computed once.
    pub fn disassembly(&self, index: u32) -> Option<Disassembly> {
        let info = self.module_info()?;
        let mut cache = self.disasm_cache.borrow_mut();
        Some(Arc::clone(
            cache
                .entry(index)
                .or_insert_with(|| Arc::new(info.disassemble(index).map_err(|e| e.to_string()))),
        ))
    }

    /// The lines of a source file, when it exists here.
    pub fn source(&self, path: &std::path::Path) -> Option<Arc<Vec<String>>> {
        let mut cache = self.source_cache.borrow_mut();
        cache
            .entry(path.to_path_buf())
            .or_insert_with(|| {
                std::fs::read_to_string(path)
                    .ok()
                    .map(|text| Arc::new(text.lines().map(str::to_owned).collect()))
            })
            .clone()
    }

    /// The trap before the selected event, for showing which registers changed since.
    pub fn previous_trap(&self) -> Option<Arc<Event>> {
        let before = self.traps.partition_point(|&t| t < self.selected);
        let seq = *self.traps.get(before.checked_sub(1)?)?;
        self.trace.event(seq).ok().map(Arc::new)
    }

    /// Rows of the event list on screen.
    fn list_rows(&self) -> u64 {
        self.layout().pane(Pane::Events).map_or(1, |r| u64::from(r.height.saturating_sub(2)).max(1))
    }

    // ---- update ----

    /// Applies `msg`; returns the requests for the worker.
    pub fn update(&mut self, msg: Msg) -> Vec<Request> {
        match msg {
            Msg::Key(key) => self.key(key),
            Msg::Mouse(mouse) => {
                self.mouse(mouse);
                Vec::new()
            }
            Msg::Resize(w, h) => {
                self.size = (w, h);
                self.keep_visible();
                Vec::new()
            }
            Msg::Worker(response) => {
                self.worker(response);
                Vec::new()
            }
        }
    }

    fn key(&mut self, key: KeyEvent) -> Vec<Request> {
        if key.kind != ratatui::crossterm::event::KeyEventKind::Press {
            return Vec::new();
        }
        match self.mode.clone() {
            Mode::Prompt { kind, text } => return self.prompt_key(kind, text, key),
            Mode::Help => {
                match keymap::action_for(&key, self.focus) {
                    // j/k and the page keys scroll a help taller than the screen.
                    Some(Action::Down) => self.help_scroll = self.help_scroll.saturating_add(1),
                    Some(Action::Up) => self.help_scroll = self.help_scroll.saturating_sub(1),
                    Some(Action::PageDown) => self.help_scroll = self.help_scroll.saturating_add(10),
                    Some(Action::PageUp) => self.help_scroll = self.help_scroll.saturating_sub(10),
                    action => {
                        if action == Some(Action::Quit) && key.modifiers.contains(KeyModifiers::CONTROL) {
                            self.quit = true;
                        }
                        self.mode = Mode::Normal;
                    }
                }
                return Vec::new();
            }
            Mode::Writers { address, writers, selected } => {
                return self.writers_key(address, writers, selected, key);
            }
            Mode::Normal => {}
        }
        self.status = None;
        match keymap::action_for(&key, self.focus) {
            Some(action) => self.act(action),
            None => Vec::new(),
        }
    }

    fn prompt_key(&mut self, kind: PromptKind, mut text: String, key: KeyEvent) -> Vec<Request> {
        match key.code {
            KeyCode::Esc => self.mode = Mode::Normal,
            KeyCode::Enter => {
                self.mode = Mode::Normal;
                return self.submit(kind, &text);
            }
            KeyCode::Backspace => {
                text.pop();
                self.mode = Mode::Prompt { kind, text };
            }
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => self.mode = Mode::Normal,
            KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.mode = Mode::Prompt { kind, text: String::new() };
            }
            KeyCode::Char(c) => {
                text.push(c);
                self.mode = Mode::Prompt { kind, text };
            }
            _ => self.mode = Mode::Prompt { kind, text },
        }
        Vec::new()
    }

    fn writers_key(
        &mut self,
        address: u64,
        writers: Vec<Writer>,
        mut selected: usize,
        key: KeyEvent,
    ) -> Vec<Request> {
        match key.code {
            KeyCode::Esc | KeyCode::Char('q') => self.mode = Mode::Normal,
            KeyCode::Char('j') | KeyCode::Down => {
                selected = (selected + 1).min(writers.len().saturating_sub(1));
                self.mode = Mode::Writers { address, writers, selected };
            }
            KeyCode::Char('k') | KeyCode::Up => {
                selected = selected.saturating_sub(1);
                self.mode = Mode::Writers { address, writers, selected };
            }
            KeyCode::Enter => {
                if let Some(writer) = writers.get(selected) {
                    self.select_seq(writer.seq);
                    self.memory_cursor = Some(address);
                    self.focus = Pane::Memory;
                }
                self.mode = Mode::Normal;
            }
            _ => self.mode = Mode::Writers { address, writers, selected },
        }
        Vec::new()
    }

    fn id(&mut self, job: &'static str) -> u64 {
        self.next_id += 1;
        self.waiting.insert(job, self.next_id);
        self.next_id
    }

    fn current(&self, job: &'static str, id: u64) -> bool {
        self.waiting.get(job) == Some(&id)
    }

    fn submit(&mut self, kind: PromptKind, text: &str) -> Vec<Request> {
        let text = text.trim();
        match kind {
            PromptKind::Goto => match parse_number(text) {
                Some(seq) if seq < self.len => {
                    self.select_seq(seq);
                    if self.filter.as_ref().is_some_and(|(_, set)| !set.contains(seq)) {
                        self.status = Some(format!(
                            "event {seq} is hidden by the filter; showing the next shown event"
                        ));
                    }
                }
                Some(seq) => {
                    self.status = Some(format!(
                        "there is no event {seq}: the trace has {} (0..{})",
                        self.len, self.len
                    ));
                }
                None if text == "end" || text == "$" => self.bottom(),
                None => self.status = Some(format!("`{text}` is not an event number")),
            },
            PromptKind::Address => match parse_number(text) {
                Some(address) => return self.goto_address(address),
                None => self.status = Some(format!("`{text}` is not an address (e.g. 0x1040 or 4160)")),
            },
            PromptKind::Search if text.is_empty() => {}
            PromptKind::Search => {
                self.search = Some(text.to_owned());
                return self.search_from(self.selected, false);
            }
            PromptKind::Filter => match Filter::parse(text) {
                Ok(filter) if filter.is_empty() => {
                    self.filter = None;
                    self.status = Some("filter cleared".into());
                    self.keep_visible();
                }
                Ok(filter) => {
                    let id = self.id("filter");
                    self.busy = Some(("filtering", 0.0));
                    return vec![Request::Filter { id, filter }];
                }
                Err(error) => self.status = Some(error),
            },
        }
        Vec::new()
    }

    fn search_from(&mut self, from: u64, backward: bool) -> Vec<Request> {
        let Some(query) = self.search.clone() else {
            self.status = Some("no search yet: press / to search".into());
            return Vec::new();
        };
        let id = self.id("search");
        self.busy = Some(("searching", 0.0));
        let within = self.filter.as_ref().map(|(_, set)| Arc::clone(set));
        vec![Request::Search { id, query, from, backward, within }]
    }

    fn act(&mut self, action: Action) -> Vec<Request> {
        match action {
            Action::Quit => self.quit = true,
            Action::Help => {
                self.mode = Mode::Help;
                self.help_scroll = 0;
            }
            Action::FocusNext | Action::FocusPrev => {
                let at = self.focus.number() - 1;
                let next = if action == Action::FocusNext { at + 1 } else { at + Pane::ALL.len() - 1 };
                self.focus = Pane::ALL[next % Pane::ALL.len()];
            }
            Action::Focus(pane) => self.focus = pane,
            Action::Zoom => self.zoom = !self.zoom,
            Action::Down | Action::Up | Action::PageDown | Action::PageUp | Action::Top | Action::Bottom => {
                self.motion(action);
            }
            Action::Left | Action::Right => {
                if let Some(cursor) = self.memory_cursor.or_else(|| self.memory_start()) {
                    self.memory_cursor =
                        Some(if action == Action::Left { cursor.saturating_sub(1) } else { cursor + 1 });
                }
            }
            Action::Goto => {
                let kind = if self.focus == Pane::Memory { PromptKind::Address } else { PromptKind::Goto };
                self.mode = Mode::Prompt { kind, text: String::new() };
            }
            Action::Search => self.mode = Mode::Prompt { kind: PromptKind::Search, text: String::new() },
            Action::SearchNext => return self.search_from(self.selected, false),
            Action::SearchPrev => return self.search_from(self.selected, true),
            Action::Filter => {
                let text = self.filter.as_ref().map(|(f, _)| f.text.clone()).unwrap_or_default();
                self.mode = Mode::Prompt { kind: PromptKind::Filter, text };
            }
            Action::NextTrap | Action::PrevTrap => self.trap_jump(action == Action::NextTrap),
            Action::TimelineNext | Action::TimelinePrev => self.timeline_step(action == Action::TimelineNext),
            Action::ToggleCodeView => {
                self.code_view = match self.code_view {
                    CodeView::Source => CodeView::Disassembly,
                    CodeView::Disassembly => CodeView::Source,
                };
            }
            Action::ToggleVectors => self.vectors = !self.vectors,
            Action::WhoWrote => {
                let Some(address) = self.memory_cursor.or_else(|| self.memory_start()) else {
                    self.status = Some("no address under the cursor: this event touched no memory".into());
                    return Vec::new();
                };
                let id = self.id("writers");
                self.busy = Some(("finding writers", 0.0));
                return vec![Request::WhoWrote { id, address, before: self.selected + 1 }];
            }
            Action::Replay => {
                if matches!(self.replay, ReplayState::Running) {
                    self.status = Some("a replay is running".into());
                } else {
                    self.replay = ReplayState::Running;
                    return vec![Request::Replay];
                }
            }
            Action::Select => {}
            Action::Cancel => {
                if self.debug.running.is_some() {
                    self.status = Some("cancelling the debug replay…".into());
                }
                self.busy = None;
                self.waiting.clear();
                self.zoom = false;
            }
            Action::DebugStep => return self.debug_request(DebugAction::Step, "stepping"),
            Action::DebugStepBack => return self.debug_request(DebugAction::StepBack, "stepping back"),
            Action::DebugOver => return self.debug_request(DebugAction::Over, "stepping over"),
            Action::DebugOverBack => return self.debug_request(DebugAction::OverBack, "stepping back over"),
            Action::DebugOut => return self.debug_request(DebugAction::Out, "finishing the function"),
            Action::DebugOutBack => return self.debug_request(DebugAction::OutBack, "back to the call"),
            Action::DebugContinue => return self.debug_request(DebugAction::Continue, "continuing"),
            Action::DebugReverseContinue => {
                return self.debug_request(DebugAction::ReverseContinue, "reverse-continuing");
            }
            Action::ToggleBreakpoint => return self.toggle_breakpoint(),
            Action::Watch => self.toggle_watch(),
        }
        Vec::new()
    }

    // ---- debug replay ----

    /// Asks the debugger for `action`, from the selected event when the last stop is elsewhere.
    fn debug_request(&mut self, action: DebugAction, what: &'static str) -> Vec<Request> {
        if self.debug.running.is_some() {
            self.status = Some("the debug replay is busy: wait, or Esc to cancel".into());
            return Vec::new();
        }
        let anchor =
            (self.debug.stop_event(self.len) != Some(self.selected) && self.len > 0).then_some(self.selected);
        let id = self.id("debug");
        self.debug.running = Some((id, what));
        vec![Request::Debug(DebugRequest {
            id,
            anchor,
            action,
            breakpoints: self.debug.breakpoints.clone(),
            watch: self.debug.watch,
            memory_at: self
                .debug
                .watch
                .map(|(a, _)| a)
                .or(self.memory_cursor)
                .or_else(|| self.memory_start()),
        })]
    }

    /// `b`: a breakpoint at the Code pane's cursor, or none there any more.
    fn toggle_breakpoint(&mut self) -> Vec<Request> {
        let Some(cursor) = self.code_cursor() else {
            self.status = Some("no code under the cursor: pick a trap or a debug stop first".into());
            return Vec::new();
        };
        if cursor.pcs.is_empty() {
            self.status = Some(format!("no instruction at {}", cursor.label));
            return Vec::new();
        }
        let set = &mut self.debug.breakpoints;
        if cursor.pcs.iter().all(|pc| set.contains(pc)) {
            set.retain(|pc| !cursor.pcs.contains(pc));
            self.status = Some(format!("breakpoint at {} removed", cursor.label));
        } else {
            set.extend(&cursor.pcs);
            set.sort_unstable();
            set.dedup();
            self.status = Some(format!("breakpoint at {}: c runs to it, C back to it", cursor.label));
        }
        // A session takes them with its next request; one already at a stop takes them now.
        if self.debug.view.is_some() && self.debug.running.is_none() {
            let id = self.id("debug");
            self.debug.running = Some((id, "setting breakpoints"));
            return vec![Request::Debug(DebugRequest {
                id,
                anchor: None,
                action: DebugAction::Here,
                breakpoints: self.debug.breakpoints.clone(),
                watch: self.debug.watch,
                memory_at: self.memory_cursor.or_else(|| self.memory_start()),
            })];
        }
        Vec::new()
    }

    /// `W`: watch the bytes under the Memory pane's cursor (again: stop watching).
    fn toggle_watch(&mut self) {
        if self.debug.watch.take().is_some() {
            self.status = Some("not watching: c/C run to breakpoints".into());
            return;
        }
        match self.memory_cursor.or_else(|| self.memory_start()) {
            Some(address) => {
                self.debug.watch = Some((address, WATCH_LEN));
                self.status = Some(format!(
                    "watching {WATCH_LEN} bytes at {address:#x}: c runs to their next change, C back to the last"
                ));
            }
            None => {
                self.status = Some("no address under the Memory cursor: 6 focuses it, : picks one".into());
            }
        }
    }

    fn debugged(&mut self, id: u64, result: Result<DebugView, DebugFailure>) {
        if !self.current("debug", id) {
            return;
        }
        self.debug.running = None;
        match result {
            Ok(view) => {
                self.status =
                    Some(format!("stopped at {}: {}", position_label(&view.stop), view.stop.reason));
                self.debug.previous = self.debug.view.take().map(|v| v.stop);
                self.debug.view = Some(view);
                let (cursor, extra) = (self.memory_cursor, self.memory_extra.take());
                if let Some(seq) = self.debug.stop_event(self.len) {
                    self.select_seq(seq);
                }
                self.memory_cursor = cursor;
                self.memory_extra = extra;
                self.frame = 0;
                self.code_offset = 0;
                self.scroll.remove(&Pane::Locals);
            }
            Err(DebugFailure::Cancelled) => {
                self.status = Some("cancelled: the debug replay is where it was".into());
            }
            Err(DebugFailure::Failed(error)) => self.status = Some(format!("debug replay: {error}")),
        }
    }

    /// j/k/PgUp/PgDn/g/G: in the focused pane.
    fn motion(&mut self, action: Action) {
        match self.focus {
            Pane::Events => {
                let page = self.list_rows();
                let last = self.list_len().saturating_sub(1);
                let at = self.position_of(self.selected).min(last);
                let to = match action {
                    Action::Down => at.saturating_add(1).min(last),
                    Action::Up => at.saturating_sub(1),
                    Action::PageDown => at.saturating_add(page).min(last),
                    Action::PageUp => at.saturating_sub(page),
                    Action::Top => 0,
                    _ => last,
                };
                if let Some(seq) = self.seq_at(to) {
                    self.select_seq(seq);
                }
            }
            Pane::Code => {
                self.code_offset = match action {
                    Action::Down => self.code_offset + 1,
                    Action::Up => self.code_offset - 1,
                    Action::PageDown => self.code_offset + 10,
                    Action::PageUp => self.code_offset - 10,
                    _ => 0,
                };
            }
            Pane::Frames => {
                let last = self.shown_frames().len().saturating_sub(1);
                self.frame = match action {
                    Action::Down => (self.frame + 1).min(last),
                    Action::Up => self.frame.saturating_sub(1),
                    Action::Top | Action::PageUp => 0,
                    _ => last,
                };
                self.code_offset = 0;
            }
            Pane::Memory => {
                let Some(cursor) = self.memory_cursor.or_else(|| self.memory_start()) else { return };
                self.memory_cursor = Some(match action {
                    Action::Down => cursor + 16,
                    Action::Up => cursor.saturating_sub(16),
                    Action::PageDown => cursor + 16 * 8,
                    Action::PageUp => cursor.saturating_sub(16 * 8),
                    Action::Top => self.memory_start().unwrap_or(cursor),
                    _ => cursor,
                });
            }
            pane => {
                let scroll = self.scroll.entry(pane).or_insert(0);
                *scroll = match action {
                    Action::Down => scroll.saturating_add(1),
                    Action::Up => scroll.saturating_sub(1),
                    Action::PageDown => scroll.saturating_add(10),
                    Action::PageUp => scroll.saturating_sub(10),
                    Action::Top => 0,
                    _ => u16::MAX / 2,
                };
            }
        }
    }

    fn bottom(&mut self) {
        if let Some(seq) = self.seq_at(self.list_len().saturating_sub(1)) {
            self.select_seq(seq);
        }
    }

    /// Selects `seq` (or, under a filter that hides it, the next shown event) and scrolls the
    /// list to show it; the panes that follow the selection start over.
    pub fn select_seq(&mut self, seq: u64) {
        let seq = match &self.filter {
            Some((_, set)) if !set.contains(seq) => {
                set.select(set.rank(seq)).or_else(|| set.select(set.len().saturating_sub(1))).unwrap_or(seq)
            }
            _ => seq,
        };
        if seq != self.selected {
            self.frame = 0;
            self.code_offset = 0;
            self.memory_cursor = None;
            self.memory_extra = None;
            self.scroll.retain(|pane, _| *pane == Pane::Events);
        }
        self.selected = seq;
        self.keep_visible();
    }

    /// Scrolls the list so the selection is on screen.
    fn keep_visible(&mut self) {
        let rows = self.list_rows();
        let at = self.position_of(self.selected);
        if at < self.top {
            self.top = at;
        } else if at >= self.top + rows {
            self.top = at + 1 - rows;
        }
        self.top = self.top.min(self.list_len().saturating_sub(rows));
    }

    fn trap_jump(&mut self, forward: bool) {
        match self.find_trap(forward) {
            Some(seq) if self.filter.as_ref().is_some_and(|(_, set)| !set.contains(seq)) => {
                self.status = Some(format!("the trap at event {seq} is hidden by the filter"));
            }
            Some(seq) => {
                self.select_seq(seq);
                self.focus = Pane::Events;
            }
            None if self.trace.kind_counts()[EventKind::Trap.index()] == 0 => {
                self.status = Some("the trace has no trap".into());
            }
            None => self.status = Some(format!("no {} trap", if forward { "later" } else { "earlier" })),
        }
    }

    /// The next (or previous) trap after the selection, found through the index: only the data
    /// frames it says hold a trap are read, so this works before the worker has listed them.
    fn find_trap(&self, forward: bool) -> Option<u64> {
        let frames = self.trace.frames();
        let here = frames.partition_point(|f| f.first_seq <= self.selected).saturating_sub(1);
        let order: Vec<usize> =
            if forward { (here..frames.len()).collect() } else { (0..=here).rev().collect() };
        for index in order {
            let frame = frames.get(index)?;
            if frame.count(EventKind::Trap) == 0 {
                continue;
            }
            let range = frame.first_seq..frame.first_seq + u64::from(frame.events);
            let traps: Vec<u64> = self
                .trace
                .range(range)
                .filter_map(Result::ok)
                .filter(|(_, e)| e.kind() == EventKind::Trap)
                .map(|(seq, _)| seq)
                .collect();
            let found = if forward {
                traps.into_iter().find(|&t| t > self.selected)
            } else {
                traps.into_iter().rev().find(|&t| t < self.selected)
            };
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// `[`/`]`: to the first event of the previous or next timeline column.
    fn timeline_step(&mut self, forward: bool) {
        let width = u64::from(self.layout().timeline.width.max(1));
        if self.len == 0 {
            return;
        }
        let column = u128::from(self.selected) * u128::from(width) / u128::from(self.len);
        let column = if forward { (column + 1).min(u128::from(width) - 1) } else { column.saturating_sub(1) };
        let mut seq = ((column * u128::from(self.len)).div_ceil(u128::from(width)) as u64).min(self.len - 1);
        // With fewer events than columns, a column may hold none: move one event at least.
        if seq == self.selected {
            seq = if forward { (seq + 1).min(self.len - 1) } else { seq.saturating_sub(1) };
        }
        self.select_seq(seq);
    }

    fn mouse(&mut self, mouse: MouseEvent) {
        let layout = self.layout();
        let at = Position::new(mouse.column, mouse.row);
        let pane = layout.panes.iter().find(|(_, r)| r.contains(at)).map(|(p, r)| (*p, *r));
        match mouse.kind {
            MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => {
                if let Some((pane, _)) = pane {
                    let focus = std::mem::replace(&mut self.focus, pane);
                    let step =
                        if mouse.kind == MouseEventKind::ScrollDown { Action::Down } else { Action::Up };
                    for _ in 0..3 {
                        self.motion(step);
                    }
                    self.focus = focus;
                }
            }
            MouseEventKind::Down(MouseButton::Left) => {
                if layout.timeline.contains(at) && self.len > 0 {
                    let column = u64::from(mouse.column - layout.timeline.x);
                    let width = u64::from(layout.timeline.width.max(1));
                    let seq = (u128::from(column) * u128::from(self.len)).div_ceil(u128::from(width)) as u64;
                    self.select_seq(seq.min(self.len - 1));
                } else if let Some((pane, rect)) = pane {
                    self.focus = pane;
                    if pane == Pane::Events && mouse.row > rect.y && mouse.row < rect.y + rect.height - 1 {
                        let position = self.top + u64::from(mouse.row - rect.y - 1);
                        if let Some(seq) = self.seq_at(position) {
                            self.select_seq(seq);
                        }
                    } else if pane == Pane::Frames && mouse.row > rect.y {
                        self.frame =
                            usize::from(mouse.row - rect.y - 1) + usize::from(self.scroll_of(Pane::Frames));
                    }
                }
            }
            _ => {}
        }
    }

    /// A pane's scroll offset.
    pub fn scroll_of(&self, pane: Pane) -> u16 {
        self.scroll.get(&pane).copied().unwrap_or(0)
    }

    fn worker(&mut self, response: Response) {
        match response {
            Response::Module(Ok(info)) => self.module = ModuleState::Ready(info),
            Response::Module(Err(error)) => self.module = ModuleState::Failed(error),
            Response::Markers { traps, ends } => {
                self.traps = traps;
                self.ends = ends;
            }
            Response::Categories(categories) => self.categories = Some(categories),
            Response::Progress { what, fraction } => {
                if self.busy.is_some() {
                    self.busy = Some((what, fraction));
                }
            }
            Response::Filtered { id, filter, set } => {
                if self.current("filter", id) {
                    self.busy = None;
                    self.status =
                        Some(format!("filter `{}`: {} of {} events", filter.text, set.len(), self.len));
                    let keep = self.selected;
                    self.filter = Some((filter, set));
                    self.select_seq(keep);
                }
            }
            Response::Found { id, query, found, wrapped } => {
                if self.current("search", id) {
                    self.busy = None;
                    match found {
                        Some(seq) => {
                            self.select_seq(seq);
                            self.focus = Pane::Events;
                            if wrapped {
                                self.status = Some(format!("search for `{query}` wrapped around"));
                            }
                        }
                        None => self.status = Some(format!("no event matches `{query}`")),
                    }
                }
            }
            Response::Writers { id, address, writers } => {
                if self.current("writers", id) {
                    self.busy = None;
                    if writers.is_empty() {
                        self.status =
                            Some(format!("no host call up to event {} wrote {address:#x}", self.selected));
                    } else {
                        self.mode = Mode::Writers { address, writers, selected: 0 };
                    }
                }
            }
            Response::Replayed(report) => self.replay = ReplayState::Done(report),
            Response::Debugged { id, result } => self.debugged(id, *result),
            Response::Cancelled => self.busy = None,
            Response::Failed(error) => {
                self.busy = None;
                self.status = Some(error);
            }
        }
    }

    // ---- memory ----

    /// The regions the Memory pane shows for the selected event: a trap's window around the
    /// fault, a host call's writes and reads, and a region a writer wrote.
    pub fn memory_regions(&self) -> Vec<(String, MemoryBytes)> {
        let mut regions = Vec::new();
        if let Some(view) = self.debug_stop()
            && let Some(bytes) = &view.memory
        {
            regions.push((format!("at the stop {}", position_label(&view.stop)), bytes.clone()));
        }
        match self.selected_event().as_deref() {
            Some(Event::Trap(trap)) => {
                if let Some(window) = &trap.memory_window {
                    regions.push(("around the fault".to_owned(), window.clone()));
                }
            }
            Some(Event::HostCall(call)) => {
                let described = wtrace_runtime::describe::call(self.store.borrow().imports(), call);
                for (name, bytes) in described.writes {
                    regions.push((
                        format!("written{}", name.map(|n| format!(" ({n})")).unwrap_or_default()),
                        bytes,
                    ));
                }
                for (name, bytes) in described.reads {
                    regions.push((
                        format!("read{}", name.map(|n| format!(" ({n})")).unwrap_or_default()),
                        bytes,
                    ));
                }
            }
            _ => {}
        }
        if let Some((seq, bytes)) = &self.memory_extra {
            regions.push((format!("as event {seq} wrote it"), bytes.clone()));
        }
        regions
    }

    /// Where the Memory pane's cursor starts: the fault, else the first region.
    pub fn memory_start(&self) -> Option<u64> {
        if let Some(Event::Trap(trap)) = self.selected_event().as_deref()
            && let Some(address) = trap.wasm_fault_address
        {
            return Some(address);
        }
        self.memory_regions().first().map(|(_, r)| r.offset)
    }

    fn goto_address(&mut self, address: u64) -> Vec<Request> {
        self.focus = Pane::Memory;
        self.memory_cursor = Some(address);
        let shown = self
            .memory_regions()
            .iter()
            .any(|(_, r)| (r.offset..r.offset + r.bytes.len() as u64).contains(&address));
        if shown {
            return Vec::new();
        }
        // Not among this event's bytes: ask who last wrote it.
        let id = self.id("writers");
        self.busy = Some(("finding writers", 0.0));
        vec![Request::WhoWrote { id, address, before: self.selected + 1 }]
    }
}

/// A stop's position as people read it: `12+3`, or `12+?` before its steps are counted.
pub fn position_label(stop: &Stop) -> String {
    if stop.exact { stop.position.to_string() } else { format!("{}+?", stop.position.seq) }
}

/// A debug frame as a backtrace frame, for the panes that show either.
fn frame_of(frame: &DebugFrame) -> Frame {
    Frame {
        module: 0,
        func_index: frame.func_index,
        func_name: frame.name.clone(),
        module_offset: Some(frame.pc),
        func_offset: None,
        source: frame.source.clone(),
    }
}

/// The disassembly line of `pc`: the last one at or before it.
pub(crate) fn disassembly_index(listing: &[DisasmLine], pc: u32) -> usize {
    listing.iter().rposition(|l| l.offset.is_some_and(|o| o <= pc)).unwrap_or(0)
}

/// `42`, `0x2a`.
fn parse_number(text: &str) -> Option<u64> {
    let text = text.trim().replace('_', "");
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}
