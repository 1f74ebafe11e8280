// SPDX-License-Identifier: GPL-2.0

//! Files on the shared anonymous inode.
//!
//! Objects such as epoll instances, eventfds and io_uring instances are files that exist only
//! through a file descriptor. This module lets Rust code create such files, with file operations
//! given by a trait, much as [`MiscDevice`] does for device nodes.
//!
//! The operations live in a `static` [`AnonInodeFops`], so that a file can later be recognised
//! as one of ours by its `f_op` pointer:
//!
//! ```ignore
//! static FOPS: AnonInodeFops<MyQueue> = AnonInodeFops::new();
//! let file = FOPS.create_file(c"myqueue", queue, O_RDWR)?;
//! let queue = FOPS.data(&file).unwrap();
//! ```
//!
//! C header: [`include/linux/anon_inodes.h`](srctree/include/linux/anon_inodes.h)
//!
//! [`MiscDevice`]: crate::miscdevice::MiscDevice

use crate::{
    bindings,
    error::{from_err_ptr, Result, VTABLE_DEFAULT_ERROR},
    fs::{File, LocalFile},
    mm::virt::VmaNew,
    module::this_module,
    prelude::*,
    seq_file::SeqFile,
    sync::aref::ARef,
    sync::poll::PollTable,
    types::ForeignOwnable,
};
use core::{marker::PhantomData, ptr::NonNull};

/// The file operations of an anonymous-inode file.
///
/// The file's private data is a `Self::Ptr`, handed over by [`AnonInodeFops::create_file`] and
/// given back to
/// [`AnonInodeFile::release`] when the last reference to the file goes away.
#[vtable]
pub trait AnonInodeFile: Sized {
    /// The pointer type stored as the file's private data.
    type Ptr: ForeignOwnable + Send + Sync;

    /// Called when the last reference to the file is dropped.
    fn release(data: Self::Ptr, _file: &File) {
        drop(data);
    }

    /// Reports which events the file is ready for, and registers `table` for wake-ups.
    fn poll(
        _data: <Self::Ptr as ForeignOwnable>::Borrowed<'_>,
        _file: &File,
        _table: PollTable<'_>,
    ) -> u32 {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Maps the file into a process: called by `mmap()` with the VMA being set up, which the
    /// function configures and fills (see [`VmaNew`]). On error the mapping fails with it.
    fn mmap(
        _data: <Self::Ptr as ForeignOwnable>::Borrowed<'_>,
        _file: &File,
        _vma: &VmaNew,
    ) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Shows extra lines in `/proc/<pid>/fdinfo/<fd>`.
    fn show_fdinfo(_data: <Self::Ptr as ForeignOwnable>::Borrowed<'_>, _m: &SeqFile, _file: &File) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// The file operations for anonymous-inode files of type `T`; meant to be a `static`.
#[repr(transparent)]
pub struct AnonInodeFops<T: AnonInodeFile> {
    fops: bindings::file_operations,
    _t: PhantomData<T>,
}

// SAFETY: The operations table is immutable and holds only function pointers and the module.
unsafe impl<T: AnonInodeFile> Sync for AnonInodeFops<T> {}

impl<T: AnonInodeFile> AnonInodeFops<T> {
    /// Builds the operations table of `T`.
    pub const fn new() -> Self {
        Self {
            fops: AnonInodeVTable::<T>::VTABLE,
            _t: PhantomData,
        }
    }

    /// Creates a new file on the anonymous inode with these operations.
    ///
    /// `name` is shown as `anon_inode:<name>` in `/proc/<pid>/fd`. Of `flags`, only the access
    /// mode and `O_NONBLOCK` are used. On failure `data` is dropped.
    pub fn create_file(
        &'static self,
        name: &'static CStr,
        data: T::Ptr,
        flags: u32,
    ) -> Result<ARef<File>> {
        let private = data.into_foreign();
        // SAFETY: `name` is a valid NUL-terminated string with static lifetime, `self.fops` is a
        // valid `file_operations` with static lifetime, and `private` comes from
        // `into_foreign`.
        let file = unsafe {
            bindings::anon_inode_getfile(name.as_char_ptr(), &self.fops, private, flags as c_int)
        };
        match from_err_ptr(file) {
            // SAFETY: `anon_inode_getfile` returned a new file and passed its reference to us;
            // `File` is a transparent wrapper of `struct file`.
            Ok(file) => Ok(unsafe { ARef::from_raw(NonNull::new_unchecked(file.cast())) }),
            Err(e) => {
                // SAFETY: The file was not created, so the private data is still ours.
                drop(unsafe { T::Ptr::from_foreign(private) });
                Err(e)
            }
        }
    }

    /// Returns the private data of `file` if `file` was created by these operations.
    pub fn data<'a>(
        &'static self,
        file: &'a LocalFile,
    ) -> Option<<T::Ptr as ForeignOwnable>::Borrowed<'a>> {
        // SAFETY: `file` is valid, and its `f_op` is set before the file is published.
        let fops = unsafe { (*file.as_ptr()).f_op };
        if !core::ptr::eq(fops, &self.fops) {
            return None;
        }
        // SAFETY: The file has our operations, so its private data came from
        // `T::Ptr::into_foreign` in `create_file`; it is only given back in `release`, which
        // cannot run while `file` is borrowed.
        Some(unsafe { T::Ptr::borrow((*file.as_ptr()).private_data) })
    }
}

/// The file operations of an anonymous-inode file of type `T`.
struct AnonInodeVTable<T: AnonInodeFile>(PhantomData<T>);

impl<T: AnonInodeFile> AnonInodeVTable<T> {
    /// # Safety
    ///
    /// `file` must be a file created by [`AnonInodeFops::create_file`] for `T` that is being
    /// released.
    unsafe extern "C" fn release(_inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
        // SAFETY: The release call of a file owns the private data.
        let private = unsafe { (*file).private_data };
        // SAFETY: The private data came from `T::Ptr::into_foreign` in `create_file`.
        let ptr = unsafe { T::Ptr::from_foreign(private) };
        // SAFETY: The file is valid for the duration of this call, and there is no active
        // fdget_pos region on it.
        T::release(ptr, unsafe { File::from_raw_file(file) });
        0
    }

