// SPDX-License-Identifier: GPL-2.0

//! VFIO live migration (migration v2) of a device whose whole state the
//! driver can save and load: the state machine, the data file and DMA
//! logging.
//!
//! C header: [`include/linux/vfio.h`](srctree/include/linux/vfio.h),
//! uapi: [`include/uapi/linux/vfio.h`](srctree/include/uapi/linux/vfio.h)
//!
//! A VFIO device data type implements [`Migrate`]: it saves its registers
//! as [`stream`] sections and exposes its memory as a [`TrackedMemory`],
//! which the stream carries in runs of pages; on the destination it checks
//! each section as it arrives into a staging copy, and takes the staging
//! copy at the end (a step that cannot fail, so a stream is never half
//! applied). It keeps a [`Migration`] (the state and the open data files)
//! and returns [`VfioOps::new`] from [`vfio::DeviceOps::MIGRATION`]; the
//! VFIO layer then installs the migration and logging callbacks before
//! registering the device. This module owns everything else:
//!
//! - the single arcs of the uapi's state machine (the VFIO core's
//!   `vfio_mig_get_next_state()` splits any request into them), with
//!   `VFIO_MIGRATION_STOP_COPY | P2P | PRE_COPY`: the P2P states are the
//!   running ones (the devices do no DMA), the saving group shares one data
//!   file;
//! - the data file ([`data_file`]): the stream is made as it is read
//!   ([`sender`]): pre-copy sends the header, the registers and every page
//!   (saving a page starts tracking the changes user space makes to it, see
//!   [`super::write_tracking`]), then, at each read, the pages changed since
//!   they were sent; a read with nothing to send is `ENOMSG`, exactly when
//!   `VFIO_MIG_GET_PRECOPY_INFO` gives zero initial and dirty bytes.
//!   Stop-copy after pre-copy sends the registers again, what is left to
//!   send and the changed pages (a later section replaces an earlier one);
//!   stop-copy from `STOP` the whole state; then the end marker and end of
//!   file. `VFIO_DEVICE_FEATURE_MIG_DATA_SIZE` is exactly what a stop-copy
//!   now would send;
//! - resuming: a write-only file taking the stream apart as it is written
//!   ([`receiver`]), with no limit on its length; `RESUMING -> STOP`
//!   commits the staging copy. A refused stream leaves the device as it
//!   was, in `RESUMING`, and `VFIO_DEVICE_RESET` brings it back to
//!   `RUNNING`. Refusals are logged at a bounded rate ([`refusal_log`]);
//! - reset and close: every session ends, the state is `RUNNING`. The
//!   device's own reset runs under the state lock too, so it is ordered
//!   with every arc (a reset racing `RESUMING -> STOP` comes wholly before
//!   or wholly after it);
//! - DMA logging: the devices do no DMA into guest memory, so logging
//!   honestly reports nothing dirty, which lets QEMU's
//!   `enable-migration=auto` accept them.

pub mod data_file;
pub mod receiver;
pub mod refusal_log;
pub mod sender;
pub mod stream;

use super::{bindings, vfio, write_tracking::TrackedMemory};
use core::marker::PhantomData;
use data_file::{DataFile, Open};
use kernel::{
    device::Device as KDevice,
    fs::File,
    new_mutex,
    prelude::*,
    sync::{aref::ARef, Mutex},
    uaccess::UserSliceReader,
};
use refusal_log::{RefusalLog, RefusalRate};
use stream::{Origin, Section, Writer};

// What `Migrate` types return from `vfio::DeviceOps::MIGRATION` (`VfioOps::new` is below): it
// lives in `vfio_ops`, which `vfio` uses too, so that `vfio` does not depend on this module.
pub use super::vfio_ops::VfioOps;

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
    /// The staging copy a destination fills as the stream arrives.
    type Staged: Send + Unpin;

    /// The device's migration bookkeeping.
    fn migration(dev: &vfio::Device<Self>) -> &Migration<Self>;

    /// What a stream of this device says it is from; a destination requires
    /// the same.
    fn origin(dev: &vfio::Device<Self>) -> Origin;

    /// The size of [`Migrate::save_registers`]' sections.
    fn registers_len(dev: &vfio::Device<Self>) -> usize;

    /// Appends the device state other than its memory pages (configuration
    /// space, registers) as sections to `w`.
    fn save_registers(dev: &vfio::Device<Self>, w: &mut Writer<'_>) -> Result;

    /// The device's memory, sent in runs of pages.
    fn memory(dev: &vfio::Device<Self>) -> &dyn TrackedMemory;

    /// A fresh staging copy, for a resuming session.
    fn load_begin(dev: &vfio::Device<Self>) -> Result<Self::Staged>;

    /// Checks `section` (framed already; not the end marker, nor a page
    /// section of one page nor a run of pages, see [`Migrate::load_page`])
    /// and copies it into `staged`; each refusal is said through `log`.
    /// Nothing of the device's state changes.
    fn load_section(
        dev: &vfio::Device<Self>,
        staged: &mut Self::Staged,
        section: &Section<'_>,
        log: &RefusalLog<'_>,
    ) -> Result;

    /// Copies `len` bytes of `data` to byte `offset` of memory page `key` in
    /// `staged` (a page section's or a run's bytes, as they arrive, never
    /// past the page's end); refuses (through `log`) a key past the
    /// device's memory.
    fn load_page(
        dev: &vfio::Device<Self>,
        staged: &mut Self::Staged,
        key: u64,
        offset: usize,
        data: &mut UserSliceReader,
        len: usize,
        log: &RefusalLog<'_>,
    ) -> Result;

    /// The whole stream is in: checks that every section the device needs
    /// came, and prepares whatever [`Migrate::load_apply`] needs.
    fn load_finish(
        dev: &vfio::Device<Self>,
        staged: &mut Self::Staged,
        log: &RefusalLog<'_>,
    ) -> Result;

    /// Applies the staging copy [`Migrate::load_finish`] accepted.
    fn load_apply(dev: &vfio::Device<Self>, staged: Self::Staged);
}

