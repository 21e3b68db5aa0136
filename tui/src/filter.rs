//! Event filters, as typed after `f`: space- or comma-separated terms that must all hold —
//! `kind=trap`, `name=fd_write` (a trailing `*` matches a prefix), `module=env`, `fd=1` (any
//! descriptor argument), `failed` (a non-zero errno or a host error).

use wtrace_runtime::wasi::{self, ParamKind};
use wtrace_traces::{Event, EventKind, ImportName, Outcome, Value};

/// One term.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    Kind(EventKind),
    Name { name: String, prefix: bool },
    Module(String),
    Fd(u32),
    Failed,
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    terms: Vec<Term>,
    /// The text it was parsed from.
    pub text: String,
}

impl Filter {
    /// Parses `text`; the error says which term is wrong and what is allowed.
    pub fn parse(text: &str) -> Result<Filter, String> {
        let mut terms = Vec::new();
        for word in text.split([' ', ',']).map(str::trim).filter(|w| !w.is_empty()) {
            let term = match word.split_once('=') {
                None if word == "failed" => Term::Failed,
                Some(("kind", kind)) => Term::Kind(
                    EventKind::ALL
                        .iter()
                        .copied()
                        .find(|k| k.name() == kind || short_kind(*k) == kind)
                        .ok_or_else(|| format!("`{word}`: kinds are call, trap, exit, returned"))?,
                ),
                Some(("name", name)) if !name.is_empty() => match name.strip_suffix('*') {
                    Some(prefix) => Term::Name { name: prefix.to_owned(), prefix: true },
                    None => Term::Name { name: name.to_owned(), prefix: false },
                },
                Some(("module", module)) if !module.is_empty() => Term::Module(module.to_owned()),
                Some(("fd", fd)) => {
                    Term::Fd(fd.parse().map_err(|_| format!("`{word}`: fd takes a descriptor number"))?)
                }
                _ => {
                    return Err(format!(
                        "`{word}` is not a filter term; use kind=trap, name=fd_write, name=path_*, module=env, fd=1, failed"
                    ));
                }
            };
            terms.push(term);
        }
        Ok(Filter { terms, text: text.trim().to_owned() })
    }

    /// Whether the filter has no terms (it matches everything).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether `event` passes, given the trace's imports.
    pub fn matches(&self, imports: &[ImportName], event: &Event) -> bool {
        self.terms.iter().all(|term| match term {
            Term::Kind(kind) => event.kind() == *kind,
            Term::Name { name, prefix } => import_of(imports, event)
                .is_some_and(|i| if *prefix { i.name.starts_with(name.as_str()) } else { i.name == *name }),
            Term::Module(module) => import_of(imports, event).is_some_and(|i| i.module == *module),
            Term::Fd(fd) => match (event, import_of(imports, event).and_then(wasi::function_of)) {
                (Event::HostCall(call), Some(row)) => row
                    .params
                    .iter()
                    .zip(&call.params)
                    .any(|(param, value)| param.kind == ParamKind::Fd && *value == Value::I32(*fd as i32)),
                _ => false,
            },
            Term::Failed => match event {
                Event::HostCall(call) => match &call.outcome {
                    Outcome::Error(_) => true,
                    Outcome::Returned(values) => {
                        import_of(imports, event).and_then(wasi::function_of).is_some()
                            && values.first().is_some_and(|v| *v != Value::I32(0))
                    }
                    Outcome::Exited(_) => false,
                },
                Event::Trap(_) | Event::Interrupted(_) => true,
                _ => false,
            },
        })
    }
}

/// The short name the event list shows for a kind.
pub(crate) fn short_kind(kind: EventKind) -> &'static str {
    match kind {
        EventKind::HostCall => "call",
        EventKind::Trap => "trap",
        EventKind::Exit => "exit",
        EventKind::Returned => "returned",
        EventKind::Interrupted => "intr",
    }
}

fn import_of<'a>(imports: &'a [ImportName], event: &Event) -> Option<&'a ImportName> {
    match event {
        Event::HostCall(call) => imports.get(call.import.0 as usize),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use wtrace_traces::{HostCall, ImportId};

    use super::*;

    fn imports() -> Vec<ImportName> {
        vec![
            ImportName { module: wasi::MODULE.into(), name: "fd_write".into() },
            ImportName { module: wasi::MODULE.into(), name: "path_open".into() },
            ImportName { module: "env".into(), name: "log".into() },
        ]
    }

    fn call(import: u32, fd: i32, errno: i32) -> Event {
        Event::HostCall(HostCall {
            import: ImportId(import),
            params: vec![Value::I32(fd), Value::I32(0), Value::I32(0), Value::I32(0)],
            outcome: Outcome::Returned(vec![Value::I32(errno)]),
            writes: vec![],
            reads: vec![],
            printed: None,
            input_hash: None,
        })
    }

    #[test]
    fn terms_combine() {
        let imports = imports();
        let f = Filter::parse("name=fd_write fd=1").unwrap();
        assert!(f.matches(&imports, &call(0, 1, 0)));
        assert!(!f.matches(&imports, &call(0, 2, 0)));
        assert!(!f.matches(&imports, &call(1, 1, 0)));
        let f = Filter::parse("name=fd_*,failed").unwrap();
        assert!(f.matches(&imports, &call(0, 1, 8)));
        assert!(!f.matches(&imports, &call(0, 1, 0)));
        assert!(!Filter::parse("kind=trap").unwrap().matches(&imports, &Event::Exit { code: 0 }));
        assert!(Filter::parse("kind=exit").unwrap().matches(&imports, &Event::Exit { code: 0 }));
        assert!(Filter::parse("module=env").unwrap().matches(&imports, &call(2, 0, 0)));
        assert!(Filter::parse("").unwrap().is_empty());
        assert!(Filter::parse("kind=bogus").unwrap_err().contains("kinds are"));
        assert!(Filter::parse("colour=red").unwrap_err().contains("not a filter term"));
    }
}
