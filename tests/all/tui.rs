//! The terminal UI without a terminal: the Elm core driven by messages (keys, clicks, the
//! worker's answers, run here on the test's thread), and every pane rendered into ratatui's
//! `TestBackend` and compared with a snapshot (`cargo insta review` after a deliberate change).

use std::path::{Path, PathBuf};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use wtrace::Trace;
use wtrace::tui::{App, Debugger, Jobs, Mode, Msg, Pane, Request, Theme};

use crate::common::{fixture, guest, sample_events, write_trace};

/// An app on `trace`, its worker's start-up requests answered.
struct Driver {
    app: App,
    jobs: Jobs,
    debugger: Debugger,
}

impl Driver {
    fn new(path: &Path, size: (u16, u16)) -> Driver {
        let trace = Trace::open(path).unwrap();
        let jobs = Jobs::new(trace.clone(), std::sync::Arc::default());
        let debugger = Debugger::new(trace.clone());
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let (app, requests) = App::new(trace, name, size, Theme { color: false });
        let mut driver = Driver { app, jobs, debugger };
        driver.answer(requests);
        driver
    }

    /// Runs each request on this thread (the worker's and the debugger's alike) and hands the
    /// answers to the app.
    fn answer(&mut self, requests: Vec<Request>) {
        for request in requests {
            let mut responses = Vec::new();
            match request {
                Request::Debug(request) => self.debugger.run(&request, &mut |r| responses.push(r)),
                request => self.jobs.run(request, &mut |r| responses.push(r)),
            }
            for response in responses {
                let more = self.app.update(Msg::Worker(response));
                self.answer(more);
            }
        }
    }

    fn msg(&mut self, msg: Msg) {
        let requests = self.app.update(msg);
        self.answer(requests);
    }

    fn key(&mut self, code: KeyCode) {
        self.msg(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    }

    /// The Locals pane's text.
    fn locals(&self) -> String {
        let screen = self.screen();
        let area = self.app.layout().pane(Pane::Locals).expect("the Locals pane is on screen");
        let buffer = screen.buffer();
        (area.y..area.y + area.height)
            .map(|y| (area.x..area.x + area.width).map(|x| buffer[(x, y)].symbol()).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Types `keys`: each character a key press; `\n` is Enter.
    fn keys(&mut self, keys: &str) {
        for c in keys.chars() {
            self.key(if c == '\n' { KeyCode::Enter } else { KeyCode::Char(c) });
        }
    }

    /// `f`, Ctrl-U (the prompt starts with the filter in force), the filter, Enter.
    fn filter(&mut self, filter: &str) {
        self.keys("f");
        self.msg(Msg::Key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL)));
        self.keys(&format!("{filter}\n"));
    }

    fn click(&mut self, column: u16, row: u16) {
        self.msg(Msg::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column,
            row,
            modifiers: KeyModifiers::NONE,
        }));
    }

    fn screen(&self) -> TestBackend {
        let mut terminal = Terminal::new(TestBackend::new(self.app.size.0, self.app.size.1)).unwrap();
        terminal.draw(|frame| wtrace::tui::draw(&self.app, frame)).unwrap();
        terminal.backend().clone()
    }

    fn text(&self) -> String {
        self.screen().to_string()
    }
}

fn record(module: &Path, dir: &Path, name: &str, data: Option<&Path>) -> PathBuf {
    let path = dir.join(format!("{name}.zst"));
    let mut options = wtrace::RecordOptions::from_file(module).unwrap();
    if let Some(data) = data {
        options = options.dir(data, "/data");
    }
    wtrace::record(&options, &path).unwrap();
    path
}

/// The bundled example: reads a file, then traps.
fn example(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    record(&root.join("examples/header_parser.wat"), dir, "header_parser", Some(&root.join("examples/data")))
}

/// A guest that reads the clock 40 times, writing `tick` to stdout every 4th time and `tock`
/// to stderr every 10th: 55 events.
fn chatty(dir: &Path) -> PathBuf {
    let wat = r#"(module
      (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 16) "tick\n")
      (data (i32.const 32) "tock\n")
      (func (export "_start") (local $i i32)
        (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 5))
        (i32.store (i32.const 8) (i32.const 32)) (i32.store (i32.const 12) (i32.const 5))
        (loop $l
          (drop (call $clock (i32.const 1) (i64.const 0) (i32.const 64)))
          (if (i32.eqz (i32.rem_u (local.get $i) (i32.const 4)))
            (then (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 48)))))
          (if (i32.eqz (i32.rem_u (local.get $i) (i32.const 10)))
            (then (drop (call $fd_write (i32.const 2) (i32.const 8) (i32.const 1) (i32.const 48)))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (i32.const 40))))))"#;
    let module = dir.join("chatty.wat");
    std::fs::write(&module, wat).unwrap();
    record(&module, dir, "chatty", None)
}