/// What the state lock protects.
struct Inner<T: Migrate> {
    state: State,
    saving: Option<Open<T>>,
    resuming: Option<Open<T>>,
}

impl<T: Migrate> Inner<T> {
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
pub struct Migration<T: Migrate> {
    /// The state lock, held across every arc and every reset.
    #[pin]
    state: Mutex<Inner<T>>,
    /// DMA logging was started.
    #[pin]
    logging: Mutex<bool>,
    /// The rate of refusal lines in the log.
    #[pin]
    refusals: RefusalRate,
}

impl<T: Migrate> Migration<T> {
    /// A device in `RUNNING`, without sessions.
    pub fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            state <- new_mutex!(Inner {
                state: State::Running,
                saving: None,
                resuming: None,
            }),
            logging <- new_mutex!(false),
            refusals <- RefusalRate::new(),
        })
    }

    /// Where this device's stream refusals are said: on `dev`, at a bounded
    /// rate.
    pub fn refusal_log<'a>(&'a self, dev: &'a KDevice) -> RefusalLog<'a> {
        RefusalLog::new(dev, &self.refusals)
    }

    /// `VFIO_DEVICE_RESET`: runs the device's own reset (`device_reset`),
    /// then the state returns to `RUNNING` and every session ends; all of it
    /// under the state lock, between two arcs. The session ends even if the
    /// device's reset fails, whose error is returned.
    pub fn reset(&self, device_reset: impl FnOnce() -> Result) -> Result {
        let mut inner = self.state.lock();
        let res = device_reset();
        inner.reset();
        res
    }

    /// The last user closed the device: as a reset, and logging stops.
    pub fn close(&self) {
        self.state.lock().reset();
        *self.logging.lock() = false;
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
                let open = DataFile::open_saving(dev, phase)?;
                let file = open.file.clone();
                inner.saving = Some(open);
                Ok(Some(file))
            }
            // Pre-copy's session goes on: the registers again, what is left, the end.
            (PreCopyP2p, StopCopy) => {
                inner.saving.as_ref().ok_or(EINVAL)?.data.finish()?;
                Ok(None)
            }
            (Stop, Resuming) => {
                let open = DataFile::open_resuming(dev)?;
                let file = open.file.clone();
                inner.resuming = Some(open);
                Ok(Some(file))
            }
            (Resuming, Stop) => {
                inner.resuming.as_ref().ok_or(EINVAL)?.data.commit()?;
                inner.disable_files();
                Ok(None)
            }
            // `vfio_mig_get_next_state()` gives no other arc.
            _ => Err(EINVAL),
        }
    }

    /// What a stop-copy would send now: in pre-copy, what is left of the
    /// session (see [`sender::Sender::stop_copy_len`]); otherwise the whole
    /// state.
    fn stop_copy_len(dev: &vfio::Device<T>) -> usize {
        let inner = T::migration(dev).state.lock();
        let left = match (inner.state, inner.saving.as_ref()) {
            (State::PreCopy | State::PreCopyP2p, Some(saving)) => saving.data.stop_copy_len().ok(),
            _ => None,
        };
        // One call of `full_len`, under the lock still (`inner` lives to the end).
        left.unwrap_or_else(|| sender::full_len(dev))
    }

    /// `migration_set_state`: moves to `new` arc by arc; the data file of
    /// the last arc if it starts a session.
    fn set_state(dev: &vfio::Device<T>, new: State) -> Result<Option<ARef<File>>> {
        let mut inner = T::migration(dev).state.lock();
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

impl<T: Migrate> VfioOps<T> {
    /// The tables for devices of type `T`: `STOP_COPY | P2P | PRE_COPY`.
    pub const fn new() -> Self {
        // SAFETY: The callbacks of `Tables::<T>` cast their `vfio_device` to `vfio::Device<T>`.
        unsafe {
            Self::from_tables(
                bindings::VFIO_MIGRATION_STOP_COPY
                    | bindings::VFIO_MIGRATION_P2P
                    | bindings::VFIO_MIGRATION_PRE_COPY,
                Tables::<T>::MIG_OPS_REF,
                Tables::<T>::LOG_OPS_REF,
            )
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
        let now = T::migration(dev).state.lock().state;
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