    /// # Safety
    ///
    /// `file` must be a file created by [`AnonInodeFops::create_file`] for `T`; `table` must be
    /// null or a valid `poll_table` for the duration of the call.
    unsafe extern "C" fn poll(
        file: *mut bindings::file,
        table: *mut bindings::poll_table,
    ) -> bindings::__poll_t {
        // SAFETY: The private data came from `T::Ptr::into_foreign`, and `release` cannot run
        // during a `poll` call, which holds a reference to the file.
        let data = unsafe { T::Ptr::borrow((*file).private_data) };
        // SAFETY: The file is valid for the duration of this call, and there is no active
        // fdget_pos region on it.
        let f = unsafe { File::from_raw_file(file) };
        // SAFETY: The caller guarantees `table` for the duration of this call.
        T::poll(data, f, unsafe { PollTable::from_raw(table) })
    }

    /// # Safety
    ///
    /// `file` must be a file created by [`AnonInodeFops::create_file`] for `T`; `vma` a VMA
    /// being set up by `mmap()` of it, valid for the duration of the call.
    unsafe extern "C" fn mmap(
        file: *mut bindings::file,
        vma: *mut bindings::vm_area_struct,
    ) -> c_int {
        // SAFETY: The private data came from `T::Ptr::into_foreign`, and `release` cannot run
        // during an `mmap` call, which holds a reference to the file.
        let data = unsafe { T::Ptr::borrow((*file).private_data) };
        // SAFETY: The file is valid for the duration of this call, and there is no active
        // fdget_pos region on it.
        let f = unsafe { File::from_raw_file(file) };
        // SAFETY: The caller passes a VMA undergoing its initial setup.
        let area = unsafe { VmaNew::from_raw(vma) };
        match T::mmap(data, f, area) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// `file` must be a file created by [`AnonInodeFops::create_file`] for `T`; `m` a valid
    /// `seq_file` for the duration of the call.
    unsafe extern "C" fn show_fdinfo(m: *mut bindings::seq_file, file: *mut bindings::file) {
        // SAFETY: The private data came from `T::Ptr::into_foreign`, and `release` cannot run
        // while `/proc` holds a reference to the file.
        let data = unsafe { T::Ptr::borrow((*file).private_data) };
        // SAFETY: The file is valid for the duration of this call, and there is no active
        // fdget_pos region on it.
        let f = unsafe { File::from_raw_file(file) };
        // SAFETY: The caller guarantees `m` for the duration of this call.
        T::show_fdinfo(data, unsafe { SeqFile::from_raw(m) }, f)
    }

    const VTABLE: bindings::file_operations = bindings::file_operations {
        release: Some(Self::release),
        poll: if T::HAS_POLL { Some(Self::poll) } else { None },
        mmap: if T::HAS_MMAP { Some(Self::mmap) } else { None },
        show_fdinfo: if T::HAS_SHOW_FDINFO {
            Some(Self::show_fdinfo)
        } else {
            None
        },
        llseek: Some(bindings::noop_llseek),
        owner: this_module::<T::OwnerModule>().as_ptr(),
        ..pin_init::zeroed()
    };
}
