//! `wtrace tui`: step through a recording in the terminal. The event list is the spine; the
//! other panes — details, code, frames, registers, memory — show the state at the selected
//! event, and a one-line timeline spans the whole trace.
//!
//! The core is Elm-shaped: an [`App`] holds the state, [`App::update`] applies one message and
//! returns requests for the worker, and [`draw`] renders the state. Slow work (filters and
//! searches over millions of events, a replay) runs on a worker thread behind channels, and the
//! debug replay on a thread of its own (the [`Debugger`]), so the screen never waits for either.
#![forbid(unsafe_code)]

mod app;
mod data;
mod debugger;
mod filter;
mod keymap;
mod layout;
mod terminal;
mod view;
mod worker;

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use ratatui::crossterm::event::{self, Event as TermEvent};
use wtrace_traces::Trace;

pub use app::{
    App, CodeCursor, CodeView, DebugState, Disassembly, Mode, ModuleState, Msg, Pane, PromptKind,
    ReplayState, Theme, WATCH_LEN, position_label,
};
pub use data::{Category, EventLine, EventStore, SeqSet};
pub use debugger::{DebugAction, DebugRequest, DebugView, Debugger};
pub use filter::Filter;
pub use keymap::{Action, BINDINGS};
pub use layout::Layout;
pub use view::draw;
pub use worker::{Jobs, ReplayReport, Request, Response, Writer};

/// Why the UI could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TuiError {
    /// Standard input or output is not a terminal.
    #[error("the terminal UI needs a terminal, and standard {0} is not one")]
    NotATerminal(&'static str),
    /// The terminal failed.
    #[error("terminal error: {0}")]
    Io(#[from] std::io::Error),
}

/// How the UI looks.
#[derive(Debug, Clone, Copy, Default)]
pub struct TuiOptions {
    /// Draw without colours (`NO_COLOR`).
    pub no_color: bool,
}

/// Runs the UI on `trace` (named `name`) until the user quits.
pub fn run(trace: Trace, name: String, options: TuiOptions) -> Result<(), TuiError> {
    if !std::io::stdout().is_terminal() {
        return Err(TuiError::NotATerminal("output"));
    }
    if !std::io::stdin().is_terminal() {
        return Err(TuiError::NotATerminal("input"));
    }
    let (requests, to_worker) = mpsc::channel();
    let (from_worker, responses) = mpsc::channel();
    let cancel = Arc::new(AtomicBool::new(false));
    let (debug_requests, to_debugger) = mpsc::channel::<DebugRequest>();
    let mut debugger = Debugger::new(trace.clone());
    let debug_cancel = debugger.canceller();
    let debug_responses = from_worker.clone();
    std::thread::Builder::new().name("wtrace-tui-debugger".into()).spawn(move || {
        for request in to_debugger {
            debugger.run(&request, &mut |response| {
                let _ = debug_responses.send(response);
            });
        }
    })?;
    worker::spawn(Jobs::new(trace.clone(), Arc::clone(&cancel)), to_worker, from_worker)?;
    let send = |request: Request| match request {
        Request::Debug(request) => {
            let _ = debug_requests.send(request);
        }
        request => {
            let _ = requests.send(request);
        }
    };
    let mut guard = terminal::TerminalGuard::enter()?;
    let size = guard.terminal.size()?;
    let (mut app, start) =
        App::new(trace, name, (size.width, size.height), Theme { color: !options.no_color });
    for request in start {
        send(request);
    }
    while !app.quit {
        guard.terminal.draw(|frame| draw(&app, frame))?;
        if event::poll(Duration::from_millis(50))? {
            let msg = match event::read()? {
                TermEvent::Key(key) => Some(Msg::Key(key)),
                TermEvent::Mouse(mouse) => Some(Msg::Mouse(mouse)),
                TermEvent::Resize(w, h) => Some(Msg::Resize(w, h)),
                _ => None,
            };
            if let Some(msg) = msg {
                let esc = matches!(&msg, Msg::Key(k) if k.code == event::KeyCode::Esc);
                if esc && app.busy.is_some() {
                    cancel.store(true, Ordering::Relaxed);
                }
                if esc
                    && app.debug.running.is_some()
                    && let Some(canceller) =
                        &*debug_cancel.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
                {
                    canceller.cancel();
                }
                for request in app.update(msg) {
                    send(request);
                }
            }
        }
        while let Ok(response) = responses.try_recv() {
            for request in app.update(Msg::Worker(response)) {
                send(request);
            }
        }
    }
    Ok(())
}
