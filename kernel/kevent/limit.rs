// SPDX-License-Identifier: GPL-2.0

//! The per-user limit on registered kevents: `/proc/sys/fs/kevent/max_user_kevents`.
//!
//! Each kevent is charged to the real uid of the process that created its queue, like epoll's
//! `max_user_watches` (charged to `ep->user`); over the limit, `KEVENT_CTL_ADD` fails with
//! `ENOSPC`. Memory is also accounted to the registering task's memory cgroup
//! (`GFP_KERNEL_ACCOUNT`).
//!
//! A queue looks its user's counter up once, when it is created ([`UserRef::current`]), in a
//! global tree under a mutex; each registration then costs one `cmpxchg` on that counter and
//! its removal one atomic subtraction, with no lock. The tree keeps a counter while a queue of
//! its user exists: every charge is released before its queue (a kevent holds its queue), so a
//! counter leaves the tree at zero.

use kernel::{
    bindings,
    prelude::*,
    rbtree::RBTree,
    sync::{
        atomic::{ordering, Atomic},
        Arc,
    },
};

/// One user's count of registered kevents.
struct User {
    count: Atomic<usize>,
}

/// A user's counter and how many queues refer to it.
struct Entry {
    user: Arc<User>,
    queues: usize,
}

kernel::sync::global_lock! {
    // SAFETY: Initialised in the module initialiser, before any kevent system call can run.
    unsafe(uninit) static USERS: Mutex<Option<RBTree<u32, Entry>>> = None;
}

/// Initialises the counters. Called once, from the module initialiser.
pub(crate) fn init() {
    // SAFETY: Called exactly once, before first use.
    unsafe { USERS.init() };
}

/// The current limit.
fn max() -> usize {
    // SAFETY: The sysctl is a plain `long`; a racing write gives the old or the new value.
    let max = unsafe { core::ptr::read_volatile(&raw const bindings::kevent_max_user_kevents) };
    usize::try_from(max).unwrap_or(0)
}

/// A queue's reference to its user's counter.
pub(crate) struct UserRef {
    uid: u32,
    user: Arc<User>,
}

impl UserRef {
    /// The counter of the current task's real uid.
    pub(crate) fn current() -> Result<UserRef> {
        let uid = kernel::current!().uid().into_raw().val;
        let mut guard = USERS.lock();
        let tree = guard.get_or_insert_with(RBTree::new);
        if let Some(e) = tree.get_mut(&uid) {
            e.queues += 1;
            return Ok(UserRef {
                uid,
                user: e.user.clone(),
            });
        }
        let user = Arc::new(
            User {
                count: Atomic::new(0),
            },
            GFP_KERNEL,
        )?;
        tree.try_create_and_insert(
            uid,
            Entry {
                user: user.clone(),
                queues: 1,
            },
            GFP_KERNEL,
        )?;
        Ok(UserRef { uid, user })
    }

    /// Charges one kevent: `ENOSPC` if the user is at the limit.
    pub(crate) fn charge(&self) -> Result<Charge> {
        let max = max();
        let mut n = self.user.count.load(ordering::Relaxed);
        loop {
            if n >= max {
                return Err(ENOSPC);
            }
            match self.user.count.cmpxchg(n, n + 1, ordering::Relaxed) {
                Ok(_) => {
                    return Ok(Charge {
                        user: self.user.clone(),
                    })
                }
                Err(now) => n = now,
            }
        }
    }
}

impl Drop for UserRef {
    fn drop(&mut self) {
        let mut guard = USERS.lock();
        let Some(tree) = guard.as_mut() else {
            return;
        };
        let last = match tree.get_mut(&self.uid) {
            Some(e) => {
                e.queues -= 1;
                e.queues == 0
            }
            None => false,
        };
        if last {
            let removed = tree.remove(&self.uid);
            drop(guard);
            drop(removed);
        }
    }
}

/// One kevent's charge against its user's limit; released when dropped.
pub(crate) struct Charge {
    user: Arc<User>,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.user.count.fetch_sub(1, ordering::Relaxed);
    }
}

#[kunit_tests(kevent_limit)]
mod tests {
    use super::*;

    #[test]
    fn charges_up_to_the_limit() {
        let limit = &raw mut bindings::kevent_max_user_kevents;
        // SAFETY: The sysctl is a plain `long`; nothing else registers kevents during KUnit.
        let saved = unsafe { limit.read_volatile() };
        let user = UserRef::current().expect("user");
        // A second queue of the same user shares the counter.
        let other = UserRef::current().expect("user");
        // The limit is put back before anything is asserted: a failed assertion ends the test
        // at once, and a limit left at 2 would fail every later test that registers kevents.
        // SAFETY: As above.
        unsafe { limit.write_volatile(2) };
        let a = user.charge();
        let b = other.charge();
        let c = user.charge();
        let (ab_ok, c_err) = (a.is_ok() && b.is_ok(), c.err());
        drop(a);
        let d = other.charge();
        let d_ok = d.is_ok();
        drop((b, d));
        // SAFETY: As above.
        unsafe { limit.write_volatile(0) };
        let zero_err = user.charge().err();
        // SAFETY: As above.
        unsafe { limit.write_volatile(saved) };
        assert!(ab_ok);
        assert_eq!(c_err, Some(ENOSPC));
        assert!(d_ok);
        assert_eq!(zero_err, Some(ENOSPC));
        assert!(user.charge().is_ok());
        drop(other);
        drop(user);
        // The last queue of the user gone, its counter left the tree.
        let uid = kernel::current!().uid().into_raw().val;
        assert!(USERS.lock().as_ref().is_none_or(|t| t.get(&uid).is_none()));
    }
}
