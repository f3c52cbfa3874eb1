// SPDX-License-Identifier: GPL-2.0

//! The migration data file: the `data_fd` of a saving or resuming session.
//!
//! An anonymous-inode stream file (`anon_inode_getfile()`, `stream_open()`,
//! so no `pread`/`pwrite` and no seeking) whose private data is an
//! [`Arc<DataFile>`] the file owns; `release` drops it. The device's
//! migration state holds another reference and a reference on the file,
//! and *disables* the file whenever the session ends (the state machine
//! leaves the saving or resuming states, reset, close): a disabled file
//! frees what it holds and fails every call with `ENODEV`, so a file user
//! space keeps open never reaches the device again.
//!
//! A saving file makes the stream as it is read ([`Sender`]). In pre-copy,
//! a read with nothing to send is the uapi's temporary end of stream
//! (`ENOMSG`), which is exactly when `VFIO_MIG_GET_PRECOPY_INFO` gives zero
//! initial and dirty bytes; in stop-copy, the end of file (0). A resuming
//! file takes the stream apart as it is written ([`Receiver`]) into the
//! device's staging copy; `RESUMING -> STOP` commits it.

use super::{
    receiver::{Receiver, Sink},
    refusal_log::RefusalLog,
    sender::Sender,
    stream::Section,
    Migrate, Phase,
};
use crate::kernel_ext::{bindings, uaccess::UserWriter, vfio};
use core::{mem::offset_of, ptr::NonNull};
use kernel::{
    error::from_err_ptr,
    fs::File,
    new_mutex,
    prelude::*,
    sync::{aref::ARef, Arc, ArcBorrow, Mutex},
    uaccess::{UserSlice, UserSliceReader},
};

/// A resuming file's [`Sink`]: the device's staging copy.
struct Staging<'a, T: Migrate> {
    dev: &'a vfio::Device<T>,
    staged: &'a mut T::Staged,
    log: &'a RefusalLog<'a>,
}

impl<T: Migrate> Sink for Staging<'_, T> {
    fn section(&mut self, section: &Section<'_>) -> Result {
        T::load_section(self.dev, self.staged, section, self.log)
    }

    fn page(&mut self, key: u64, offset: usize, data: &mut UserSliceReader, len: usize) -> Result {
        T::load_page(self.dev, self.staged, key, offset, data, len, self.log)
    }

    fn pages(&self) -> usize {
        T::memory(self.dev).dirty_pages().len()
    }
}

/// What the file's lock protects.
struct Inner<S> {
    phase: Phase,
    /// The saving side (`PreCopy`, `StopCopy`).
    sender: Option<Sender>,
    /// The resuming side, and the device's staging copy.
    receiver: Option<(Receiver, S)>,
}

/// The session behind one data file.
#[pin_data]
pub(super) struct DataFile<T: Migrate> {
    /// The device; only used while the file is not disabled, i.e. while the
    /// device is open.
    dev: ARef<vfio::Device<T>>,
    #[pin]
    inner: Mutex<Inner<T::Staged>>,
}

/// A data file and its session, as the migration state holds them.
pub(super) struct Open<T: Migrate> {
    /// The reference on the file that keeps it alive for the session.
    pub(super) file: ARef<File>,
    /// The session.
    pub(super) data: Arc<DataFile<T>>,
}

impl<T: Migrate> DataFile<T> {
    /// Ends the session: frees what it holds; every later call fails with
    /// `ENODEV`.
    pub(super) fn disable(&self) {
        let mut inner = self.inner.lock();
        inner.phase = Phase::Disabled;
        inner.sender = None;
        inner.receiver = None;
    }

    /// Creates a saving file for `dev`: pre-copy (`PreCopy`) or stop-copy
    /// from `STOP` (`StopCopy`).
    pub(super) fn open_saving(dev: &vfio::Device<T>, phase: Phase) -> Result<Open<T>> {
        let sender = Sender::new(dev, phase == Phase::PreCopy)?;
        Self::open(dev, phase, Some(sender), None)
    }

    /// Creates a resuming file for `dev`, with a fresh staging copy.
    pub(super) fn open_resuming(dev: &vfio::Device<T>) -> Result<Open<T>> {
        let staged = T::load_begin(dev)?;
        Self::open(dev, Phase::Resuming, None, Some((Receiver::new(), staged)))
    }

