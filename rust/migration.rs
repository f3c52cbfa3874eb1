// SPDX-License-Identifier: GPL-2.0

//! VFIO live migration (migration v2) of a device whose whole state the
//! driver can save and load: the state machine, the data file and DMA
//! logging.
//!
//! C header: [`include/linux/vfio.h`](srctree/include/linux/vfio.h),
//! uapi: [`include/uapi/linux/vfio.h`](srctree/include/uapi/linux/vfio.h)
//!
//! A VFIO device data type implements [`Migrate`]: it saves its state as
//! [`stream`] sections, checks a received stream fully and then applies
//! it (the apply step cannot fail, so a stream is never half-applied), and
//! says how much of its state changed since the last save. It keeps a
//! [`Migration`] (the state and the open data files) and returns
//! [`VfioOps::new`] from [`vfio::DeviceOps::MIGRATION`]; the VFIO layer then
//! installs the migration and logging callbacks before registering the
//! device. This module owns everything else:
//!
//! - the single arcs of the uapi's state machine (the VFIO core's
//!   `vfio_mig_get_next_state()` splits any request into them), with
//!   `VFIO_MIGRATION_STOP_COPY | P2P | PRE_COPY`: the P2P states are the
//!   running ones (the devices do no DMA), the saving group shares one data
//!   file;
//! - the data file ([`data_file`]): pre-copy sends the header and the whole
//!   state first (saving it starts the device's tracking of the memory pages
//!   user space changes, see [`super::write_tracking`]), then, at each read
//!   past what is queued, the pages changed since they were sent, up to one
//!   more state's worth in all; a read with nothing changed is `ENOMSG`.
//!   `VFIO_MIG_GET_PRECOPY_INFO` reports what is left of the initial data
//!   and what changed since. Stop-copy after pre-copy sends the registers
//!   again and the pages still changed (a later section replaces an earlier
//!   one), stop-copy from `STOP` the whole state; then the end marker and
//!   end of file. `VFIO_DEVICE_FEATURE_MIG_DATA_SIZE` is exactly what a
//!   stop-copy now would send;
//! - resuming: a write-only file collecting the stream, checked and applied
//!   on `RESUMING -> STOP`; a refused stream leaves the device as it was, in
//!   `RESUMING`, and `VFIO_DEVICE_RESET` brings it back to `RUNNING`;
//! - reset and close: every session ends, the state is `RUNNING`. A reset
//!   never waits for the state lock: like mtty and mlx5 it is *deferred* to
//!   whoever holds it, who applies it before unlocking (the state lock is
//!   held across saving and loading, which take the device's own locks and
//!   may sleep in allocations; the reset must not be ordered against them);
//! - DMA logging: the devices do no DMA into guest memory, so logging
//!   honestly reports nothing dirty, which lets QEMU's
//!   `enable-migration=auto` accept them.

pub mod data_file;
pub mod stream;

use super::{bindings, vfio};
use core::{marker::PhantomData, mem::ManuallyDrop};
use data_file::{DataFile, Open};
use kernel::{
    fs::File,
    new_mutex,
    prelude::*,
    sync::{aref::ARef, lock::mutex::MutexBackend, lock::Guard, Mutex},
};
use stream::{Origin, Stream, Writer};

/// A migration state (`enum vfio_device_mig_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// `VFIO_DEVICE_STATE_ERROR`.
    Error,
    /// `VFIO_DEVICE_STATE_STOP`.
    Stop,
    /// `VFIO_DEVICE_STATE_RUNNING`.
    Running,
    /// `VFIO_DEVICE_STATE_STOP_COPY`.
    StopCopy,
    /// `VFIO_DEVICE_STATE_RESUMING`.
    Resuming,
    /// `VFIO_DEVICE_STATE_RUNNING_P2P`.
    RunningP2p,
    /// `VFIO_DEVICE_STATE_PRE_COPY`.
    PreCopy,
    /// `VFIO_DEVICE_STATE_PRE_COPY_P2P`.
    PreCopyP2p,
}

impl State {
    fn from_raw(raw: bindings::vfio_device_mig_state) -> Result<Self> {
        Ok(match raw {
            bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_ERROR => Self::Error,
            bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_STOP => Self::Stop,
            bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_RUNNING => Self::Running,
            bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_STOP_COPY => Self::StopCopy,
            bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_RESUMING => Self::Resuming,
            bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_RUNNING_P2P => Self::RunningP2p,
            bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_PRE_COPY => Self::PreCopy,
            bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_PRE_COPY_P2P => Self::PreCopyP2p,
            _ => return Err(EINVAL),
        })
    }

