// SPDX-License-Identifier: GPL-2.0

//! The migration data file: the `data_fd` of a saving or resuming session.
//!
//! An anonymous-inode stream file (`anon_inode_getfile()`, `stream_open()`,
//! so no `pread`/`pwrite` and no seeking) whose private data is an
//! [`Arc<DataFile>`] the file owns; `release` drops it. The device's
//! migration state holds another reference and a reference on the file,
//! and *disables* the file whenever the session ends (the state machine
//! leaves the saving or resuming states, reset, close): a disabled file
//! frees its buffer and fails every call with `ENODEV`, so a file user
//! space keeps open never reaches the device again.
//!
//! A saving file holds the bytes queued and not yet read, and a read
//! position. In pre-copy, a read at the end of them queues the memory pages
//! changed since they were last saved ([`Migrate::save_dirty`]), up to one
//! full state's worth of such re-sends per session (so the stream a
//! destination accepts stays bounded; what is over goes in stop-copy); with
//! nothing to queue, the read is the uapi's temporary end of stream
//! (`ENOMSG`). In stop-copy, a read at the end is the end of file (0). A
//! resuming file collects what user space writes, up to a limit.

use super::{
    stream::{Stream, Writer},
    Migrate, Phase,
};
use crate::kernel_ext::{bindings, vfio};
use core::{mem::offset_of, ptr::NonNull};
use kernel::{
    error::from_err_ptr,
    fs::File,
    new_mutex,
    prelude::*,
    sync::{aref::ARef, Arc, ArcBorrow, Mutex},
    uaccess::UserSlice,
};

/// What the file's lock protects.
struct Inner {
    phase: Phase,
    /// Queued bytes (saving) or received bytes (resuming).
    buf: KVVec<u8>,
    /// Bytes of `buf` already read (saving).
    pos: usize,
    /// Bytes of the initial data (the first full state) not yet read.
    initial_left: usize,
    /// Bytes of pre-copy re-sends queued so far.
    resent: usize,
    /// Most bytes of pre-copy re-sends (one full state).
    resend_limit: usize,
    /// Most bytes a resuming file accepts.
    limit: usize,
    /// Whether the received stream's header was checked and accepted.
    header_accepted: bool,
}

impl Inner {
    /// Frees the bytes already read, if that is all of them (saving).
    fn drop_read(&mut self) {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
    }
}

/// The session behind one data file.
#[pin_data]
pub(super) struct DataFile<T: vfio::DeviceOps> {
    /// The device, for `VFIO_MIG_GET_PRECOPY_INFO`'s dirty bytes; only used
    /// while the file is not disabled, i.e. while the device is open.
    dev: ARef<vfio::Device<T>>,
    #[pin]
    inner: Mutex<Inner>,
}

/// A data file and its session, as the migration state holds them.
pub(super) struct Open<T: vfio::DeviceOps> {
    /// The reference on the file that keeps it alive for the session.
    pub(super) file: ARef<File>,
    /// The session.
    pub(super) data: Arc<DataFile<T>>,
}

impl<T: vfio::DeviceOps> DataFile<T> {
    /// Ends the session: frees the buffer; every later call fails with `ENODEV`.
    pub(super) fn disable(&self) {
        let mut inner = self.inner.lock();
        inner.phase = Phase::Disabled;
        inner.buf = KVVec::new();
        inner.pos = 0;
    }
}

