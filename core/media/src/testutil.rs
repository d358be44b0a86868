//! Deterministic signals and randomness for tests.

use crate::SAMPLE_RATE;

/// Sine of `freq` Hz with amplitude `amp` (fraction of full scale).
pub fn sine(freq: f32, amp: f32, len: usize) -> Vec<i16> {
    (0..len)
        .map(|i| {
            let t = i as f32 / SAMPLE_RATE as f32;
            (amp * 32767.0 * (2.0 * std::f32::consts::PI * freq * t).sin()).round() as i16
        })
        .collect()
}

pub use crate::signal::{speech_like, Rng};

/// Counts heap allocations made by the current thread, so tests can prove a hot path is
/// allocation-free (other test threads don't disturb the count).
pub mod alloc_count {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static COUNT: Cell<u64> = const { Cell::new(0) };
    }

    struct Counting;

    // SAFETY: delegates to the system allocator; only adds a thread-local counter bump.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
            unsafe { System.alloc(layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
            unsafe { System.realloc(ptr, layout, new_size) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    /// Allocations made by this thread so far.
    pub fn allocations() -> u64 {
        COUNT.with(Cell::get)
    }
}