    fn as_raw(self) -> bindings::vfio_device_mig_state {
        match self {
            Self::Error => bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_ERROR,
            Self::Stop => bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_STOP,
            Self::Running => bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_RUNNING,
            Self::StopCopy => bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_STOP_COPY,
            Self::Resuming => bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_RESUMING,
            Self::RunningP2p => bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_RUNNING_P2P,
            Self::PreCopy => bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_PRE_COPY,
            Self::PreCopyP2p => bindings::vfio_device_mig_state_VFIO_DEVICE_STATE_PRE_COPY_P2P,
        }
    }
}

/// What a data file is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Saving, in a pre-copy state: more data may come.
    PreCopy,
    /// Saving, in stop-copy: everything is there.
    StopCopy,
    /// Resuming: collecting the stream.
    Resuming,
    /// The session is over.
    Disabled,
}

/// A VFIO device data type that migrates. Every hook receives the device.
pub trait Migrate: vfio::DeviceOps {
    /// What [`Migrate::load_check`] found and [`Migrate::load_apply`] applies.
    type Staged: Send;

    /// The device's migration bookkeeping.
    fn migration(dev: &vfio::Device<Self>) -> &Migration<Self>;

    /// What a stream of this device says it is from; a destination requires
    /// the same.
    fn origin(dev: &vfio::Device<Self>) -> Origin;

    /// The size a full save has now, an estimate
    /// (`VFIO_DEVICE_FEATURE_MIG_DATA_SIZE` outside pre-copy).
    fn save_len(dev: &vfio::Device<Self>) -> usize;

    /// The most a full save of this device can be.
    fn max_save_len(dev: &vfio::Device<Self>) -> usize;

    /// Appends the whole device state as sections to `w`. Saving a memory
    /// page clears its dirty mark and starts tracking it again.
    fn save(dev: &vfio::Device<Self>, w: &mut Writer<'_>) -> Result;

    /// The size of [`Migrate::save_registers`]' sections.
    fn registers_len(dev: &vfio::Device<Self>) -> usize;

    /// Appends the device state other than its memory pages (configuration
    /// space, registers) as sections to `w`.
    fn save_registers(dev: &vfio::Device<Self>, w: &mut Writer<'_>) -> Result;

    /// Appends the memory pages changed since they were last saved, as long
    /// as they fit in `budget` more bytes, clearing their marks. Sections
    /// appended before an error stay (they are whole), and the pages not
    /// saved keep their marks.
    fn save_dirty(dev: &vfio::Device<Self>, w: &mut Writer<'_>, budget: usize) -> Result;

    /// Checks every section of `stream` (the header and framing are
    /// checked already) and prepares whatever applying it needs; each
    /// refusal gets a `dev_err` saying why. Nothing of the device's state
    /// changes.
    fn load_check(dev: &vfio::Device<Self>, stream: &Stream<'_>) -> Result<Self::Staged>;

    /// Applies the `stream` that [`Migrate::load_check`] accepted, as `staged`.
    fn load_apply(dev: &vfio::Device<Self>, stream: &Stream<'_>, staged: Self::Staged);

    /// Bytes [`Migrate::save_dirty`] would append now without a budget
    /// (pre-copy's `dirty_bytes`).
    fn dirty_bytes(dev: &vfio::Device<Self>) -> usize;
}

/// What the state lock protects.
struct Inner<T: vfio::DeviceOps> {
    state: State,
    saving: Option<Open<T>>,
    resuming: Option<Open<T>>,
}

impl<T: vfio::DeviceOps> Inner<T> {
    /// Ends every session.
    fn disable_files(&mut self) {
        for open in [self.saving.take(), self.resuming.take()]
            .into_iter()
            .flatten()
        {
            open.data.disable();
            // Dropping `open` puts our reference on the file; its release is deferred to
            // task work, after our locks are gone.
        }
    }

    /// A device reset: back to `RUNNING` without a session.
    fn reset(&mut self) {
        self.disable_files();
        self.state = State::Running;
    }
}

/// The migration state of one device.
#[pin_data]
pub struct Migration<T: vfio::DeviceOps> {
    /// The state lock, held across every arc.
    #[pin]
    state: Mutex<Inner<T>>,
    /// A reset is pending: applied by whoever unlocks `state` next.
    #[pin]
    reset_pending: Mutex<bool>,
    /// DMA logging was started.
    #[pin]
    logging: Mutex<bool>,
}

/// The state lock held; unlocking applies a deferred reset first.
///
/// # Invariants
///
/// `guard` is live until `drop`, which drops it.
struct StateGuard<'a, T: vfio::DeviceOps> {
    mig: &'a Migration<T>,
    guard: ManuallyDrop<Guard<'a, Inner<T>, MutexBackend>>,
}

impl<T: vfio::DeviceOps> core::ops::Deref for StateGuard<'_, T> {
    type Target = Inner<T>;

    fn deref(&self) -> &Inner<T> {
        &self.guard
    }
}

impl<T: vfio::DeviceOps> core::ops::DerefMut for StateGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut Inner<T> {
        &mut self.guard
    }
}

impl<T: vfio::DeviceOps> Drop for StateGuard<'_, T> {
    fn drop(&mut self) {
        loop {
            let mut pending = self.mig.reset_pending.lock();
            if *pending {
                *pending = false;
                drop(pending);
                self.guard.reset();
                continue;
            }
            // Unlocked under `reset_pending`: a reset that failed to take the state lock
            // set the flag before the check above, so it is never lost.
            // SAFETY: By the type invariant the guard is live; it is not used again.
            unsafe { ManuallyDrop::drop(&mut self.guard) };
            return;
        }
    }
}

impl<T: vfio::DeviceOps> Migration<T> {
    /// A device in `RUNNING`, without sessions.
    pub fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            state <- new_mutex!(Inner {
                state: State::Running,
                saving: None,
                resuming: None,
            }),
            reset_pending <- new_mutex!(false),
            logging <- new_mutex!(false),
        })
    }

    fn lock(&self) -> StateGuard<'_, T> {
        // INVARIANT: A live guard, dropped by `StateGuard::drop`.
        StateGuard {
            mig: self,
            guard: ManuallyDrop::new(self.state.lock()),
        }
    }

    /// `VFIO_DEVICE_RESET`: the state returns to `RUNNING` and every session
    /// ends, now or, if an arc is running, when it is done.
    pub fn reset(&self) {
        let mut pending = self.reset_pending.lock();
        *pending = true;
        let Some(guard) = self.state.try_lock() else {
            // The holder applies it before unlocking.
            return;
        };
        drop(pending);
        // INVARIANT: A live guard, dropped by `StateGuard::drop`.
        drop(StateGuard {
            mig: self,
            guard: ManuallyDrop::new(guard),
        });
    }

    /// The last user closed the device: as a reset, and logging stops.
    pub fn close(&self) {
        self.lock().reset();
        *self.logging.lock() = false;
    }
}

