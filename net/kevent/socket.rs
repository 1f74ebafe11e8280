// SPDX-License-Identifier: GPL-2.0

//! kevent: the socket source (`KEVENT_TYPE_SOCKET`).
//!
//! Every `struct sock` embeds a `struct kevent_storage`, `sk_kevent` (8 bytes; `NULL` until a
//! kevent is registered on the socket). The callbacks through which the network stack already
//! signals readiness (`sock_def_readable()`, `sock_def_write_space()`, `sk_stream_write_space()`,
//! `unix_write_space()`, `sock_def_wakeup()`, `sock_def_error_report()`) call
//! `sk_kevent_ready()` with a coarse mask of what the callback may mean (`SK_KEVENT_*` in
//! `<net/sock.h>`). This source gives the kevent core the rest: the lookup of a socket by file
//! descriptor, and its level state, read from the socket's own fields (not a `->poll` call),
//! which narrows the coarse mask at delivery.
//!
//! A kevent holds a reference to the `struct sock` while it is registered, and follows the
//! descriptor it was registered by: closing that descriptor removes it. So a socket's storage is
//! only finalised (`__sk_destruct()`) when no kevent is left on it.
//!
//! `struct sock` is not in the bindings, and what this source reads of it is inline helpers and
//! fields: it reaches them through `sock_glue.c`, whose functions each wrap one helper or read
//! one field (`KEVENT_SOCK_*` in `sock_glue.h`). The logic is here.
//!
//! See Documentation/kevent.rst.

use core::ptr::NonNull;
use kernel::{
    bindings,
    fs::LocalFile,
    kevent::{self, Storage, Ukevent},
    prelude::*,
    sync::{
        aref::{ARef, AlwaysRefCounted},
        barrier::{smp_mb, Read},
    },
    types::Opaque,
    uapi::{
        KEVENT_SOCKET_ACCEPT, KEVENT_SOCKET_CONNECT, KEVENT_SOCKET_ERR, KEVENT_SOCKET_HUP,
        KEVENT_SOCKET_RECV, KEVENT_SOCKET_SEND, KEVENT_TYPE_SOCKET,
    },
};

module! {
    type: SocketSource,
    name: "kevent_socket",
    authors: ["kevent maintainers"],
    description: "kevent socket source",
    license: "GPL",
}

/// The socket source.
struct SocketSource;

/// The mask `sk_data_ready()` notifies, `SK_KEVENT_DATA_READY` in `<net/sock.h>` (checked in
/// `sock_glue.c`): data, or a connection on a listener, was queued.
const DATA_READY: u32 = KEVENT_SOCKET_RECV | KEVENT_SOCKET_ACCEPT;

impl kernel::Module for SocketSource {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        kevent::register::<SocketSource>().inspect_err(|e| {
            pr_err!("cannot register the socket source: {}\n", e.to_errno());
        })?;
        Ok(SocketSource)
    }
}

#[vtable]
impl kevent::Source for SocketSource {
    const TYPE: u32 = KEVENT_TYPE_SOCKET;
    const EVENTS: u32 = KEVENT_SOCKET_RECV
        | KEVENT_SOCKET_SEND
        | KEVENT_SOCKET_ACCEPT
        | KEVENT_SOCKET_CONNECT
        | KEVENT_SOCKET_HUP
        | KEVENT_SOCKET_ERR;
    const FOLLOWS_FD: bool = true;

    type Object = Sock;
    type Ptr = ARef<Sock>;

    /// The socket `uk.id` names, as `sockfd_lookup()` finds it: `EBADF`, or `ENOTSOCK` for a
    /// file that is not a socket.
    fn get(uk: &Ukevent) -> Result<ARef<Sock>> {
        let fd = u32::try_from(uk.id())
            .ok()
            .filter(|&fd| i32::try_from(fd).is_ok())
            .ok_or(EBADF)?;
        let file = LocalFile::fget(fd)?;
        // SAFETY: `file` is a valid file; we hold a reference to it.
        let sock = unsafe { bindings::sock_from_file(file.as_ptr()) };
        if sock.is_null() {
            return Err(ENOTSOCK);
        }
        // SAFETY: `sock` is the socket of `file`, which our reference keeps alive.
        let sk = NonNull::new(unsafe { (*sock).sk }).ok_or(EINVAL)?;
        // SAFETY: The file reference keeps `sock->sk` alive until we hold the sock itself,
        // below.
        let sk = unsafe { Sock::from_raw(sk) };
        Ok(sk.into())
    }

