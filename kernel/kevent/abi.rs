// SPDX-License-Identifier: GPL-2.0

//! The user ABI: `struct ukevent` and the constants of `<uapi/linux/kevent.h>`.
//!
//! The C uapi header is the single source of truth; the types come from the generated `uapi`
//! crate and are only wrapped here so that they can be copied to and from userspace.

use kernel::{
    prelude::*,
    transmute::{AsBytes, FromBytes},
    uapi,
};

pub(crate) use uapi::kevent_ring_params;
pub(crate) use uapi::{
    KEVENT_CLOEXEC, KEVENT_CTL_ADD, KEVENT_CTL_INIT, KEVENT_CTL_MAX_BATCH, KEVENT_CTL_MODIFY,
    KEVENT_CTL_REMOVE, KEVENT_NONBLOCK, KEVENT_REQ_ABSTIME, KEVENT_REQ_ET, KEVENT_REQ_ONESHOT,
    KEVENT_REQ_WAKEUP_ALL, KEVENT_RET_BROKEN, KEVENT_RET_DONE, KEVENT_RING, KEVENT_TIMER_FIRED,
    KEVENT_TYPE_POLL, KEVENT_TYPE_TIMER, KEVENT_WAIT_ABSTIME,
};

/// A `struct ukevent` as copied from or to userspace.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub(crate) struct Ukevent(pub(crate) uapi::ukevent);

impl Ukevent {
    /// An all-zero `struct ukevent`.
    pub(crate) fn zeroed() -> Self {
        // SAFETY: `struct ukevent` has only integer fields: all zeroes is a valid value.
        Self(unsafe { core::mem::zeroed() })
    }
}

// SAFETY: `struct ukevent` has only integer fields and no padding (checked below), so every
// bit pattern is valid and it has no uninitialised bytes.
unsafe impl FromBytes for Ukevent {}
// SAFETY: As above.
unsafe impl AsBytes for Ukevent {}

// The ABI is one cache line, identical for 32- and 64-bit userspace.
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<uapi::ukevent>() == 64);
    assert!(offset_of!(uapi::ukevent, user_data) == 0);
    assert!(offset_of!(uapi::ukevent, id) == 8);
    assert!(offset_of!(uapi::ukevent, type_) == 16);
    assert!(offset_of!(uapi::ukevent, event) == 20);
    assert!(offset_of!(uapi::ukevent, req_flags) == 24);
    assert!(offset_of!(uapi::ukevent, ret_flags) == 28);
    assert!(offset_of!(uapi::ukevent, ret_data) == 32);
    assert!(offset_of!(uapi::ukevent, arg) == 40);
    assert!(offset_of!(uapi::ukevent, arg_fd) == 56);
    assert!(offset_of!(uapi::ukevent, reserved) == 60);
};

/// A `struct kevent_ring_params` as copied from userspace.
#[repr(transparent)]
pub(crate) struct RingParams(pub(crate) uapi::kevent_ring_params);

// SAFETY: `struct kevent_ring_params` has only integer fields and no padding (checked below), so
// every bit pattern is valid.
unsafe impl FromBytes for RingParams {}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<uapi::kevent_ring_params>() == 32);
    assert!(offset_of!(uapi::kevent_ring_params, flags) == 4);
    assert!(offset_of!(uapi::kevent_ring_params, reserved) == 8);
};

/// Size of one `struct ukevent` in bytes.
pub(crate) const UKEVENT_SIZE: usize = core::mem::size_of::<Ukevent>();

/// Flags accepted by `KEVENT_CTL_INIT`.
pub(crate) const INIT_FLAGS: u32 = KEVENT_CLOEXEC | KEVENT_NONBLOCK | KEVENT_RING;

/// Flags accepted by `kevent_get_events()`.
pub(crate) const WAIT_FLAGS: u32 = KEVENT_WAIT_ABSTIME;

/// A `struct __kernel_timespec` from userspace, checked.
pub(crate) fn timespec_to_ns(ts: &kernel::bindings::__kernel_timespec) -> Result<i64> {
    const NSEC_PER_SEC: i64 = 1_000_000_000;
    if ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= NSEC_PER_SEC {
        return Err(EINVAL);
    }
    // Saturate: a deadline past the year 2262 is "forever".
    Ok(ts
        .tv_sec
        .saturating_mul(NSEC_PER_SEC)
        .saturating_add(ts.tv_nsec))
}

#[kunit_tests(kevent_abi)]
mod tests {
    use super::*;
    use kernel::bindings::__kernel_timespec;

    fn ts(tv_sec: i64, tv_nsec: i64) -> __kernel_timespec {
        __kernel_timespec { tv_sec, tv_nsec }
    }

    #[test]
    fn timespec_valid() {
        assert_eq!(timespec_to_ns(&ts(0, 0)), Ok(0));
        assert_eq!(timespec_to_ns(&ts(1, 5)), Ok(1_000_000_005));
        assert_eq!(timespec_to_ns(&ts(i64::MAX, 999_999_999)), Ok(i64::MAX));
    }

    #[test]
    fn timespec_invalid() {
        assert_eq!(timespec_to_ns(&ts(-1, 0)), Err(EINVAL));
        assert_eq!(timespec_to_ns(&ts(0, -1)), Err(EINVAL));
        assert_eq!(timespec_to_ns(&ts(0, 1_000_000_000)), Err(EINVAL));
    }
}
