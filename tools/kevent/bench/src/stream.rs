// SPDX-License-Identifier: GPL-2.0

//! Case 6: one-way stream throughput with blocking I/O and no event
//! mechanism at all.
//!
//! A sender thread writes M-byte messages with blocking `write()`s and a
//! receiver thread takes them with blocking `read()`s of at most the rest
//! of the current message, over a TCP connection on 127.0.0.1 or a UNIX
//! stream socket pair. Neither socket is registered with epoll, kevent or
//! io_uring: what is measured is the socket send and receive paths with
//! the readiness callbacks they always make (`sk_data_ready`,
//! `sk_write_space`, `sk_state_change`) and nobody but a blocked reader or
//! writer waiting. Run on kernels with and without the kevent socket hooks,
//! it shows what the hooks cost sockets that do not use kevent.
//!
//! Each run moves a fixed amount of data (4 MiB in 128-byte messages, 64 MiB
//! in 64 KiB messages; a quarter of that with `--quick`) over a new
//! connection: TCP, a new listener on a port the kernel picks
//! (`SO_REUSEADDR`), a blocking `connect()` and `accept()`, `TCP_NODELAY`
//! off (Nagle on, the default); UNIX, a new blocking `socketpair()`. Both
//! ends get 30 s `SO_SNDTIMEO`/`SO_RCVTIMEO`, so a stall fails the run
//! instead of hanging it. Timed: from both threads passing a barrier to the
//! receiver's last byte; MB/s counts 10^6 bytes. The system calls are each
//! side's `write()` and `read()` calls in the timed region, counted by the
//! `sys.rs` wrappers, per message.
//!
//! Checks per run: the receiver got exactly the bytes sent, then end of
//! file; every message starts with its sequence number; the wrapping sum of
//! all 64-bit words received equals the sum of those sent (computed from
//! the sender's message pattern, not from the data). The receiver sums
//! every word inside the timed region, the same cost on every kernel.
//!
//! The threads are placed as echo's (`--echo-cpus`): both on CPU 0 by
//! default, sender on CPU 0 and receiver on CPU 1 with `split`, unbound
//! with `any`.

use std::fmt::Write as _;
use std::io;
use std::mem;
use std::net::{Ipv4Addr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crate::stats::{self, num, per, Table};
use crate::sys;
use crate::{EchoCpus, Env, Need};

const SMALL: usize = 128;
const LARGE: usize = 64 << 10;
const STALL: Duration = Duration::from_secs(30);

/// A connected stream socket pair: TCP over 127.0.0.1 or UNIX (shared with the AIO case).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Tcp,
    Unix,
}

impl Transport {
    /// A new connection: (sending end, receiving end), blocking.
    pub(crate) fn connect(self) -> Result<(OwnedFd, OwnedFd), String> {
        match self {
            Transport::Tcp => tcp_pair().map_err(|e| format!("TCP connection: {e}")),
            Transport::Unix => unix_pair().map_err(|e| format!("socketpair: {e}")),
        }
    }
}

/// One row: a transport, a message size and the data per run.
#[derive(Clone, Copy)]
struct Spec {
    transport: Transport,
    msg: usize,
    total: usize,
}

impl Spec {
    fn all(quick: bool) -> Vec<Spec> {
        let scale = if quick { 4 } else { 1 };
        let mut v = Vec::new();
        for transport in [Transport::Tcp, Transport::Unix] {
            for (msg, total) in [(SMALL, 4 << 20), (LARGE, 64 << 20)] {
                v.push(Spec {
                    transport,
                    msg,
                    total: total / scale,
                });
            }
        }
        v
    }

    fn name(self) -> &'static str {
        match (self.transport, self.msg) {
            (Transport::Tcp, SMALL) => "TCP 127.0.0.1, 128 B",
            (Transport::Tcp, _) => "TCP 127.0.0.1, 64 KiB",
            (Transport::Unix, SMALL) => "UNIX stream, 128 B",
            (Transport::Unix, _) => "UNIX stream, 64 KiB",
        }
    }

    fn messages(self) -> u64 {
        (self.total / self.msg) as u64
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// 10^6 bytes per second.
    pub mbps: f64,
    pub ns_per_msg: f64,
    /// The sender's and the receiver's system calls per message.
    pub sc_send: f64,
    pub sc_recv: f64,
}

fn owned(ret: i32) -> io::Result<OwnedFd> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: a new descriptor nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(ret) })
    }
}

