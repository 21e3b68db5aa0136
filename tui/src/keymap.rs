//! The one keymap: every key the UI answers, what it does, where, and how the hint bar and the
//! help popup name it. Input handling, the hint bar and the help are all read from [`BINDINGS`].

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::app::Pane;

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    Help,
    FocusNext,
    FocusPrev,
    Focus(Pane),
    Zoom,
    Down,
    Up,
    Left,
    Right,
    PageDown,
    PageUp,
    Top,
    Bottom,
    Goto,
    Search,
    SearchNext,
    SearchPrev,
    Filter,
    NextTrap,
    PrevTrap,
    TimelineNext,
    TimelinePrev,
    ToggleCodeView,
    ToggleVectors,
    WhoWrote,
    Replay,
    Select,
    Cancel,
    DebugStep,
    DebugStepBack,
    DebugOver,
    DebugOverBack,
    DebugOut,
    DebugOutBack,
    DebugContinue,
    DebugReverseContinue,
    ToggleBreakpoint,
    Watch,
}

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Anywhere (unless a pane binds the same key).
    Global,
    /// Only when this pane has the focus.
    Pane(Pane),
}

/// A key as bindings name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    code: KeyCode,
    ctrl: bool,
}

const fn key(c: char) -> Key {
    Key { code: KeyCode::Char(c), ctrl: false }
}

const fn ctrl(c: char) -> Key {
    Key { code: KeyCode::Char(c), ctrl: true }
}

const fn special(code: KeyCode) -> Key {
    Key { code, ctrl: false }
}

impl Key {
    fn matches(self, event: &KeyEvent) -> bool {
        let ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
        match (self.code, event.code) {
            // A shifted letter arrives as the upper-case letter, with or without SHIFT.
            (KeyCode::Char(a), KeyCode::Char(b)) => a == b && self.ctrl == ctrl,
            (KeyCode::BackTab, KeyCode::BackTab) => true,
            (a, b) => a == b && self.ctrl == ctrl,
        }
    }

    /// How help and hints show the key.
    pub fn label(self) -> String {
        let base = match self.code {
            KeyCode::Char(' ') => "Space".to_owned(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::Left => "←".into(),
            KeyCode::Right => "→".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::Home => "Home".into(),
            KeyCode::End => "End".into(),
            KeyCode::Tab => "Tab".into(),
            KeyCode::BackTab => "S-Tab".into(),
            KeyCode::Enter => "Enter".into(),
            KeyCode::Esc => "Esc".into(),
            KeyCode::F(n) => format!("F{n}"),
            other => format!("{other:?}"),
        };
        if self.ctrl { format!("Ctrl-{base}") } else { base }
    }
}

/// One binding: the keys, what they do, where, and how help and the hint bar say it.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    /// The keys (any of them).
    pub keys: &'static [Key],
    /// What they do.
    pub action: Action,
    /// Where.
    pub scope: Scope,
    /// The help popup's description.
    pub help: &'static str,
    /// The hint bar's word for it, for the bindings shown there.
    pub hint: Option<&'static str>,
}

const fn bind(
    keys: &'static [Key],
    action: Action,
    help: &'static str,
    hint: Option<&'static str>,
) -> Binding {
    Binding { keys, action, scope: Scope::Global, help, hint }
}

const fn in_pane(
    pane: Pane,
    keys: &'static [Key],
    action: Action,
    help: &'static str,
    hint: Option<&'static str>,
) -> Binding {
    Binding { keys, action, scope: Scope::Pane(pane), help, hint }
}