#[test]
fn moving_through_the_events() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Driver::new(&chatty(dir.path()), (120, 40));
    let len = d.app.len;
    assert_eq!(len, 55);
    d.keys("jjj");
    assert_eq!(d.app.selected, 3);
    d.keys("k");
    assert_eq!(d.app.selected, 2);
    d.keys("G");
    assert_eq!(d.app.selected, len - 1);
    d.keys("g");
    assert_eq!(d.app.selected, 0);
    d.key(KeyCode::PageDown);
    let page = d.app.selected;
    assert!(page > 10, "a page is the list's height: {page}");
    assert!(d.text().contains(&format!("{}/{len}", page + 1)), "the position is shown as N/len");
    d.key(KeyCode::PageUp);
    assert_eq!(d.app.selected, 0);
    d.keys(":7\n");
    assert_eq!(d.app.selected, 7);
    d.keys(":999999\n");
    assert_eq!(d.app.selected, 7);
    assert!(d.app.status.as_deref().unwrap().contains("there is no event 999999"));
    d.keys(":end\n");
    assert_eq!(d.app.selected, len - 1);
}

#[test]
fn searching_and_filtering() {
    let dir = tempfile::tempdir().unwrap();
    let trace = chatty(dir.path());
    let mut d = Driver::new(&trace, (120, 40));
    let lines: Vec<String> = (0..d.app.len).map(|seq| d.app.line(seq).unwrap().text()).collect();
    let writes: Vec<u64> = (0..d.app.len).filter(|&s| lines[s as usize].contains("fd_write(")).collect();
    assert_eq!(writes.len(), 14, "{lines:#?}");

    d.keys("/fd_write(\n");
    assert_eq!(d.app.selected, writes[0]);
    d.keys("n");
    assert_eq!(d.app.selected, writes[1]);
    d.keys("N");
    assert_eq!(d.app.selected, writes[0]);
    d.keys("N");
    assert_eq!(d.app.selected, *writes.last().unwrap(), "searching back from the first wraps around");
    assert!(d.app.status.as_deref().unwrap().contains("wrapped"));
    d.keys("/no such thing anywhere\n");
    assert!(d.app.status.as_deref().unwrap().contains("no event matches"));

    d.keys("fname=fd_write\n");
    assert_eq!(d.app.list_len(), writes.len() as u64);
    assert!(d.text().contains("[filter name=fd_write:"));
    d.keys("g");
    assert_eq!(d.app.selected, writes[0]);
    d.keys("j");
    assert_eq!(d.app.selected, writes[1], "moving steps over the hidden events");
    d.filter("name=fd_write fd=1");
    let to_stdout = (0..d.app.list_len()).filter_map(|p| d.app.seq_at(p)).collect::<Vec<_>>();
    assert_eq!(to_stdout.len(), 10);
    assert!(
        to_stdout.iter().all(|s| lines[*s as usize].contains(r#"fd_write(1, "tick\n")"#)),
        "{to_stdout:?}"
    );
    d.filter("kind=exit");
    assert_eq!(d.app.list_len(), 1);
    assert_eq!(d.app.selected, d.app.len - 1, "the selection moves to the next shown event");
    d.filter("kind=bogus");
    assert!(d.app.status.as_deref().unwrap().contains("kinds are"));
    d.keys("f");
    // Ctrl-U clears the prompt; Enter on nothing clears the filter.
    d.msg(Msg::Key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL)));
    d.keys("\n");
    assert_eq!(d.app.list_len(), d.app.len);
}

