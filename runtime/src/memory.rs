//! A guest's linear memory as host calls see it: the `memory` export, looked up once per store,
//! split from the store data so a shim can read and write both, and the comparison of two
//! copies of memory that generic capture and the write-set audit rely on.

use wasmtime::{Caller, Extern};
use wiggle::{GuestMemory, GuestPtr};

/// Store data that keeps the guest's `memory` export once a host call has looked it up. A store
/// runs one guest instance, whose exports never change, and the lookup (a string hash) is a
/// large part of a host call's cost.
pub trait KeepsMemoryExport {
    /// The kept export, `None` until looked up.
    fn memory_export(&mut self) -> &mut Option<Extern>;
}

/// The guest's `memory` export: the kept one, else — when `look_up` — looked up and kept.
pub fn export<T: KeepsMemoryExport>(caller: &mut Caller<'_, T>, look_up: bool) -> Option<Extern> {
    if let Some(export) = caller.data_mut().memory_export() {
        return Some(export.clone());
    }
    if !look_up {
        return None;
    }
    let export = caller.get_export("memory")?;
    *caller.data_mut().memory_export() = Some(export.clone());
    Some(export)
}

/// The memory of `export` (empty when it is not a memory) and the store data, borrowed together.
pub fn split<'a, T: 'static>(
    caller: &'a mut Caller<'_, T>,
    export: Option<&'a Extern>,
) -> (GuestMemory<'a>, &'a mut T) {
    match export {
        Some(Extern::Memory(m)) => {
            let (bytes, state) = m.data_and_store_mut(caller);
            (GuestMemory::Unshared(bytes), state)
        }
        Some(Extern::SharedMemory(m)) => (GuestMemory::Shared(m.data()), caller.data_mut()),
        _ => (GuestMemory::Unshared(&mut []), caller.data_mut()),
    }
}

/// A copy of all of `memory`.
pub fn copy_all(memory: &GuestMemory<'_>) -> Vec<u8> {
    let len = match memory {
        GuestMemory::Unshared(bytes) => bytes.len(),
        GuestMemory::Shared(cells) => cells.len(),
    };
    u32::try_from(len)
        .ok()
        .and_then(|len| memory.as_cow(GuestPtr::<[u8]>::new((0, len))).ok())
        .map(std::borrow::Cow::into_owned)
        .unwrap_or_default()
}

/// `(offset, len)` of the runs of bytes that differ between `before` and `after` (bytes past
/// the end of `before` count as changed), merging runs separated by at most `merge_gap`
/// unchanged bytes.
pub fn changed_runs(before: &[u8], after: &[u8], merge_gap: usize) -> Vec<(usize, usize)> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (at, byte) in after.iter().enumerate() {
        if before.get(at) == Some(byte) {
            continue;
        }
        match runs.last_mut() {
            Some((start, len)) if at - (*start + *len) <= merge_gap => *len = at + 1 - *start,
            _ => runs.push((at, 1)),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_cover_changes_and_merge_close_ones() {
        let before = vec![0u8; 100];
        let mut after = before.clone();
        after[3] = 1;
        after[10] = 1;
        after[60] = 1;
        after[61] = 2;
        assert_eq!(changed_runs(&before, &after, 16), vec![(3, 8), (60, 2)]);
        assert_eq!(changed_runs(&before, &after, 0), vec![(3, 1), (10, 1), (60, 2)]);
        assert_eq!(changed_runs(&before, &before, 16), vec![]);
    }
}