/// Every binding, in the order the help lists them.
pub const BINDINGS: &[Binding] = &[
    bind(&[key('q'), ctrl('c')], Action::Quit, "quit", Some("quit")),
    bind(&[key('?'), special(KeyCode::F(1))], Action::Help, "this help", Some("help")),
    bind(&[key('j'), special(KeyCode::Down)], Action::Down, "next line (event, frame, row)", Some("move")),
    bind(&[key('k'), special(KeyCode::Up)], Action::Up, "previous line", None),
    bind(&[special(KeyCode::PageDown), ctrl('f')], Action::PageDown, "a page down", None),
    bind(&[special(KeyCode::PageUp), ctrl('b')], Action::PageUp, "a page up", None),
    bind(&[key('g'), special(KeyCode::Home)], Action::Top, "first event (top of the pane)", None),
    bind(&[key('G'), special(KeyCode::End)], Action::Bottom, "last event (bottom of the pane)", None),
    bind(&[key(':')], Action::Goto, "go to an event by seq", Some("goto")),
    bind(&[key('/')], Action::Search, "search the events' lines", Some("search")),
    bind(&[key('n')], Action::SearchNext, "next match", None),
    bind(&[key('N')], Action::SearchPrev, "previous match", None),
    bind(&[key('f')], Action::Filter, "filter: kind=trap name=fd_* fd=1 failed; empty: off", Some("filter")),
    bind(&[key('t')], Action::NextTrap, "next trap", Some("trap")),
    bind(&[key('T')], Action::PrevTrap, "previous trap", None),
    bind(&[key(']')], Action::TimelineNext, "one timeline column later", None),
    bind(&[key('[')], Action::TimelinePrev, "one timeline column earlier", None),
    bind(&[special(KeyCode::Tab)], Action::FocusNext, "focus the next pane", Some("pane")),
    bind(&[special(KeyCode::BackTab)], Action::FocusPrev, "focus the previous pane", None),
    bind(&[key('1')], Action::Focus(Pane::Events), "focus Events", None),
    bind(&[key('2')], Action::Focus(Pane::Details), "focus Details", None),
    bind(&[key('3')], Action::Focus(Pane::Code), "focus Code", None),
    bind(&[key('4')], Action::Focus(Pane::Frames), "focus Frames", None),
    bind(&[key('5')], Action::Focus(Pane::Registers), "focus Registers", None),
    bind(&[key('6')], Action::Focus(Pane::Memory), "focus Memory", None),
    bind(&[key('7')], Action::Focus(Pane::Locals), "focus Locals", None),
    bind(&[key('z')], Action::Zoom, "zoom the focused pane (again: back)", Some("zoom")),
    bind(&[key('r')], Action::Replay, "replay the trace and compare the trap's registers", None),
    bind(&[special(KeyCode::Esc)], Action::Cancel, "close; cancel a search, filter or replay", None),
    bind(&[key('s')], Action::DebugStep, "debug: step (from the selected event)", Some("step")),
    bind(&[key('S')], Action::DebugStepBack, "debug: step back", Some("back")),
    bind(&[key('o')], Action::DebugOver, "debug: step over calls", None),
    bind(&[key('O')], Action::DebugOverBack, "debug: step back over calls", None),
    bind(&[key('u')], Action::DebugOut, "debug: finish the function", None),
    bind(&[key('U')], Action::DebugOutBack, "debug: back to the function's call", None),
    bind(&[key('c')], Action::DebugContinue, "debug: on to a breakpoint or watched change", None),
    bind(&[key('C')], Action::DebugReverseContinue, "debug: back to a breakpoint or change", None),
    bind(&[key('b')], Action::ToggleBreakpoint, "debug: breakpoint at the Code cursor", None),
    bind(&[key('W')], Action::Watch, "debug: watch the bytes at the Memory cursor", None),
    in_pane(Pane::Code, &[key('v')], Action::ToggleCodeView, "source / disassembly", Some("source/disasm")),
    in_pane(
        Pane::Registers,
        &[key('x')],
        Action::ToggleVectors,
        "show / hide vector registers",
        Some("vectors"),
    ),
    in_pane(Pane::Memory, &[key('h'), special(KeyCode::Left)], Action::Left, "previous byte", None),
    in_pane(Pane::Memory, &[key('l'), special(KeyCode::Right)], Action::Right, "next byte", None),
    in_pane(Pane::Memory, &[key(':')], Action::Goto, "go to an address", Some("address")),
    in_pane(
        Pane::Memory,
        &[key('w')],
        Action::WhoWrote,
        "list the host calls that wrote the byte here",
        Some("who wrote"),
    ),
    in_pane(Pane::Frames, &[special(KeyCode::Enter)], Action::Select, "show this frame's code", None),
];

/// The action `event` asks for with `focus` focused: a binding of the pane wins over a global one.
pub(crate) fn action_for(event: &KeyEvent, focus: Pane) -> Option<Action> {
    let found = |scope: Scope| {
        BINDINGS
            .iter()
            .find(|b| b.scope == scope && b.keys.iter().any(|k| k.matches(event)))
            .map(|b| b.action)
    };
    found(Scope::Pane(focus)).or_else(|| found(Scope::Global))
}

/// The keys of a binding as help shows them: `j/↓`.
pub(crate) fn keys_label(binding: &Binding) -> String {
    binding.keys.iter().map(|k| k.label()).collect::<Vec<_>>().join("/")
}

/// The hint bar's entries for `focus`: the focused pane's hinted bindings, then the global ones.
pub(crate) fn hints(focus: Pane) -> Vec<(String, &'static str)> {
    let pane = BINDINGS.iter().filter(|b| b.scope == Scope::Pane(focus));
    let global = BINDINGS.iter().filter(|b| b.scope == Scope::Global);
    pane.chain(global).filter_map(|b| b.hint.map(|hint| (b.keys[0].label(), hint))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_means_one_thing_in_each_pane() {
        for pane in Pane::ALL {
            let mut seen: Vec<(Key, Action)> = Vec::new();
            for binding in BINDINGS.iter().filter(|b| b.scope == Scope::Pane(pane)) {
                for key in binding.keys {
                    assert!(!seen.iter().any(|(k, _)| k == key), "{} bound twice in {pane:?}", key.label());
                    seen.push((*key, binding.action));
                }
            }
            let globals: Vec<Key> = BINDINGS
                .iter()
                .filter(|b| b.scope == Scope::Global)
                .flat_map(|b| b.keys.iter().copied())
                .collect();
            for (i, key) in globals.iter().enumerate() {
                assert!(!globals[i + 1..].contains(key), "{} bound twice globally", key.label());
            }
        }
    }

    #[test]
    fn pane_bindings_win_over_global_ones() {
        let colon = KeyEvent::new(KeyCode::Char(':'), KeyModifiers::NONE);
        assert_eq!(action_for(&colon, Pane::Events), Some(Action::Goto));
        assert_eq!(action_for(&colon, Pane::Memory), Some(Action::Goto));
        let w = KeyEvent::new(KeyCode::Char('w'), KeyModifiers::NONE);
        assert_eq!(action_for(&w, Pane::Events), None);
        assert_eq!(action_for(&w, Pane::Memory), Some(Action::WhoWrote));
        let c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action_for(&c, Pane::Code), Some(Action::Quit));
        let shift_t = KeyEvent::new(KeyCode::Char('T'), KeyModifiers::SHIFT);
        assert_eq!(action_for(&shift_t, Pane::Events), Some(Action::PrevTrap));
    }
}