pub(crate) fn setsockopt<T>(fd: RawFd, level: i32, opt: i32, v: &T) -> io::Result<()> {
    // SAFETY: `v` is valid for reads of `size_of::<T>()` bytes.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (v as *const T).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A blocking TCP connection over 127.0.0.1: (connecting end, accepted
/// end). A new listener each time, on a port the kernel picks, with
/// `SO_REUSEADDR`; `TCP_NODELAY` is left off.
pub(crate) fn tcp_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    // SAFETY: no pointers.
    let l =
        owned(unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?;
    setsockopt(l.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, &1i32)?;
    let mut sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(Ipv4Addr::LOCALHOST).to_be(),
        },
        sin_zero: [0; 8],
    };
    let mut len = mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: `sa` is a valid sockaddr_in of `len` bytes.
    if unsafe { libc::bind(l.as_raw_fd(), (&sa as *const libc::sockaddr_in).cast(), len) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: no pointers.
    if unsafe { libc::listen(l.as_raw_fd(), 1) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `sa` has room for a sockaddr_in, `len` says how much.
    if unsafe {
        libc::getsockname(
            l.as_raw_fd(),
            (&mut sa as *mut libc::sockaddr_in).cast(),
            &mut len,
        )
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    // Blocking, close-on-exec, Nagle on.
    let c = TcpStream::connect((Ipv4Addr::LOCALHOST, u16::from_be(sa.sin_port)))?;
    // SAFETY: null addresses are allowed.
    let a = owned(unsafe {
        libc::accept4(
            l.as_raw_fd(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC,
        )
    })?;
    Ok((OwnedFd::from(c), a))
}

/// A blocking `AF_UNIX` `SOCK_STREAM` pair.
pub(crate) fn unix_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: two new descriptors nothing else owns.
    unsafe { Ok((OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))) }
}

/// The sender's message: the sequence number in the first word (written per
/// message), then a fixed pattern.
fn pattern(msg: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut v = Vec::with_capacity(msg);
    while v.len() < msg {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_ne_bytes());
    }
    v
}

/// Wrapping sum of the 64-bit words of `b` (a multiple of 8 bytes long).
#[inline]
fn word_sum(b: &[u8]) -> u64 {
    b.chunks_exact(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
        .fold(0, u64::wrapping_add)
}

/// The word sum of everything the sender sends for `s`.
fn expected_sum(s: Spec) -> u64 {
    let n = s.messages();
    let body = word_sum(&pattern(s.msg)[8..]);
    // Sequence numbers 0..n, plus n bodies.
    let seqs = (n as u128 * (n as u128).saturating_sub(1) / 2) as u64;
    n.wrapping_mul(body).wrapping_add(seqs)
}

/// Sends `s.messages()` messages on `fd` and closes it (also on error, so
/// that a blocked receiver sees end of file). Returns the system calls
/// counted in the timed loop.
fn sender(fd: OwnedFd, s: Spec, start: &Barrier) -> Result<u64, String> {
    let mut buf = pattern(s.msg);
    let raw = fd.as_raw_fd();
    start.wait();
    let sc0 = sys::syscalls();
    for seq in 0..s.messages() {
        buf[..8].copy_from_slice(&seq.to_ne_bytes());
        let mut off = 0;
        while off < s.msg {
            match sys::write(raw, &buf[off..]) {
                Ok(k) => off += k,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) => return Err(format!("write of message {seq}: {e}")),
            }
        }
    }
    Ok(sys::syscalls() - sc0)
}

struct Received {
    elapsed: Duration,
    syscalls: u64,
}

/// Receives `s.messages()` messages on `fd`, checks them, then waits for
/// end of file.
fn receiver(fd: OwnedFd, s: Spec, start: &Barrier) -> Result<Received, String> {
    let mut buf = sys::touched(s.msg);
    let raw = fd.as_raw_fd();
    let mut bytes = 0u64;
    let mut sum = 0u64;
    let read = |buf: &mut [u8], bytes: u64| loop {
        match sys::read(raw, buf) {
            Ok(0) => return Err(format!("end of file after {bytes} of {} bytes", s.total)),
            Ok(k) => return Ok(k),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) if sys::is_eagain(&e) => {
                return Err(format!("no data for {STALL:?} after {bytes} bytes"))
            }
            Err(e) => return Err(format!("read after {bytes} bytes: {e}")),
        }
    };
    start.wait();
    let sc0 = sys::syscalls();
    let t0 = Instant::now();
    for seq in 0..s.messages() {
        let mut got = 0;
        while got < s.msg {
            let k = read(&mut buf[got..], bytes)?;
            got += k;
            bytes += k as u64;
        }
        let first = u64::from_ne_bytes(buf[..8].try_into().unwrap());
        if first != seq {
            return Err(format!("message {seq} starts with {first}"));
        }
        sum = sum.wrapping_add(word_sum(&buf));
    }
    let elapsed = t0.elapsed();
    let syscalls = sys::syscalls() - sc0;
    match sys::read(raw, &mut buf) {
        Ok(0) => {}
        Ok(k) => return Err(format!("{k} bytes more than the {} sent", s.total)),
        Err(e) => return Err(format!("read for end of file: {e}")),
    }
    if sum != expected_sum(s) {
        return Err(format!(
            "checksum {sum:#x} of the data received, {:#x} sent",
            expected_sum(s)
        ));
    }
    Ok(Received { elapsed, syscalls })
}