    fn open(
        dev: &vfio::Device<T>,
        phase: Phase,
        sender: Option<Sender>,
        receiver: Option<(Receiver, T::Staged)>,
    ) -> Result<Open<T>> {
        let data = Arc::pin_init(
            pin_init!(Self {
                dev: dev.into(),
                inner <- new_mutex!(Inner {
                    phase,
                    sender,
                    receiver,
                }),
            }),
            GFP_KERNEL_ACCOUNT,
        )?;
        let (fops, flags) = match phase {
            Phase::Resuming => (&Self::RESUME_FOPS, bindings::O_WRONLY),
            _ => (&Self::SAVE_FOPS, bindings::O_RDONLY),
        };
        let private = Arc::into_raw(data.clone()).cast_mut().cast();
        // SAFETY: `fops` is `'static`; `private` is an `Arc` reference the file owns from
        // now on (released by `release`) and the name is a C string literal.
        let file = from_err_ptr(unsafe {
            // CAST: `O_RDONLY` and `O_WRONLY` are small flags.
            bindings::anon_inode_getfile(c"vfio_mig".as_char_ptr(), fops, private, flags as c_int)
        });
        let file = match file {
            Ok(file) => file,
            Err(e) => {
                // SAFETY: The file was not created, so the reference is still ours.
                drop(unsafe { Arc::from_raw(private.cast::<Self>()) });
                return Err(e);
            }
        };
        // SAFETY: `anon_inode_getfile()` returned a new file with one reference, which
        // becomes the `ARef`'s (so an error below puts it); `File` is a transparent wrapper
        // of `struct file`.
        let file: ARef<File> = unsafe { ARef::from_raw(NonNull::new_unchecked(file.cast())) };
        // SAFETY: `file` is a live file, not yet installed anywhere; a stream has no position.
        kernel::error::to_result(unsafe {
            bindings::stream_open((*file.as_ptr()).f_inode, file.as_ptr())
        })?;
        Ok(Open { file, data })
    }

    /// Pre-copy moves on to stop-copy: the registers again, then the rest;
    /// the end of the data is the end of the stream. If saving the
    /// registers fails, the file stays in pre-copy.
    pub(super) fn finish(&self) -> Result {
        let mut inner = self.inner.lock();
        if inner.phase != Phase::PreCopy {
            return Err(EINVAL);
        }
        inner.sender.as_mut().ok_or(EINVAL)?.stop_copy(&self.dev)?;
        inner.phase = Phase::StopCopy;
        Ok(())
    }

    /// What a stop-copy would send now, in pre-copy.
    pub(super) fn stop_copy_len(&self) -> Result<usize> {
        let inner = self.inner.lock();
        match (inner.phase, inner.sender.as_ref()) {
            (Phase::PreCopy, Some(sender)) => Ok(sender.stop_copy_len(&self.dev)),
            _ => Err(EINVAL),
        }
    }

    /// `RESUMING -> STOP`: the stream must be complete and accepted; then
    /// the device takes its staging copy. A refusal changes nothing and
    /// ends the session (the device stays `RESUMING`).
    pub(super) fn commit(&self) -> Result {
        let mut inner = self.inner.lock();
        if inner.phase != Phase::Resuming {
            return Err(EINVAL);
        }
        let (mut receiver, mut staged) = inner.receiver.take().ok_or(EINVAL)?;
        let log = T::migration(&self.dev).refusal_log(self.dev.parent());
        let res = receiver
            .finish(&log)
            .and_then(|()| T::load_finish(&self.dev, &mut staged, &log));
        match res {
            Ok(()) => {
                T::load_apply(&self.dev, staged);
                inner.phase = Phase::Disabled;
                Ok(())
            }
            Err(e) => {
                // Refused for good: the same errno for every later call, until the
                // session ends and frees the staging copy.
                receiver.refuse(e);
                inner.receiver = Some((receiver, staged));
                Err(e)
            }
        }
    }

    /// The session of a file of ours.
    ///
    /// # Safety
    ///
    /// `file` must be a live file created by [`DataFile::open`] for this `T`.
    unsafe fn from_file<'a>(file: *mut bindings::file) -> ArcBorrow<'a, Self> {
        // SAFETY: Per the safety requirements `private_data` is the `Arc` the file owns
        // until `release`, which cannot run while the file is in use.
        unsafe { ArcBorrow::from_raw((*file).private_data.cast::<Self>()) }
    }

    fn read(&self, ptr: UserPtr, count: usize) -> Result<usize> {
        let mut inner = self.inner.lock();
        let stop_copy = match inner.phase {
            Phase::Disabled => return Err(ENODEV),
            Phase::Resuming => return Err(EINVAL),
            Phase::PreCopy => false,
            Phase::StopCopy => true,
        };
        let sender = inner.sender.as_mut().ok_or(EINVAL)?;
        let n = sender.read(&self.dev, &mut UserWriter::new(ptr, count), stop_copy)?;
        if n == 0 && count > 0 && !stop_copy {
            // The uapi's temporary end of stream: nothing unread, nothing changed (initial
            // and dirty bytes are both zero).
            return Err(ENOMSG);
        }
        Ok(n)
    }

    fn write(&self, ptr: UserPtr, count: usize) -> Result<usize> {
        let mut inner = self.inner.lock();
        match inner.phase {
            Phase::Disabled => return Err(ENODEV),
            Phase::Resuming => {}
            _ => return Err(EINVAL),
        }
        let (receiver, staged) = inner.receiver.as_mut().ok_or(EINVAL)?;
        let dev = &*self.dev;
        let log = T::migration(dev).refusal_log(dev.parent());
        receiver.feed(
            &mut UserSlice::new(ptr, count).reader(),
            &T::origin(dev),
            &log,
            &mut Staging {
                dev,
                staged,
                log: &log,
            },
        )?;
        Ok(count)
    }