impl<T: Migrate> Migration<T> {
    /// Saves the whole state into a fresh buffer: with the header first if
    /// `header`, with the end marker last if `end`.
    fn save(dev: &vfio::Device<T>, header: bool, end: bool) -> Result<KVVec<u8>> {
        let mut buf = KVVec::with_capacity(T::save_len(dev), GFP_KERNEL)?;
        let mut w = Writer::new(&mut buf);
        if header {
            w.header(&T::origin(dev))?;
        }
        T::save(dev, &mut w)?;
        if end {
            w.end()?;
        }
        Ok(buf)
    }

    /// Runs one arc of the state machine from `inner.state` to `next`; a
    /// new data file for the arcs that start a session.
    fn step(
        dev: &vfio::Device<T>,
        inner: &mut Inner<T>,
        next: State,
    ) -> Result<Option<ARef<File>>> {
        use State::*;
        match (inner.state, next) {
            // Nothing to do: the device does no DMA, so P2P quiescence is free, and a
            // stopped emulated device changes nothing by itself.
            (Running, RunningP2p)
            | (RunningP2p, Running)
            | (RunningP2p, Stop)
            | (Stop, RunningP2p)
            | (PreCopy, PreCopyP2p)
            | (PreCopyP2p, PreCopy) => Ok(None),
            // The end of a session.
            (PreCopy, Running) | (PreCopyP2p, RunningP2p) | (StopCopy, Stop) => {
                inner.disable_files();
                Ok(None)
            }
            // A new saving session.
            (Running, PreCopy) | (RunningP2p, PreCopyP2p) | (Stop, StopCopy) => {
                let phase = if next == StopCopy {
                    Phase::StopCopy
                } else {
                    Phase::PreCopy
                };
                let buf = Self::save(dev, true, next == StopCopy)?;
                let open = DataFile::open(dev, phase, buf, 0)?;
                let file = open.file.clone();
                inner.saving = Some(open);
                Ok(Some(file))
            }
            // Pre-copy's session goes on: the registers again, what is still dirty, the
            // end.
            (PreCopyP2p, StopCopy) => {
                let saving = inner.saving.as_ref().ok_or(EINVAL)?;
                saving.data.finish(|w| {
                    T::save_registers(dev, w)?;
                    T::save_dirty(dev, w, usize::MAX)?;
                    w.end()
                })?;
                Ok(None)
            }
            (Stop, Resuming) => {
                // A stream holds at most the initial state, one more state's worth of
                // pre-copy re-sends (`DataFile`), a stop-copy state and the header.
                let limit = T::max_save_len(dev)
                    .checked_mul(3)
                    .and_then(|l| l.checked_add(kernel::page::PAGE_SIZE))
                    .ok_or(EINVAL)?;
                let open = DataFile::open(dev, Phase::Resuming, KVVec::new(), limit)?;
                let file = open.file.clone();
                inner.resuming = Some(open);
                Ok(Some(file))
            }
            (Resuming, Stop) => {
                let resuming = inner.resuming.as_ref().ok_or(EINVAL)?;
                resuming.data.with_received(|bytes| {
                    let stream = Stream::parse(bytes, &T::origin(dev), dev.parent())?;
                    let staged = T::load_check(dev, &stream)?;
                    T::load_apply(dev, &stream, staged);
                    Ok(())
                })?;
                inner.disable_files();
                Ok(None)
            }
            // `vfio_mig_get_next_state()` gives no other arc.
            _ => Err(EINVAL),
        }
    }