fn run_one(s: Spec, pin: EchoCpus) -> Result<Sample, String> {
    let (tx, rx) = s.transport.connect()?;
    let stall = libc::timeval {
        tv_sec: STALL.as_secs() as _,
        tv_usec: 0,
    };
    for fd in [&tx, &rx] {
        for opt in [libc::SO_SNDTIMEO, libc::SO_RCVTIMEO] {
            setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, opt, &stall)
                .map_err(|e| format!("setsockopt: {e}"))?;
        }
    }
    let start = Arc::new(Barrier::new(2));
    let st = Arc::clone(&start);
    let recv = thread::Builder::new()
        .name("stream-receiver".into())
        .spawn(move || {
            match pin {
                EchoCpus::Same => sys::pin_to(0),
                EchoCpus::Split => sys::pin_to(1),
                EchoCpus::Any => true,
            };
            receiver(rx, s, &st)
        })
        .map_err(|e| format!("spawning the receiver: {e}"))?;
    let saved = sys::affinity();
    if pin != EchoCpus::Any {
        sys::pin_to(0);
    }
    // The sender closes its end when it returns, so the receiver ends too.
    let sent = sender(tx, s, &start);
    if let Some(a) = saved {
        sys::set_affinity(&a);
    }
    let got = recv
        .join()
        .map_err(|p| format!("receiver panicked: {:?}", p.downcast_ref::<&str>()))?;
    // The receiver's error is the cause when both failed (a sender's EPIPE
    // follows a receiver that gave up).
    let (sc_send, got) = match (sent, got) {
        (Ok(sc), Ok(g)) => (sc, g),
        (_, Err(e)) => return Err(format!("receiver: {e}")),
        (Err(e), _) => return Err(format!("sender: {e}")),
    };
    let n = s.messages() as f64;
    let secs = got.elapsed.as_secs_f64();
    Ok(Sample {
        mbps: s.total as f64 / secs / 1e6,
        ns_per_msg: got.elapsed.as_nanos() as f64 / n,
        sc_send: sc_send as f64 / n,
        sc_recv: got.syscalls as f64 / n,
    })
}

pub fn run(env: &Env) -> String {
    let specs = Spec::all(env.quick);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Stream throughput, no event mechanism\n\n\
         One sender and one receiver thread, blocking `write()`/`read()`, no \
         epoll, kevent or io_uring on the sockets: the cost of the socket paths \
         and their readiness callbacks (compare kernels with and without the \
         kevent socket hooks). Per run a new connection (TCP over 127.0.0.1, \
         Nagle on; or a UNIX stream socketpair) carries {} MiB in 128-byte \
         messages or {} MiB in 64 KiB messages, checked (byte count, sequence \
         numbers, checksum). MB/s = 10^6 bytes/s, first write to last byte \
         read. Syscalls: `write()`s and `read()`s per message. {} runs each. {}\n",
        specs[0].total >> 20,
        specs[1].total >> 20,
        env.runs,
        match env.echo_cpus {
            EchoCpus::Same => "Sender and receiver both bound to CPU 0 (`--echo-cpus same`).",
            EchoCpus::Split => "Sender bound to CPU 0, receiver to CPU 1 (`--echo-cpus split`).",
            EchoCpus::Any => "Threads not bound to CPUs (`--echo-cpus any`).",
        }
    );
    eprintln!("stream: {} rows", specs.len());
    let results = env.compare(
        &specs,
        |s| (s.name(), Need::Nothing),
        |s| run_one(s, env.echo_cpus),
        |r| {
            format!(
                "{} MB/s, {} ns/message, {} + {} syscalls/message",
                num(r.mbps),
                num(r.ns_per_msg),
                per(r.sc_send),
                per(r.sc_recv)
            )
        },
    );
    let mut t = Table::new(
        "Stream: blocking write/read, no event mechanism",
        &[
            "transport, message",
            "MB/s (median)",
            "min–max",
            "ns/message (median)",
            "min–max",
            "sender syscalls/message",
            "receiver syscalls/message",
        ],
    );
    for (s, o) in &results {
        if t.row_outcome(&[s.name()], o) {
            continue;
        }
        let v = o.samples().unwrap_or_default();
        let mb = stats::summarize_by(v, |r| r.mbps);
        let ns = stats::summarize_by(v, |r| r.ns_per_msg);
        t.row(vec![
            s.name().into(),
            num(mb.median),
            stats::range(&mb),
            num(ns.median),
            stats::range(&ns),
            per(stats::summarize_by(v, |r| r.sc_send).median),
            per(stats::summarize_by(v, |r| r.sc_recv).median),
        ]);
    }
    out += &t.render();
    out.push('\n');
    out
}
