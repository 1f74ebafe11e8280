// SPDX-License-Identifier: GPL-2.0

//! Queues watching queues: loop and depth protection.
//!
//! A poll kevent on a kevent queue file is an edge "watcher -> watched" between two queues. An
//! edge that would close a cycle, or make a chain of queues longer than [`MAX_NESTS`], is refused
//! with `ELOOP`, as epoll refuses loops and deep nests. The edges live in one global list under
//! one mutex, taken only when such a kevent is added or removed (rare), never on the event path.
//!
//! The wake-ups themselves are deferred (see `poll.rs`): the watched queue's wait queue is woken
//! under its lock, and the watcher is notified from a work item, so no queue lock is ever taken
//! inside another queue's.

use kernel::prelude::*;

/// The longest chain of queues watching queues, as epoll's `EP_MAX_NESTS`.
pub(crate) const MAX_NESTS: usize = 4;

kernel::sync::global_lock! {
    // SAFETY: Initialised in the module initialiser, before any kevent system call can run.
    unsafe(uninit) static EDGES: Mutex<KVec<(usize, usize)>> = KVec::new();
}

/// Initialises the edge list. Called once, from the module initialiser.
pub(crate) fn init() {
    // SAFETY: Called exactly once, before first use.
    unsafe { EDGES.init() };
}

/// Longest chain of edges starting at `from` (`down`) or ending at it (`!down`).
fn depth(edges: &[(usize, usize)], from: usize, down: bool, limit: usize) -> usize {
    if limit == 0 {
        return 0;
    }
    edges
        .iter()
        .filter(|&&(a, b)| if down { a == from } else { b == from })
        .map(|&(a, b)| 1 + depth(edges, if down { b } else { a }, down, limit - 1))
        .max()
        .unwrap_or(0)
}

/// Whether `to` can be reached from `from` along the edges.
fn reaches(edges: &[(usize, usize)], from: usize, to: usize, limit: usize) -> bool {
    from == to
        || (limit > 0
            && edges
                .iter()
                .any(|&(a, b)| a == from && reaches(edges, b, to, limit - 1)))
}

/// The edge "`watcher` watches `watched`" while it exists; removed on drop.
pub(crate) struct Edge {
    watcher: usize,
    watched: usize,
}

impl Edge {
    /// Adds the edge: `ELOOP` if it would close a cycle or make a chain longer than
    /// [`MAX_NESTS`]. Queues are named by address, for identity only.
    pub(crate) fn new(watcher: usize, watched: usize) -> Result<Edge> {
        let mut edges = EDGES.lock();
        // The existing edges have no cycle and no chain longer than `MAX_NESTS`, so these
        // walks are bounded; the limits only make that explicit.
        if reaches(&edges, watched, watcher, MAX_NESTS + 1)
            || depth(&edges, watcher, false, MAX_NESTS + 1)
                + 1
                + depth(&edges, watched, true, MAX_NESTS + 1)
                > MAX_NESTS
        {
            return Err(ELOOP);
        }
        edges.push((watcher, watched), GFP_KERNEL)?;
        Ok(Edge { watcher, watched })
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        let mut edges = EDGES.lock();
        if let Some(i) = edges
            .iter()
            .position(|&e| e == (self.watcher, self.watched))
        {
            let _ = edges.remove(i);
        }
    }
}

#[kunit_tests(kevent_nest)]
mod tests {
    use super::*;

    #[test]
    fn loops_and_depth() {
        let ab = Edge::new(0xa, 0xb).unwrap();
        // b -> a would close a loop; so would a -> a.
        assert_eq!(Edge::new(0xb, 0xa).err(), Some(ELOOP));
        assert_eq!(Edge::new(0xa, 0xa).err(), Some(ELOOP));
        let bc = Edge::new(0xb, 0xc).unwrap();
        let cd = Edge::new(0xc, 0xd).unwrap();
        // a -> b -> c -> d -> e is four edges: still allowed; a fifth is not.
        let de = Edge::new(0xd, 0xe).unwrap();
        assert_eq!(Edge::new(0xe, 0xf).err(), Some(ELOOP));
        assert_eq!(Edge::new(0x9, 0xa).err(), Some(ELOOP));
        assert_eq!(Edge::new(0xe, 0xa).err(), Some(ELOOP));
        drop(de);
        let ef = Edge::new(0x9, 0xa).unwrap();
        drop((ab, bc, cd, ef));
        // All gone: the reverse edge is fine now.
        drop(Edge::new(0xb, 0xa).unwrap());
    }
}
