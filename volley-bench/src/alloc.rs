//! A global allocator that counts allocations, to show what one call costs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
/// Counting is off except while measuring: a shared counter bumped by every
/// allocation on both worker threads would slow every system down.
static COUNTING: AtomicBool = AtomicBool::new(false);
/// Bytes allocated minus bytes freed while `COUNTING` is on: tells a leak
/// (this grows) from allocator fragmentation (RSS grows, this does not).
static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);

/// Largest size told apart by [`live_by_size`]; bigger ones share its last slot.
const SIZES: usize = 4096;

/// Allocations live, by size in bytes, while `COUNTING` is on: tells where
/// the bytes of an idle connection go (a 584-byte driver, a 1,296-byte
/// connection state, ...).
static LIVE_BY_SIZE: [AtomicI64; SIZES + 1] = [const { AtomicI64::new(0) }; SIZES + 1];

fn live_changed(size: usize, by: i64) {
    LIVE_BY_SIZE[size.min(SIZES)].fetch_add(by, Ordering::Relaxed);
}

/// Allocations live by size (the last slot: bigger), while counting.
pub fn live_by_size() -> Vec<i64> {
    LIVE_BY_SIZE.iter().map(|n| n.load(Ordering::Relaxed)).collect()
}

thread_local! {
    /// Allocations made on this thread while counting: tells the two sides of
    /// a call apart when each runs on a thread of its own. (A `const` cell of
    /// a `Copy` type: reading it never allocates.)
    static THREAD_ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// The system allocator, counting.
pub struct Counting;

// The one unsafe block of the project, argued: a global allocator can only be
// written as an `unsafe impl`. It forwards every call to the system allocator
// unchanged and adds a counter, so it upholds `GlobalAlloc`'s contract exactly
// as `System` does.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            LIVE_BYTES.fetch_add(layout.size() as i64, Ordering::Relaxed);
            live_changed(layout.size(), 1);
            count_on_this_thread();
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE_BYTES.fetch_sub(layout.size() as i64, Ordering::Relaxed);
            live_changed(layout.size(), -1);
        }
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            LIVE_BYTES.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
            live_changed(layout.size(), -1);
            live_changed(new_size, 1);
            count_on_this_thread();
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn count_on_this_thread() {
    // `try_with`: a thread being torn down may still allocate.
    let _ = THREAD_ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

/// Allocations counted on the calling thread so far.
pub fn thread_count() -> u64 {
    THREAD_ALLOCATIONS.try_with(Cell::get).unwrap_or(0)
}

/// Starts or stops counting.
pub fn counting(on: bool) {
    COUNTING.store(on, Ordering::SeqCst);
}

/// Net bytes allocated while counting was on.
pub fn live_bytes() -> i64 {
    LIVE_BYTES.load(Ordering::Relaxed)
}

/// Allocations (and reallocations) counted so far, process-wide.
pub fn count() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}
