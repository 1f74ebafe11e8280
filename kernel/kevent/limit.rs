// SPDX-License-Identifier: GPL-2.0

//! The per-user limit on registered kevents: `/proc/sys/fs/kevent/max_user_kevents`.
//!
//! Each kevent is charged to the real uid of the process that registers it, like epoll's
//! `max_user_watches`; over the limit, `KEVENT_CTL_ADD` fails with `ENOSPC`. Memory is also
//! accounted to the registering task's memory cgroup (`GFP_KERNEL_ACCOUNT`).

use kernel::{bindings, prelude::*, rbtree::RBTree};

kernel::sync::global_lock! {
    // SAFETY: Initialised in the module initialiser, before any kevent system call can run.
    unsafe(uninit) static USERS: Mutex<Option<RBTree<u32, usize>>> = None;
}

/// Initialises the accounting. Called once, from the module initialiser.
pub(crate) fn init() {
    // SAFETY: Called exactly once, before first use.
    unsafe { USERS.init() };
}

/// One kevent charged to a user; uncharged on drop. Process context.
pub(crate) struct Charge {
    uid: u32,
}

impl Charge {
    /// Charges one kevent to the current user: `ENOSPC` over the limit.
    pub(crate) fn new() -> Result<Charge> {
        let uid = kernel::current!().uid().into_raw().val;
        // SAFETY: A plain load of a `long` the sysctl handler may change at any time.
        let max = unsafe { core::ptr::read_volatile(&raw const bindings::kevent_max_user_kevents) };
        let max = usize::try_from(max).unwrap_or(0);
        let mut guard = USERS.lock();
        let tree = guard.get_or_insert_with(RBTree::new);
        match tree.get_mut(&uid) {
            Some(n) if *n >= max => return Err(ENOSPC),
            Some(n) => *n += 1,
            None if max == 0 => return Err(ENOSPC),
            None => {
                tree.try_create_and_insert(uid, 1, GFP_KERNEL)?;
            }
        }
        Ok(Charge { uid })
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        let mut guard = USERS.lock();
        if let Some(tree) = guard.as_mut() {
            let now_zero = match tree.get_mut(&self.uid) {
                Some(n) => {
                    *n -= 1;
                    *n == 0
                }
                None => false,
            };
            if now_zero {
                tree.remove(&self.uid);
            }
        }
    }
}

#[kunit_tests(kevent_limit)]
mod tests {
    use super::*;

    #[test]
    fn charges_up_to_the_limit() {
        let limit = &raw mut bindings::kevent_max_user_kevents;
        // SAFETY: KUnit runs before userspace: nothing else reads or charges concurrently.
        let saved = unsafe { limit.read_volatile() };
        // SAFETY: As above.
        unsafe { limit.write_volatile(2) };
        let a = Charge::new();
        let b = Charge::new();
        let c = Charge::new();
        assert!(a.is_ok() && b.is_ok());
        assert_eq!(c.err(), Some(ENOSPC));
        // Uncharging makes room again.
        drop(a);
        let d = Charge::new();
        assert!(d.is_ok());
        drop((b, d));
        // SAFETY: As above.
        unsafe { limit.write_volatile(0) };
        assert_eq!(Charge::new().err(), Some(ENOSPC));
        // SAFETY: As above.
        unsafe { limit.write_volatile(saved) };
        assert!(Charge::new().is_ok());
    }
}