    fn storage(sk: &Sock) -> &Storage {
        sk.storage()
    }

    /// What the callback that notified `events` means, for a kevent of a queue with a ring.
    ///
    /// `sk_data_ready()` (`SK_KEVENT_DATA_READY`) is called when data, or a connection on a
    /// listener, was queued: that is exact, given the state. The other callbacks' masks are
    /// coarse (a state change, an error): they are narrowed by the re-check, which reads the
    /// socket's fields as `tcp_poll()` does, locklessly, so it may run here too.
    fn notified(sk: &Sock, events: u32, requested: u32, data: &mut i64) -> u32 {
        if events == DATA_READY {
            let ready = if sk.listening() {
                KEVENT_SOCKET_ACCEPT
            } else {
                KEVENT_SOCKET_RECV
            };
            return ready & requested;
        }
        Self::recheck(sk, requested, data)
    }

    /// The requested events that the socket's state says are ready, and in `data` the
    /// `-errno` of a pending error if `KEVENT_SOCKET_ERR` is one of them.
    fn recheck(sk: &Sock, events: u32, data: &mut i64) -> u32 {
        let state = sk.state();
        let proto = sk.proto();
        let connected = state & bindings::KEVENT_SOCK_CONNECTED != 0;
        let mut ready = 0;

        if state & bindings::KEVENT_SOCK_LISTEN != 0 {
            if events & KEVENT_SOCKET_ACCEPT != 0 && sk.acceptable(proto) {
                ready |= KEVENT_SOCKET_ACCEPT;
            }
        } else {
            // The peer will send nothing more: EOF is readable.
            if state & bindings::KEVENT_SOCK_RCV_SHUTDOWN != 0 {
                ready |= KEVENT_SOCKET_HUP | KEVENT_SOCKET_RECV;
            } else if events & KEVENT_SOCKET_RECV != 0 && sk.readable(proto) {
                ready |= KEVENT_SOCKET_RECV;
            }
            if connected {
                ready |= KEVENT_SOCKET_CONNECT;
            }
            if events & KEVENT_SOCKET_SEND != 0
                && state & bindings::KEVENT_SOCK_SEND_SHUTDOWN == 0
                && (connected || state & bindings::KEVENT_SOCK_STREAM == 0)
                && sk.writable(proto)
            {
                ready |= KEVENT_SOCKET_SEND;
            }
        }
        // Pairs with the `smp_wmb()` in `tcp_done_with_error()`, as in `tcp_poll()`.
        smp_mb(Read);
        let err = sk.error();
        if err != 0 && events & KEVENT_SOCKET_ERR != 0 {
            ready |= KEVENT_SOCKET_ERR;
            *data = -i64::from(err);
        }
        ready & events
    }
}

/// A `struct sock`.
///
/// # Invariants
///
/// Instances are reference counted with `sock_hold()` and `sock_put()`.
#[repr(transparent)]
struct Sock(Opaque<bindings::sock>);

