//! The arenas body trees are parsed into, kept per thread from one body to the next: a new
//! arena per body was an aligned allocation from mimalloc's slow path and a free, twice per
//! mapped request (bench/README.md, stop 22).

use propylon_json::Bump;
use std::cell::RefCell;
use std::ops::Deref;

/// The first chunk of a new arena is at most this: a large body with few nodes (a long
/// string) should not reserve five times its size; one with many grows chunk by chunk.
const FIRST_CHUNK_MOST: usize = 64 * 1024;
/// An arena that grew past this (a large body) is freed, not kept.
const KEEP_MOST: usize = 128 * 1024;
/// Arenas kept per thread: a request's and its answer's are never in use at once, one more
/// covers a body parsed while another is.
const SPARES_KEPT: usize = 2;

thread_local! {
    static SPARES: RefCell<Vec<Bump>> = const { RefCell::new(Vec::new()) };
}

/// An arena for the trees of one body and the context around it; back to its thread's
/// spares (emptied) when dropped.
pub struct Arena(Bump);

impl Deref for Arena {
    type Target = Bump;

    fn deref(&self) -> &Bump {
        &self.0
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        let mut bump = std::mem::take(&mut self.0);
        if bump.allocated_bytes() > KEEP_MOST {
            return;
        }
        bump.reset();
        // Never fails but while the thread ends (the arena is then freed).
        let _ = SPARES.try_with(|spares| {
            if let Ok(mut spares) = spares.try_borrow_mut() {
                if spares.len() < SPARES_KEPT {
                    spares.push(bump);
                }
            }
        });
    }
}

/// An arena for a body of `len` bytes: a spare of this thread's, or a new one whose first
/// chunk holds a typical body's tree (~5 bytes per byte of text) in one allocation.
pub fn arena_for(len: usize) -> Arena {
    let spare = SPARES
        .try_with(|spares| spares.try_borrow_mut().ok().and_then(|mut s| s.pop()))
        .ok()
        .flatten();
    Arena(spare.unwrap_or_else(|| {
        Bump::with_capacity(
            len.saturating_mul(5)
                .saturating_add(512)
                .min(FIRST_CHUNK_MOST),
        )
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn spares() -> usize {
        SPARES.with(|s| s.borrow().len())
    }

    #[test]
    fn an_arena_is_kept_emptied_for_the_next_body_of_its_thread() {
        let first = arena_for(1000);
        let chunk = first.alloc_str("x").as_ptr();
        drop(first);
        assert_eq!(spares(), 1);
        let second = arena_for(1000);
        assert_eq!(spares(), 0);
        // The same memory, from its start again.
        assert_eq!(second.alloc_str("y").as_ptr(), chunk);
        // Two in use at once: both kept, at most two.
        let third = arena_for(10);
        let fourth = arena_for(10);
        drop((second, third, fourth));
        assert_eq!(spares(), SPARES_KEPT);
    }

    #[test]
    fn an_arena_grown_by_a_large_body_is_not_kept() {
        let arena = arena_for(10);
        arena.alloc_slice_fill_copy(KEEP_MOST, 0u8);
        drop(arena);
        assert_eq!(spares(), 0);
    }
}