    /// What a stop-copy would send now: in pre-copy, what is queued and
    /// unread, the registers, the dirty pages and the end marker; otherwise
    /// the whole state.
    fn stop_copy_len(dev: &vfio::Device<T>) -> usize {
        let inner = T::migration(dev).lock();
        match (inner.state, inner.saving.as_ref()) {
            (State::PreCopy | State::PreCopyP2p, Some(saving)) => saving
                .data
                .unread()
                .saturating_add(T::registers_len(dev))
                .saturating_add(T::dirty_bytes(dev))
                .saturating_add(stream::SECTION_HEADER_LEN),
            _ => T::save_len(dev),
        }
    }

    /// `migration_set_state`: moves to `new` arc by arc; the data file of
    /// the last arc if it starts a session.
    fn set_state(dev: &vfio::Device<T>, new: State) -> Result<Option<ARef<File>>> {
        let mig = T::migration(dev);
        let mut inner = mig.lock();
        while inner.state != new {
            let next = dev.mig_next_state(inner.state.as_raw(), new.as_raw())?;
            let next = State::from_raw(next)?;
            let file = Self::step(dev, &mut inner, next)?;
            inner.state = next;
            if let Some(file) = file {
                // Only a final state has a file: the core never routes through one.
                return if next == new {
                    Ok(Some(file))
                } else {
                    Err(EINVAL)
                };
            }
        }
        Ok(None)
    }
}

/// The C migration and logging tables of a [`Migrate`] type `T`, for
/// [`vfio::DeviceOps::MIGRATION`].
///
/// # Invariants
///
/// The tables' callbacks treat their `vfio_device` as a `vfio::Device<T>`.
pub struct VfioOps<T> {
    pub(crate) flags: u32,
    pub(crate) mig_ops: &'static bindings::vfio_migration_ops,
    pub(crate) log_ops: &'static bindings::vfio_log_ops,
    _t: PhantomData<T>,
}

impl<T> Clone for VfioOps<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for VfioOps<T> {}

impl<T: Migrate> VfioOps<T> {
    /// The tables for devices of type `T`: `STOP_COPY | P2P | PRE_COPY`.
    pub const fn new() -> Self {
        // INVARIANT: `Tables::<T>` casts to `vfio::Device<T>`.
        Self {
            flags: bindings::VFIO_MIGRATION_STOP_COPY
                | bindings::VFIO_MIGRATION_P2P
                | bindings::VFIO_MIGRATION_PRE_COPY,
            mig_ops: Tables::<T>::MIG_OPS_REF,
            log_ops: Tables::<T>::LOG_OPS_REF,
            _t: PhantomData,
        }
    }
}

impl<T: Migrate> Default for VfioOps<T> {
    fn default() -> Self {
        Self::new()
    }
}

struct Tables<T>(PhantomData<T>);

