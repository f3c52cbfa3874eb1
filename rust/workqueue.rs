// SPDX-License-Identifier: GPL-2.0

//! A workqueue that a module owns.
//!
//! C header: [`include/linux/workqueue.h`](srctree/include/linux/workqueue.h)
//!
//! The kernel crate's [`Queue`] is only borrowed (the system workqueues), and
//! work queued there with [`Queue::try_spawn`] may still be pending when the
//! module that queued it is unloaded, its code gone; flushing a system
//! workqueue is not allowed. An [`OwnedQueue`] is destroyed when dropped,
//! which first runs everything queued on it, so a module that drops its
//! queues before it is unloaded leaves no work behind.

use super::bindings;
use core::{ops::Deref, ptr::NonNull};
use kernel::{prelude::*, workqueue::Queue};

/// A workqueue allocated by this object (`alloc_workqueue()`) and destroyed
/// with it (`destroy_workqueue()`, which runs the work still queued).
///
/// # Invariants
///
/// `ptr` is a live workqueue that this object allocated and destroys.
pub struct OwnedQueue {
    ptr: NonNull<bindings::workqueue_struct>,
}

// SAFETY: A workqueue may be used and destroyed from any thread.
unsafe impl Send for OwnedQueue {}
// SAFETY: Queueing work is thread safe; `&OwnedQueue` gives nothing else.
unsafe impl Sync for OwnedQueue {}

impl OwnedQueue {
    /// An unbound workqueue named `name` (as `ps` shows its workers).
    pub fn new(name: &'static CStr) -> Result<Self> {
        // SAFETY: `name` is a NUL-terminated string that lives forever (the workqueue
        // formats it into its own name).
        let ptr = unsafe { bindings::kx_alloc_unbound_workqueue(name.as_char_ptr()) };
        // INVARIANT: A workqueue just allocated, destroyed only by `drop`.
        Ok(Self {
            ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
        })
    }
}

impl Deref for OwnedQueue {
    type Target = Queue;

    fn deref(&self) -> &Queue {
        // SAFETY: By the type invariant the workqueue lives until `drop`, so for as long as
        // `&self`, the lifetime of the returned reference.
        unsafe { Queue::from_raw(self.ptr.as_ptr()) }
    }
}

impl Drop for OwnedQueue {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the workqueue is live and ours; nothing can queue
        // on it any more (that takes `&self`). It runs what is queued, then is freed.
        unsafe { bindings::destroy_workqueue(self.ptr.as_ptr()) };
    }
}