impl<T: Migrate> DataFile<T> {
    /// Creates a data file for `dev` in `phase` (`PreCopy`, `StopCopy` or
    /// `Resuming`) holding `buf`; a resuming file accepts up to `limit` bytes.
    pub(super) fn open(
        dev: &vfio::Device<T>,
        phase: Phase,
        buf: KVVec<u8>,
        limit: usize,
    ) -> Result<Open<T>> {
        let initial_left = buf.len();
        let data = Arc::pin_init(
            pin_init!(Self {
                dev: dev.into(),
                inner <- new_mutex!(Inner {
                    phase,
                    buf,
                    pos: 0,
                    initial_left,
                    resent: 0,
                    resend_limit: T::max_save_len(dev),
                    limit,
                    header_accepted: false,
                }),
            }),
            GFP_KERNEL,
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

    /// Pre-copy moves on to stop-copy: `save` appends the final sections,
    /// after which the end of the data is the end of the stream. If `save`
    /// fails, what it appended stays queued (whole sections) and the file
    /// stays in pre-copy.
    pub(super) fn finish(&self, save: impl FnOnce(&mut Writer<'_>) -> Result) -> Result {
        let mut inner = self.inner.lock();
        if inner.phase != Phase::PreCopy {
            return Err(EINVAL);
        }
        inner.drop_read();
        save(&mut Writer::new(&mut inner.buf))?;
        inner.phase = Phase::StopCopy;
        Ok(())
    }

    /// Bytes queued and not yet read (saving).
    pub(super) fn unread(&self) -> usize {
        let inner = self.inner.lock();
        inner.buf.len().saturating_sub(inner.pos)
    }

    /// Runs `f` on the bytes received by a resuming file.
    pub(super) fn with_received<R>(&self, f: impl FnOnce(&[u8]) -> Result<R>) -> Result<R> {
        let inner = self.inner.lock();
        if inner.phase != Phase::Resuming {
            return Err(EINVAL);
        }
        f(&inner.buf)
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
        match inner.phase {
            Phase::Disabled => return Err(ENODEV),
            Phase::Resuming => return Err(EINVAL),
            Phase::PreCopy if inner.pos == inner.buf.len() => {
                // Everything queued was read: queue the pages changed since.
                inner.drop_read();
                let budget = inner.resend_limit.saturating_sub(inner.resent);
                let res = T::save_dirty(&self.dev, &mut Writer::new(&mut inner.buf), budget);
                inner.resent += inner.buf.len();
                if inner.buf.is_empty() {
                    // The uapi's temporary end of stream: nothing more to send for now.
                    res?;
                    return Err(ENOMSG);
                }
            }
            _ => {}
        }
        let left = inner.buf.len().checked_sub(inner.pos).ok_or(EINVAL)?;
        let n = left.min(count);
        let bytes = inner.buf.get(inner.pos..inner.pos + n).ok_or(EINVAL)?;
        UserSlice::new(ptr, n).writer().write_slice(bytes)?;
        inner.pos += n;
        inner.initial_left = inner.initial_left.saturating_sub(n);
        Ok(n)
    }

    fn write(&self, ptr: UserPtr, count: usize) -> Result<usize> {
        let mut inner = self.inner.lock();
        match inner.phase {
            Phase::Disabled => return Err(ENODEV),
            Phase::Resuming => {}
            _ => return Err(EINVAL),
        }
        let total = inner.buf.len().checked_add(count).ok_or(EFBIG)?;
        if total > inner.limit {
            dev_err!(
                self.dev.parent(),
                "migration: stream refused: longer than {} bytes, the most this device saves\n",
                inner.limit
            );
            return Err(super::stream::ERR_OVERSIZED);
        }
        let start = inner.buf.len();
        if let Err(e) = UserSlice::new(ptr, count)
            .reader()
            .read_all(&mut inner.buf, GFP_KERNEL)
        {
            inner.buf.truncate(start);
            return Err(e);
        }
        // A stream from another device is refused as soon as its header is
        // in (see `Stream::check_header`); its sections at `RESUMING -> STOP`.
        if !inner.header_accepted {
            match Stream::check_header(&inner.buf, &T::origin(&self.dev), self.dev.parent()) {
                Ok(Some(_)) => inner.header_accepted = true,
                Ok(None) => {}
                Err(e) => {
                    inner.buf.truncate(start);
                    return Err(e);
                }
            }
        }
        Ok(count)
    }

    fn precopy_info(&self, arg: UserPtr) -> Result<isize> {
        const MINSZ: usize = offset_of!(bindings::vfio_precopy_info, dirty_bytes) + 8;
        let mut info: bindings::vfio_precopy_info = vfio::read_arg(arg, MINSZ)?;
        let (initial, queued) = {
            let inner = self.inner.lock();
            if inner.phase != Phase::PreCopy {
                // Only valid in the pre-copy states (a disabled file included).
                return Err(EINVAL);
            }
            let unread = inner.buf.len().saturating_sub(inner.pos);
            (
                inner.initial_left,
                unread.saturating_sub(inner.initial_left),
            )
        };
        // No reinitialised data is ever reported: flags are 0 for a v2 user, and
        // left as they were (the v1 behaviour) for the others.
        if self.dev.precopy_info_v2() {
            info.flags = 0;
        }
        // CAST: `usize` to `u64` is lossless on every kernel target.
        info.initial_bytes = initial as u64;
        // Changes queued and not yet read, and those not yet queued.
        // CAST: `usize` to `u64` is lossless on every kernel target.
        info.dirty_bytes = queued.saturating_add(T::dirty_bytes(&self.dev)) as u64;
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