impl<T: Migrate> Tables<T> {
    const MIG_OPS: bindings::vfio_migration_ops = bindings::vfio_migration_ops {
        migration_set_state: Some(Self::set_state),
        migration_get_state: Some(Self::get_state),
        migration_get_data_size: Some(Self::get_data_size),
    };
    const LOG_OPS: bindings::vfio_log_ops = bindings::vfio_log_ops {
        log_start: Some(Self::log_start),
        log_stop: Some(Self::log_stop),
        log_read_and_clear: Some(Self::log_read_and_clear),
    };
    const MIG_OPS_REF: &'static bindings::vfio_migration_ops = &Self::MIG_OPS;
    const LOG_OPS_REF: &'static bindings::vfio_log_ops = &Self::LOG_OPS;

    /// # Safety
    ///
    /// VFIO core callback: `vdev` is a live device of ours (with these tables).
    unsafe extern "C" fn set_state(
        vdev: *mut bindings::vfio_device,
        new: bindings::vfio_device_mig_state,
    ) -> *mut bindings::file {
        // SAFETY: Per the callback contract, and by the invariant of `VfioOps` only
        // `vfio::Device<T>`s have these tables.
        let dev = unsafe { vfio::Device::<T>::from_raw(vdev) };
        let res = State::from_raw(new).and_then(|new| Migration::<T>::set_state(dev, new));
        match res {
            // The core takes over this reference (installs it as the data fd or puts it).
            Ok(Some(file)) => ARef::into_raw(file).as_ptr().cast(),
            Ok(None) => core::ptr::null_mut(),
            Err(e) => e.to_ptr(),
        }
    }

    /// # Safety
    ///
    /// VFIO core callback: `vdev` is a live device of ours, `state` valid for writes.
    unsafe extern "C" fn get_state(
        vdev: *mut bindings::vfio_device,
        state: *mut bindings::vfio_device_mig_state,
    ) -> c_int {
        // SAFETY: As in `set_state`.
        let dev = unsafe { vfio::Device::<T>::from_raw(vdev) };
        let now = T::migration(dev).lock().state;
        // SAFETY: `state` is valid for writes per the callback contract.
        unsafe { *state = now.as_raw() };
        0
    }

    /// # Safety
    ///
    /// VFIO core callback: `vdev` is a live device of ours, `len` valid for writes.
    unsafe extern "C" fn get_data_size(
        vdev: *mut bindings::vfio_device,
        len: *mut c_ulong,
    ) -> c_int {
        // SAFETY: As in `set_state`.
        let dev = unsafe { vfio::Device::<T>::from_raw(vdev) };
        // CAST: `usize` and `c_ulong` are the same size on every kernel target.
        let n = Migration::<T>::stop_copy_len(dev) as c_ulong;
        // SAFETY: `len` is valid for writes per the callback contract.
        unsafe { *len = n };
        0
    }

    /// # Safety
    ///
    /// VFIO core callback: `vdev` is a live device of ours.
    unsafe extern "C" fn log_start(
        vdev: *mut bindings::vfio_device,
        _ranges: *mut bindings::rb_root_cached,
        _nnodes: u32,
        _page_size: *mut u64,
    ) -> c_int {
        // SAFETY: As in `set_state`.
        let dev = unsafe { vfio::Device::<T>::from_raw(vdev) };
        let mut logging = T::migration(dev).logging.lock();
        if *logging {
            return EBUSY.to_errno();
        }
        // Nothing to track: the device never writes guest memory.
        *logging = true;
        0
    }

    /// # Safety
    ///
    /// VFIO core callback: `vdev` is a live device of ours.
    unsafe extern "C" fn log_stop(vdev: *mut bindings::vfio_device) -> c_int {
        // SAFETY: As in `set_state`.
        let dev = unsafe { vfio::Device::<T>::from_raw(vdev) };
        *T::migration(dev).logging.lock() = false;
        0
    }

    /// # Safety
    ///
    /// VFIO core callback: `vdev` is a live device of ours.
    unsafe extern "C" fn log_read_and_clear(
        vdev: *mut bindings::vfio_device,
        _iova: c_ulong,
        _length: c_ulong,
        _dirty: *mut bindings::iova_bitmap,
    ) -> c_int {
        // SAFETY: As in `set_state`.
        let dev = unsafe { vfio::Device::<T>::from_raw(vdev) };
        if !*T::migration(dev).logging.lock() {
            return EINVAL.to_errno();
        }
        // Nothing is dirty: the device never writes guest memory.
        0
    }
}