#[test]
fn jumping_to_traps_focus_zoom_and_the_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Driver::new(&example(dir.path()), (120, 40));
    assert_eq!(d.app.traps, vec![d.app.len - 1]);
    d.keys("t");
    assert_eq!(d.app.selected, d.app.len - 1);
    d.keys("t");
    assert!(d.app.status.as_deref().unwrap().contains("no later trap"));
    d.keys("g");
    d.keys("T");
    assert_eq!(d.app.selected, 0);

    d.key(KeyCode::Tab);
    assert_eq!(d.app.focus, Pane::Details);
    d.key(KeyCode::BackTab);
    assert_eq!(d.app.focus, Pane::Events);
    d.keys("3");
    assert_eq!(d.app.focus, Pane::Code);
    d.keys("z");
    assert_eq!(d.app.layout().panes.len(), 1);
    d.keys("z");
    assert_eq!(d.app.layout().panes.len(), Pane::ALL.len());
    d.keys("1");

    // The timeline: `]` moves a column on; a click jumps there.
    let width = u64::from(d.app.layout().timeline.width);
    let len = d.app.len;
    d.keys("]");
    assert_eq!(d.app.selected, (len).div_ceil(width).min(len - 1).max(1), "one column on");
    let timeline = d.app.layout().timeline;
    d.click(timeline.x + timeline.width - 1, timeline.y);
    assert_eq!(d.app.selected, len - 1, "the last column is the last events");
    d.keys("[");
    assert!(d.app.selected < len - 1);

    // A click on an event's row selects it.
    let events = d.app.layout().pane(Pane::Events).unwrap();
    d.click(events.x + 3, events.y + 1 + 2);
    assert_eq!(d.app.selected, 2);
    // The wheel scrolls the pane under the pointer, whichever has the focus.
    d.keys("2");
    d.msg(Msg::Mouse(MouseEvent {
        kind: MouseEventKind::ScrollUp,
        column: events.x + 3,
        row: events.y + 2,
        modifiers: KeyModifiers::NONE,
    }));
    assert_eq!((d.app.selected, d.app.focus), (0, Pane::Details));
}

#[test]
fn colours_follow_no_color() {
    let dir = tempfile::tempdir().unwrap();
    let path = example(dir.path());
    let coloured = |color: bool| {
        let trace = Trace::open(&path).unwrap();
        let (app, _) = App::new(trace, "t".into(), (120, 40), Theme { color });
        let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
        terminal.draw(|frame| wtrace::tui::draw(&app, frame)).unwrap();
        terminal
            .backend()
            .buffer()
            .content()
            .iter()
            .filter(|cell| cell.fg != ratatui::style::Color::Reset)
            .count()
    };
    assert!(coloured(true) > 0);
    assert_eq!(coloured(false), 0, "NO_COLOR: no colours, only bold, reversed and marks");
}

#[test]
fn who_wrote_an_address() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Driver::new(&example(dir.path()), (120, 40));
    // The example reads its header with fd_read; its bytes are written into memory there.
    let read = (0..d.app.len).find(|&s| d.app.line(s).unwrap().summary.starts_with("fd_read(")).unwrap();
    d.keys(&format!(":{read}\n6"));
    let regions = d.app.memory_regions();
    let (_, data) =
        regions.iter().find(|(title, r)| title.starts_with("written") && r.bytes.len() > 4).unwrap();
    let address = data.offset + 1;
    d.keys(&format!(":{address:#x}\n"));
    assert_eq!(d.app.memory_cursor, Some(address));
    d.keys("G");
    d.keys("6w");
    let Mode::Writers { writers, .. } = &d.app.mode else { panic!("{:?}", d.app.mode) };
    assert_eq!(writers[0].seq, read, "the fd_read wrote it");
    d.key(KeyCode::Enter);
    assert_eq!(d.app.selected, read);
    assert_eq!(d.app.mode, Mode::Normal);
}

/// Snapshots: a trap with its registers (a synthetic trace, so the addresses are fixed), the
/// disassembly and the source view, the help, and a 40×10 terminal.
#[test]
fn the_trap_view_with_registers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sample.zst");
    write_trace(&path, &sample_events(8), wtrace::traces::WriterOptions::default());
    let mut d = Driver::new(&path, (130, 36));
    d.keys("t");
    insta::assert_snapshot!("trap_with_registers", d.screen());
    d.keys("5z");
    assert!(!d.text().contains("xmm15 0x"));
    d.keys("x");
    assert!(d.text().contains("xmm15 0x"), "x shows the vector registers");
}

#[test]
fn the_disassembly_view() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Driver::new(&example(dir.path()), (100, 20));
    d.keys("t3z");
    insta::assert_snapshot!("disassembly", d.screen());
}

#[test]
fn the_source_view_of_a_rust_guest_with_line_tables() {
    let dir = tempfile::tempdir().unwrap();
    let trace = record(&guest("trap_in_source"), dir.path(), "source", None);
    let mut d = Driver::new(&trace, (100, 24));
    d.keys("t3z");
    let text = d.text();
    assert!(text.contains("trap_in_source.rs:") && text.contains("(source; v: disassembly)"), "{text}");
    let current = text.lines().find(|l| l.contains("┃->")).expect("a line is marked");
    assert!(current.contains("if length > 64") || current.contains("unreachable()"), "{text}");
    insta::assert_snapshot!("source", d.screen());
    d.keys("v");
    assert!(d.text().contains("(disassembly; v: source)"), "v switches to the disassembly");
    // The caller's frame: the source line of the call.
    d.keys("vz4j");
    assert_eq!(d.app.frame, 1);
    d.keys("3z");
    assert!(d.text().contains("trap_in_source.rs:16"), "{}", d.text());
}