    fn precopy_info(&self, arg: UserPtr) -> Result<isize> {
        const MINSZ: usize = offset_of!(bindings::vfio_precopy_info, dirty_bytes) + 8;
        let mut info: bindings::vfio_precopy_info = vfio::read_arg(arg, MINSZ)?;
        // Under the file's lock: the counts of one moment, and not of a device whose
        // session ended (a disabled file is not in pre-copy).
        let inner = self.inner.lock();
        let sender = match (inner.phase, inner.sender.as_ref()) {
            (Phase::PreCopy, Some(sender)) => sender,
            // Only valid in the pre-copy states.
            _ => return Err(EINVAL),
        };
        // No reinitialised data is ever reported: flags are 0 for a v2 user, and
        // left as they were (the v1 behaviour) for the others.
        if self.dev.precopy_info_v2() {
            info.flags = 0;
        }
        // CAST: `usize` to `u64` is lossless on every kernel target.
        info.initial_bytes = sender.initial_bytes(&self.dev) as u64;
        // CAST: `usize` to `u64` is lossless on every kernel target.
        info.dirty_bytes = sender.dirty_bytes(&self.dev) as u64;
        drop(inner);
        vfio::write_arg(arg, &info, MINSZ)?;
        Ok(0)
    }

    const SAVE_FOPS: bindings::file_operations = bindings::file_operations {
        owner: kernel::module::this_module::<T::OwnerModule>().as_ptr(),
        read: Some(Self::read_callback),
        unlocked_ioctl: Some(Self::ioctl_callback),
        #[cfg(CONFIG_COMPAT)]
        compat_ioctl: bindings::compat_ptr_ioctl,
        release: Some(Self::release_callback),
        // SAFETY: All-zero is a valid `file_operations`: `None`s and null pointers.
        ..unsafe { core::mem::zeroed() }
    };

    const RESUME_FOPS: bindings::file_operations = bindings::file_operations {
        owner: kernel::module::this_module::<T::OwnerModule>().as_ptr(),
        write: Some(Self::write_callback),
        release: Some(Self::release_callback),
        // SAFETY: All-zero is a valid `file_operations`: `None`s and null pointers.
        ..unsafe { core::mem::zeroed() }
    };

    /// `read` of a saving file.
    ///
    /// # Safety
    ///
    /// VFS callback: `file` is one of our saving files, `buf` a user buffer of `count` bytes.
    unsafe extern "C" fn read_callback(
        file: *mut bindings::file,
        buf: *mut c_char,
        count: usize,
        _ppos: *mut bindings::loff_t,
    ) -> isize {
        // SAFETY: Per the callback contract.
        let this = unsafe { Self::from_file(file) };
        match this.read(UserPtr::from_ptr(buf.cast()), count) {
            // CAST: `n <= count`, which the VFS bounds by `MAX_RW_COUNT`.
            Ok(n) => n as isize,
            // CAST: errnos are small negative numbers.
            Err(e) => e.to_errno() as isize,
        }
    }

    /// `write` of a resuming file.
    ///
    /// # Safety
    ///
    /// VFS callback: `file` is one of our resuming files, `buf` a user buffer of `count`
    /// bytes.
    unsafe extern "C" fn write_callback(
        file: *mut bindings::file,
        buf: *const c_char,
        count: usize,
        _ppos: *mut bindings::loff_t,
    ) -> isize {
        // SAFETY: Per the callback contract.
        let this = unsafe { Self::from_file(file) };
        match this.write(UserPtr::from_ptr(buf.cast_mut().cast()), count) {
            // CAST: `n == count`, which the VFS bounds by `MAX_RW_COUNT`.
            Ok(n) => n as isize,
            // CAST: errnos are small negative numbers.
            Err(e) => e.to_errno() as isize,
        }
    }

    /// `unlocked_ioctl` of a saving file: `VFIO_MIG_GET_PRECOPY_INFO`.
    ///
    /// # Safety
    ///
    /// VFS callback: `file` is one of our saving files.
    unsafe extern "C" fn ioctl_callback(
        file: *mut bindings::file,
        cmd: c_uint,
        arg: c_ulong,
    ) -> c_long {
        // SAFETY: Per the callback contract.
        let this = unsafe { Self::from_file(file) };
        let res = if cmd == bindings::VFIO_MIG_GET_PRECOPY_INFO {
            this.precopy_info(UserPtr::from_addr(arg))
        } else {
            Err(ENOTTY)
        };
        match res {
            // CAST: `c_long` and `isize` are the same size on every kernel target.
            Ok(v) => v as c_long,
            // CAST: errnos fit any integer type.
            Err(e) => e.to_errno() as c_long,
        }
    }

    /// `release`: the last reference to the file is gone.
    ///
    /// # Safety
    ///
    /// VFS callback: `file` is one of our files, released once.
    unsafe extern "C" fn release_callback(
        _inode: *mut bindings::inode,
        file: *mut bindings::file,
    ) -> c_int {
        // SAFETY: `private_data` is the `Arc` reference the file owned (see `open`); the
        // file is gone, so nothing uses it any more.
        drop(unsafe { Arc::from_raw((*file).private_data.cast::<Self>()) });
        0
    }
}
