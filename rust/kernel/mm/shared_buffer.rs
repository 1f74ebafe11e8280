// SPDX-License-Identifier: GPL-2.0

//! Memory shared with userspace through a file's `mmap`.
//!
//! A [`SharedBuffer`] is zeroed, virtually contiguous kernel memory (vmalloc) that a file's
//! `mmap` operation maps into a process with [`SharedBuffer::map`], as C code does with
//! `vmalloc_user()` and `remap_vmalloc_range()`: io_uring's rings and the perf ring buffer are
//! such memory. The kernel reads and writes it through [`SharedBuffer::as_ptr`] while the process
//! does through its mapping, so its contents are never a Rust reference: the process may change
//! any byte at any time, and code that reads them must treat them as untrusted.
//!
//! Each page of a mapping holds a reference to the page, so the memory stays valid for the
//! process until it unmaps it, even if the buffer is dropped first.
//!
//! C header: [`include/linux/vmalloc.h`](srctree/include/linux/vmalloc.h)

use crate::{
    alloc::{allocator::Vmalloc, AllocError, Allocator, Flags, NumaNode},
    mm::virt::{flags, VmaNew},
    page::{page_align, PAGE_SIZE},
    prelude::*,
};
use core::{alloc::Layout, ptr::NonNull};

/// Zeroed vmalloc memory, a whole number of pages, that may be mapped into userspace.
///
/// # Invariants
///
/// `ptr` is a [`Vmalloc`] allocation of `layout`, whose size is a non-zero multiple of
/// [`PAGE_SIZE`] and whose alignment is [`PAGE_SIZE`].
pub struct SharedBuffer {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: The buffer is plain memory owned by this value; it may be freed from any thread.
unsafe impl Send for SharedBuffer {}

// SAFETY: `&SharedBuffer` only hands out the raw address and maps pages: it gives no reference
// to the contents, whose accesses are the user's concern (they are shared with userspace anyway).
unsafe impl Sync for SharedBuffer {}

impl SharedBuffer {
    /// Allocates a zeroed buffer of at least `size` bytes (rounded up to whole pages).
    ///
    /// `flags` are the allocation flags (`GFP_KERNEL`, or `GFP_KERNEL_ACCOUNT` to charge the
    /// memory to the caller's memory cgroup); `__GFP_ZERO` is added. `EINVAL` if `size` is zero
    /// or too large.
    pub fn new(size: usize, flags: Flags) -> Result<Self> {
        let size = page_align(size).filter(|&s| s != 0).ok_or(EINVAL)?;
        let layout = Layout::from_size_align(size, PAGE_SIZE).map_err(|_| EINVAL)?;
        let ptr = Vmalloc::alloc(
            layout,
            flags | crate::alloc::flags::__GFP_ZERO,
            NumaNode::NO_NODE,
        )
        .map_err(|AllocError| ENOMEM)?;
        // INVARIANT: A `Vmalloc` allocation of `layout`, page aligned and a multiple of pages.
        Ok(Self {
            ptr: ptr.cast(),
            layout,
        })
    }

    /// The kernel address of the buffer.
    ///
    /// Valid for [`SharedBuffer::len`] bytes while `self` lives. A mapped process may write any
    /// of them concurrently: access them with atomic or volatile operations only.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The size of the buffer in bytes: a whole number of pages.
    pub fn len(&self) -> usize {
        self.layout.size()
    }

    /// Maps the buffer into the VMA being set up by a file's `mmap` operation.
    ///
    /// The mapping must start at offset 0 of the file and be no longer than the buffer
    /// (`EINVAL`), be shared (`MAP_SHARED`, `EINVAL` otherwise: a private mapping would copy the
    /// pages on write) and not executable (`EPERM`). It cannot grow (`mremap()`) or be made
    /// executable later.
    pub fn map(&self, vma: &VmaNew) -> Result {
        // SAFETY: `vma` is a VMA being set up, valid for the duration of this call; `vm_pgoff` is
        // set before `mmap` is called and not changed during it.
        let pgoff = unsafe { (*vma.as_ptr()).vm_pgoff };
        let size = vma.end() - vma.start();
        if pgoff != 0 || size > self.len() || vma.flags() & flags::SHARED == 0 {
            return Err(EINVAL);
        }
        vma.try_clear_mayexec().map_err(|_| EPERM)?;
        vma.set_dontexpand();
        let mixed = vma.set_mixedmap();
        for off in (0..size).step_by(PAGE_SIZE) {
            // SAFETY: `ptr + off` is within the `Vmalloc` allocation, which lives for this loop.
            let page = unsafe { Vmalloc::to_page(self.ptr.add(off)) };
            // The mapping takes a reference to each page it maps.
            mixed.vm_insert_page(vma.start() + off, &page)?;
        }
        Ok(())
    }
}

impl Drop for SharedBuffer {
    fn drop(&mut self) {
        // SAFETY: By the type invariants `ptr` is a `Vmalloc` allocation of `layout`. Pages a
        // process still maps keep the references the mapping took.
        unsafe { Vmalloc::free(self.ptr, self.layout) };
    }
}