#[test]
fn the_help_popup_lists_the_keymap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sample.zst");
    write_trace(&path, &sample_events(3), wtrace::traces::WriterOptions::default());
    let mut d = Driver::new(&path, (140, 50));
    d.keys("?");
    let text = d.text();
    for binding in wtrace::tui::BINDINGS {
        assert!(text.contains(binding.help), "help lacks `{}`", binding.help);
    }
    insta::assert_snapshot!("help", d.screen());
    d.keys("x");
    assert_eq!(d.app.mode, Mode::Normal, "any key closes the help");
}

#[test]
fn a_40_by_10_terminal_shows_the_focused_pane() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sample.zst");
    write_trace(&path, &sample_events(30), wtrace::traces::WriterOptions::default());
    let mut d = Driver::new(&path, (40, 10));
    insta::assert_snapshot!("small", d.screen());
    d.keys("t2");
    assert!(d.text().contains("2 Details"), "{}", d.text());
}

#[test]
fn a_recovered_trace_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.zst");
    write_trace(
        &path,
        &sample_events(3000),
        wtrace::traces::WriterOptions { batch_bytes: 4096, ..Default::default() },
    );
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let d = Driver::new(&path, (120, 30));
    assert!(d.text().contains("INCOMPLETE:"), "{}", d.text());
}

#[test]
fn stepping_keys_update_the_locals_pane() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Driver::new(&example(dir.path()), (150, 44));
    // No checkpoints: the snapshot shows how many there are.
    let options = wtrace::replayer::debug::SessionOptions {
        checkpoints: wtrace::replayer::debug::CheckpointOptions { enabled: false, ..Default::default() },
        ..Default::default()
    };
    d.debugger = Debugger::with_options(d.app.trace.clone(), options);
    assert!(d.locals().contains("s step  o over"), "before a debug key, the keys:\n{}", d.locals());
    d.keys("t");
    // Back from the trap: the session runs to it first, then one instruction back, to the add
    // that computed the bad address.
    d.keys("S");
    let locals = d.locals();
    assert!(locals.contains("stop 4+9"), "{locals}");
    assert!(locals.contains("frame 0: parse_header"), "{locals}");
    assert!(locals.contains("0 $header     i32  1024"), "the parameter, named: {locals}");
    assert!(
        locals.contains("0             i32  1024") && locals.contains("1             i32  1048576"),
        "{locals}"
    );
    assert!(d.text().contains("->    0x169      i32.add"), "{}", d.text());
    assert_eq!(d.app.selected, 4, "the selection follows the stop");
    // Forward again: the add ran; its result is marked as changed.
    d.keys("s");
    let locals = d.locals();
    assert!(locals.contains("stop 4+10"), "{locals}");
    assert!(locals.contains("0             i32  1049600 *"), "changed since the last stop: {locals}");
    assert!(!locals.contains("1024 *"), "the parameter did not change: {locals}");
    assert!(d.text().contains("[debug 4+10]"), "the title says where the debug replay is");
    d.keys("7z");
    insta::assert_snapshot!("debug_stop", d.screen());
}

#[test]
fn breakpoints_from_the_code_cursor_and_watchpoints_from_the_memory_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Driver::new(&example(dir.path()), (150, 44));
    d.keys("t3");
    // The cursor up to parse_header's first instruction, a breakpoint there, and back to it.
    for _ in 0..4 {
        d.key(KeyCode::Char('k'));
    }
    d.keys("b");
    assert_eq!(d.app.debug.breakpoints, vec![0x162], "{:?}", d.app.status);
    assert!(d.text().contains("  ●   0x162      local.get $header"), "{}", d.text());
    d.keys("C");
    let locals = d.locals();
    assert!(locals.contains("breakpoint at 0x162"), "{locals}");
    assert!(locals.contains("(empty)"), "nothing on the stack at the entry: {locals}");
    // Then the bytes the bad offset came from: watch 0x404 and go back to their last change.
    d.keys("6:0x404\n");
    // The address is not among the stop's bytes: the host calls that wrote it are listed.
    assert!(matches!(d.app.mode, Mode::Writers { .. }), "{:?}", d.app.status);
    d.key(KeyCode::Esc);
    d.keys("W");
    assert_eq!(d.app.debug.watch, Some((0x404, 4)));
    d.keys("C");
    let locals = d.locals();
    assert!(locals.contains("host call 2 last changed 4"), "the fd_read that wrote them: {locals}");
    assert_eq!(d.app.selected, 2, "{locals}");
    let regions = d.app.memory_regions();
    let (title, at_stop) = regions.first().expect("the Memory pane reads memory at the stop");
    assert!(title.starts_with("at the stop 2+"), "{title}");
    let at = usize::try_from(0x404 - at_stop.offset).unwrap();
    assert_eq!(at_stop.bytes[at..at + 4], [0, 0, 0, 0], "before the read");
    // Forward over the read: the bytes change.
    d.keys("c");
    let stop = &d.app.debug.view.as_ref().unwrap().stop;
    assert_eq!(
        stop.reason,
        wtrace::replayer::debug::StopReason::Watch {
            address: 0x404,
            old: vec![0; 4],
            new: vec![0, 0, 0x10, 0],
            by_host_call: Some(2)
        }
    );
    assert!(d.locals().contains("4 watched bytes at 0x404 changed by"), "{}", d.locals());
}