// SAFETY: By the type invariants the sock is reference counted, and `sock_hold()` keeps it alive
// until the matching `sock_put()`.
unsafe impl AlwaysRefCounted for Sock {
    fn inc_ref(&self) {
        // SAFETY: The existence of a shared reference means that the refcount is nonzero.
        unsafe { bindings::kevent_sock_hold(self.as_raw()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller passes us ownership of a reference, so we may drop it. The cast is
        // fine since `Sock` is a transparent wrapper of `struct sock`.
        unsafe { bindings::kevent_sock_put(obj.cast().as_ptr()) };
    }
}

// SAFETY: A `struct sock` may be referenced and released from any thread.
unsafe impl Send for Sock {}

// SAFETY: The methods of `Sock` only read the socket with `READ_ONCE()` or lockless helpers, and
// set one atomic bit, so they may run on several threads at once.
unsafe impl Sync for Sock {}

impl Sock {
    /// Creates a reference to a [`Sock`] from a valid pointer.
    ///
    /// # Safety
    ///
    /// `ptr` points to a `struct sock` whose refcount is positive for the duration of `'a`.
    unsafe fn from_raw<'a>(ptr: NonNull<bindings::sock>) -> &'a Self {
        // SAFETY: `Sock` is a transparent wrapper of `struct sock`, valid for `'a` per the safety
        // requirements.
        unsafe { ptr.cast::<Self>().as_ref() }
    }

    fn as_raw(&self) -> *mut bindings::sock {
        self.0.get()
    }

    /// The socket's kevent storage, `sk_kevent`.
    fn storage(&self) -> &Storage {
        // SAFETY: The sock is valid, and it calls `kevent_storage_fini()` only from
        // `__sk_destruct()`, once its last reference is gone: not while `&self` lives.
        unsafe { Storage::from_raw(bindings::kevent_sock_storage(self.as_raw())) }
    }

    /// Its state, as `KEVENT_SOCK_*` bits.
    fn state(&self) -> u32 {
        // SAFETY: The sock is valid.
        unsafe { bindings::kevent_sock_state(self.as_raw()) }
    }

    /// It is a listening socket (`KEVENT_SOCK_LISTEN` of [`Sock::state`] alone).
    fn listening(&self) -> bool {
        // SAFETY: The sock is valid.
        unsafe { bindings::kevent_sock_listening(self.as_raw()) }
    }

    /// Its protocol, `KEVENT_SOCK_TCP`, `_UDP`, `_UNIX` or `_OTHER`.
    fn proto(&self) -> u32 {
        // SAFETY: The sock is valid.
        unsafe { bindings::kevent_sock_proto(self.as_raw()) }
    }

    /// Its pending error, a positive errno, or 0.
    fn error(&self) -> i32 {
        // SAFETY: The sock is valid.
        unsafe { bindings::kevent_sock_error(self.as_raw()) }
    }

    /// Data (or, for TCP, enough data to pass `SO_RCVLOWAT`) waits to be read.
    fn readable(&self, proto: u32) -> bool {
        let sk = self.as_raw();
        // SAFETY: The sock is valid, and of the protocol each helper is for.
        unsafe {
            match proto {
                bindings::KEVENT_SOCK_TCP => {
                    bindings::kevent_sock_tcp_rx_ready(sk) || bindings::kevent_sock_is_readable(sk)
                }
                // UDP moves datagrams to a queue of its own as they are read.
                bindings::KEVENT_SOCK_UDP if bindings::kevent_sock_udp_rx_queued(sk) => true,
                _ => bindings::kevent_sock_rx_queued(sk) || bindings::kevent_sock_is_readable(sk),
            }
        }
    }

    /// A listening socket has a connection waiting to be accepted.
    fn acceptable(&self, proto: u32) -> bool {
        let sk = self.as_raw();
        // SAFETY: The sock is valid, and a TCP socket for the TCP helper.
        unsafe {
            if proto == bindings::KEVENT_SOCK_TCP {
                bindings::kevent_sock_tcp_accept_queued(sk)
            } else {
                // AF_UNIX queues the embryonic connections on the listener.
                bindings::kevent_sock_rx_queued(sk)
            }
        }
    }

    /// The send buffer has room; the caller checked the state and shutdown.
    fn writable(&self, proto: u32) -> bool {
        let sk = self.as_raw();
        // SAFETY: The sock is valid, and of the protocol each helper is for.
        unsafe {
            match proto {
                bindings::KEVENT_SOCK_TCP => {
                    if bindings::kevent_sock_stream_writeable(sk) {
                        return true;
                    }
                    // As `tcp_poll()`: mark the socket so that TCP calls back when room
                    // appears, then look again in case it appeared in between.
                    bindings::kevent_sock_set_nospace(sk);
                    bindings::kevent_sock_stream_writeable(sk)
                }
                bindings::KEVENT_SOCK_UNIX => bindings::kevent_sock_unix_writeable(sk),
                _ => bindings::kevent_sock_writeable(sk),
            }
        }
    }
}