/// The trap fixture as the bundled demo shows it in a real terminal: the binary in tmux.
#[test]
fn end_to_end_in_tmux() {
    let tmux = std::process::Command::new("tmux").arg("-V").output();
    assert!(tmux.is_ok_and(|o| o.status.success()), "tmux is needed (scripts/test.sh installs it)");
    let dir = tempfile::tempdir().unwrap();
    let trace = example(dir.path());
    let session = format!("wtrace-{}", std::process::id());
    let socket = dir.path().join("tmux.sock");
    let tmux = |args: &[&str]| {
        std::process::Command::new("tmux").arg("-S").arg(&socket).args(args).output().expect("run tmux")
    };
    let command = format!("{} tui {}", env!("CARGO_BIN_EXE_wtrace"), trace.display());
    let started = tmux(&["new-session", "-d", "-s", &session, "-x", "120", "-y", "40", &command]);
    assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
    let capture =
        || String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", &session]).stdout).into_owned();
    // Waits until the screen shows all of `needles` at once (a capture can catch the terminal
    // half-way through drawing a frame).
    let wait_for_all = |needles: &[&str]| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let screen = capture();
            if needles.iter().all(|n| screen.contains(n)) {
                return screen;
            }
            assert!(std::time::Instant::now() < deadline, "{needles:?} never appeared together:\n{screen}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    let wait_for = |needle: &str| wait_for_all(&[needle]);
    wait_for("1 Events 1/5");
    tmux(&["send-keys", "-t", &session, "t"]);
    // The trap, the faulting load in the Code pane, the signal in the Registers pane.
    wait_for_all(&[
        "1 Events 5/5",
        "TRAP out of bounds memory access",
        "->    0x16a      i32.load",
        "SIGSEGV",
    ]);
    // Step back from the trap: the debug replay behind its channel, then the stop.
    tmux(&["send-keys", "-t", &session, "S"]);
    wait_for_all(&["[debug 4+9]", "stop 4+9", "->    0x169      i32.add", "1             i32  1048576"]);
    tmux(&["send-keys", "-t", &session, "s"]);
    wait_for_all(&["[debug 4+10]", "0             i32  1049600 *"]);
    tmux(&["send-keys", "-t", &session, "?"]);
    wait_for("wtrace — keys");
    // Any key closes the help (Escape would merge with the next key into Alt-/ in tmux).
    tmux(&["send-keys", "-t", &session, "x"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while capture().contains("wtrace — keys") {
        assert!(std::time::Instant::now() < deadline, "the help did not close:\n{}", capture());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    tmux(&["send-keys", "-t", &session, "/", "fd_read", "Enter"]);
    wait_for("1 Events 3/5");
    tmux(&["send-keys", "-t", &session, "f", "kind=trap", "Enter"]);
    wait_for("[filter kind=trap: 1]");
    tmux(&["send-keys", "-t", &session, "q"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while tmux(&["has-session", "-t", &session]).status.success() {
        assert!(std::time::Instant::now() < deadline, "q did not quit:\n{}", capture());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn without_a_terminal_it_suggests_dump() {
    let dir = tempfile::tempdir().unwrap();
    let trace = fixture("traps/unreachable.wat");
    let path = record(&trace, dir.path(), "t", None);
    let out = crate::common::wtrace(&["tui", path.to_str().unwrap()]);
    let stderr = crate::common::text(&out.stderr);
    assert_eq!(out.status.code(), Some(200), "{stderr}");
    assert!(stderr.contains("needs a terminal") && stderr.contains("wtrace dump"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
