// SPDX-License-Identifier: GPL-2.0

//! Case 4: a TCP echo server over 127.0.0.1.
//!
//! One server thread per run, driven by the mechanism under test; one
//! client thread (the main thread), the same for every mechanism: an epoll
//! loop over C non-blocking connections, each doing request/response
//! ping-pong with 128-byte messages for a fixed duration, then waiting for
//! the last responses. Requests per second = responses / (first request to
//! last response). Each run uses a new listener on a port the kernel picks
//! (`SO_REUSEADDR`, backlog 1024); connections are made and accepted before
//! the timed part.
//!
//! The server, per readiness report: `read()` up to 4096 bytes, `write()`
//! them back, again while the read filled the buffer (so it is correct
//! under edge triggering too); EOF closes the connection. Its system calls
//! are counted from the moment it has accepted all C connections to its
//! last echo `write()` (the EOF handling after the client stops is left
//! out), divided by the number of requests:
//! - epoll LT: `epoll_wait`, `read`, `write`;
//! - kevent (poll source or socket source): `kevent_get_events`, `read`,
//!   `write`;
//! - io_uring poll multishot: `io_uring_enter` when the completion queue is
//!   empty, `read`, `write`.
//!
//! Checks per run: every response equals its request (connection, sequence
//! number and payload), the server echoed exactly 128 bytes per response,
//! and every connection ended cleanly.
//!
//! By default both threads are bound to CPU 0 (`--echo-cpus same`): with
//! the two on different CPUs, a single connection's ping-pong mostly
//! measures how fast an idle vCPU wakes up, which varies several-fold from
//! run to run. `--echo-cpus split` puts the server on CPU 1, `any` leaves
//! placement to the scheduler.

use std::fmt::Write as _;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::notify::{self, Notifier, BATCH};
use crate::stats::{self, num, per, ratio, Table};
use crate::sys;
use crate::{EchoCpus, Env, Need};

const MSG: usize = 128;
const STALL: Duration = Duration::from_secs(30);
/// Written to the "accepted" counter by a server that gave up.
const SERVER_GONE: usize = usize::MAX;

#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub rps: f64,
    pub sc: f64,
    pub requests: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mech {
    EpollLt,
    KeventLt,
    KeventSocket,
    UringPoll,
}

impl Mech {
    const ALL: [Mech; 4] = [
        Mech::EpollLt,
        Mech::KeventLt,
        Mech::KeventSocket,
        Mech::UringPoll,
    ];

    fn name(self) -> &'static str {
        match self {
            Mech::EpollLt => "epoll LT",
            Mech::KeventLt => "kevent LT (poll source)",
            Mech::KeventSocket => "kevent (socket source)",
            Mech::UringPoll => "io_uring poll multishot",
        }
    }

    fn need(self) -> Need {
        match self {
            Mech::EpollLt => Need::Nothing,
            Mech::KeventLt => Need::Kevent,
            Mech::KeventSocket => Need::KeventSocket,
            Mech::UringPoll => Need::Uring,
        }
    }

    fn notifier(self, n: usize) -> Result<Box<dyn Notifier>, String> {
        Ok(match self {
            Mech::EpollLt => Box::new(notify::Epoll::new(false)?),
            Mech::KeventLt => Box::new(notify::Kevent::new(false, false)?),
            Mech::KeventSocket => Box::new(notify::Kevent::new(true, false)?),
            Mech::UringPoll => Box::new(notify::Uring::new(n)?),
        })
    }
}

struct ServerResult {
    bytes: u64,
    syscalls: u64,
}

fn server(
    listener: OwnedFd,
    expected: usize,
    mech: Mech,
    accepted: &AtomicUsize,
) -> Result<ServerResult, String> {
    let lfd = listener.as_raw_fd();
    let ltoken = expected as u64;
    let mut nt = mech.notifier(expected + 1)?;
    nt.add(lfd, ltoken, true)?;
    nt.flush()?;
    let mut conns: Vec<Option<OwnedFd>> = Vec::with_capacity(expected);
    let mut closed = 0;
    let mut ready = Vec::with_capacity(BATCH);
    let mut buf = vec![0u8; 4096];
    let mut bytes = 0u64;
    let mut sc_base = None;
    let mut sc_last = 0;
    while closed < expected {
        nt.wait(&mut ready, STALL)?;
        if ready.is_empty() {
            return Err(format!(
                "no event for {STALL:?}: {} accepted, {closed} closed, {bytes} bytes echoed",
                conns.len()
            ));
        }
        for &t in &ready {
            if t == ltoken {
                while let Some(fd) = sys::tcp_accept(lfd).map_err(|e| format!("accept: {e}"))? {
                    if conns.len() == expected {
                        return Err("more connections than expected".into());
                    }
                    nt.add(fd.as_raw_fd(), conns.len() as u64, false)?;
                    conns.push(Some(fd));
                }
                nt.flush()?;
                accepted.store(conns.len(), Ordering::Release);
                if conns.len() == expected && sc_base.is_none() {
                    sc_base = Some(sys::syscalls());
                }
                continue;
            }
            let idx = t as usize;
            let fd = match conns.get(idx) {
                Some(Some(fd)) => fd.as_raw_fd(),
                Some(None) => continue, // a late report for a closed connection
                None => return Err(format!("event for unknown token {t}")),
            };
            loop {
                match sys::read(fd, &mut buf) {
                    Ok(0) => {
                        nt.remove(fd, t)?;
                        conns[idx] = None;
                        closed += 1;
                        break;
                    }
                    Ok(k) => {
                        match sys::write(fd, &buf[..k]) {
                            Ok(m) if m == k => {}
                            r => return Err(format!("echo write of {k} bytes: {r:?}")),
                        }
                        bytes += k as u64;
                        sc_last = sys::syscalls();
                        if k < buf.len() {
                            break;
                        }
                    }
                    Err(e) if sys::is_eagain(&e) => break,
                    Err(e) => return Err(format!("read: {e}")),
                }
            }
        }
    }
    Ok(ServerResult {
        bytes,
        syscalls: sc_last.saturating_sub(sc_base.unwrap_or(sc_last)),
    })
}

fn request(conn: usize, seq: u32) -> [u8; MSG] {
    let mut m = [0u8; MSG];
    m[..4].copy_from_slice(&(conn as u32).to_le_bytes());
    m[4..8].copy_from_slice(&seq.to_le_bytes());
    for (i, b) in m[8..].iter_mut().enumerate() {
        *b = (i as u32 ^ seq ^ conn as u32) as u8;
    }
    m
}

struct ClientConn {
    fd: OwnedFd,
    seq: u32,
    got: usize,
    buf: [u8; MSG],
}

struct ClientResult {
    responses: u64,
    elapsed: Duration,
}

fn send(c: &ClientConn, idx: usize) -> Result<(), String> {
    let m = request(idx, c.seq);
    // SAFETY: `m` is valid for reads of MSG bytes.
    let r = unsafe { libc::write(c.fd.as_raw_fd(), m.as_ptr().cast(), MSG) };
    if r != MSG as isize {
        return Err(format!(
            "client write on connection {idx}: {r} ({})",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

fn client(
    port: u16,
    n: usize,
    duration: Duration,
    accepted: &AtomicUsize,
) -> Result<ClientResult, String> {
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let fd = sys::tcp_connect(port).map_err(|e| format!("connect #{i}: {e}"))?;
        conns.push(ClientConn {
            fd,
            seq: 0,
            got: 0,
            buf: [0; MSG],
        });
    }
    let t_acc = Instant::now();
    loop {
        match accepted.load(Ordering::Acquire) {
            SERVER_GONE => return Err("the server stopped".into()),
            a if a == n => break,
            _ if t_acc.elapsed() > STALL => return Err("the server did not accept".into()),
            _ => thread::sleep(Duration::from_millis(1)),
        }
    }
    let ep = sys::epoll_create().map_err(|e| format!("epoll_create1: {e}"))?;
    let ep = ep.as_raw_fd();
    for (i, c) in conns.iter().enumerate() {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: i as u64,
        };
        // SAFETY: `ev` is valid for the call.
        if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, c.fd.as_raw_fd(), &mut ev) } < 0 {
            return Err(format!("epoll_ctl: {}", std::io::Error::last_os_error()));
        }
    }
    let mut evs = vec![libc::epoll_event { events: 0, u64: 0 }; BATCH];
    let t0 = Instant::now();
    let deadline = t0 + duration;
    for (i, c) in conns.iter().enumerate() {
        send(c, i)?;
    }
    let mut outstanding = n;
    let mut responses = 0u64;
    while outstanding > 0 {
        // SAFETY: `evs` holds BATCH writable entries.
        let k = unsafe {
            libc::epoll_wait(ep, evs.as_mut_ptr(), BATCH as i32, STALL.as_millis() as i32)
        };
        if k < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(format!("client epoll_wait: {e}"));
        }
        if k == 0 {
            return Err(format!(
                "no response for {STALL:?}: {responses} so far, {outstanding} connections waiting"
            ));
        }
        let sending = Instant::now() < deadline;
        for e in &evs[..k as usize] {
            let i = e.u64 as usize;
            let c = &mut conns[i];
            loop {
                let want = MSG - c.got;
                // SAFETY: `c.buf[c.got..]` is valid for writes of `want` bytes.
                let r = unsafe {
                    libc::read(c.fd.as_raw_fd(), c.buf[c.got..].as_mut_ptr().cast(), want)
                };
                if r < 0 {
                    let e = std::io::Error::last_os_error();
                    if sys::is_eagain(&e) {
                        break;
                    }
                    return Err(format!("client read on connection {i}: {e}"));
                }
                if r == 0 {
                    return Err(format!("the server closed connection {i}"));
                }
                c.got += r as usize;
                if c.got < MSG {
                    continue;
                }
                if c.buf != request(i, c.seq) {
                    return Err(format!(
                        "connection {i}: response {} differs from its request",
                        c.seq
                    ));
                }
                responses += 1;
                c.got = 0;
                if sending {
                    c.seq += 1;
                    send(c, i)?;
                } else {
                    outstanding -= 1;
                }
                break;
            }
        }
    }
    let elapsed = t0.elapsed();
    drop(conns);
    Ok(ClientResult { responses, elapsed })
}

fn run_one(mech: Mech, n: usize, duration: Duration, pin: EchoCpus) -> Result<Sample, String> {
    let (listener, port) = sys::tcp_listener().map_err(|e| format!("listener: {e}"))?;
    let accepted = Arc::new(AtomicUsize::new(0));
    let acc = Arc::clone(&accepted);
    let srv = thread::Builder::new()
        .name("echo-server".into())
        .spawn(move || {
            match pin {
                EchoCpus::Same => sys::pin_to(0),
                EchoCpus::Split => sys::pin_to(1),
                EchoCpus::Any => true,
            };
            let r = server(listener, n, mech, &acc);
            if r.is_err() {
                acc.store(SERVER_GONE, Ordering::Release);
            }
            r
        })
        .map_err(|e| format!("spawning the server: {e}"))?;
    let saved = sys::affinity();
    if pin != EchoCpus::Any {
        sys::pin_to(0);
    }
    let cl = client(port, n, duration, &accepted);
    if let Some(s) = saved {
        sys::set_affinity(&s);
    }
    // The client has closed its connections (also on error), so the server
    // sees EOF on each and returns.
    let sr = srv
        .join()
        .map_err(|p| format!("server panicked: {:?}", p.downcast_ref::<&str>()))?;
    let (cl, sr) = match (cl, sr) {
        (Ok(c), Ok(s)) => (c, s),
        (Err(e), _) => return Err(format!("client: {e}")),
        (_, Err(e)) => return Err(format!("server: {e}")),
    };
    if sr.bytes != cl.responses * MSG as u64 {
        return Err(format!(
            "server echoed {} bytes for {} responses of {MSG}",
            sr.bytes, cl.responses
        ));
    }
    if cl.responses == 0 {
        return Err("no request completed".into());
    }
    Ok(Sample {
        rps: cl.responses as f64 / cl.elapsed.as_secs_f64(),
        sc: sr.syscalls as f64 / cl.responses as f64,
        requests: cl.responses,
    })
}

pub fn run(env: &Env) -> String {
    // KEVENT_BENCH_ECHO_MS overrides the time per run (dev/kevent bench sets it when the guest
    // clock counts instructions, where a virtual second is a billion of them).
    let duration = match std::env::var("KEVENT_BENCH_ECHO_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&ms| ms > 0)
    {
        Some(ms) => Duration::from_millis(ms),
        None if env.quick => Duration::from_millis(300),
        None => Duration::from_secs(1),
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## TCP echo over 127.0.0.1\n\n\
         One server thread per mechanism; one client thread (epoll, the same for \
         all) with C connections doing 128-byte request/response ping-pong for \
         {} ms per run. Requests/s = responses / (first request to last response). \
         Syscalls are the server's, per request. Ratio to epoll LT (medians). {} \
         runs each. {}\n",
        duration.as_millis(),
        env.runs,
        match env.echo_cpus {
            EchoCpus::Same => "Client and server threads both bound to CPU 0 (`--echo-cpus same`).",
            EchoCpus::Split => "Client bound to CPU 0, server to CPU 1 (`--echo-cpus split`).",
            EchoCpus::Any => "Threads not bound to CPUs (`--echo-cpus any`).",
        }
    );
    for n in [1usize, 50, 500] {
        eprintln!("echo: {n} connections");
        let results = env.compare(
            &Mech::ALL,
            |m| (m.name(), m.need()),
            |m| run_one(m, n, duration, env.echo_cpus),
            |s| {
                format!(
                    "{} requests/s ({} requests), {} server syscalls/request",
                    num(s.rps),
                    s.requests,
                    per(s.sc)
                )
            },
        );
        let mut t = Table::new(
            format!("Echo: {n} connection{}", if n == 1 { "" } else { "s" }),
            &[
                "mechanism",
                "requests/s (median)",
                "min–max",
                "ratio to epoll LT",
                "server syscalls/request",
            ],
        );
        let base = results[0].1.median_of(|s| s.rps).unwrap_or(f64::NAN);
        for (m, o) in &results {
            if t.row_outcome(&[m.name()], o) {
                continue;
            }
            let v = o.samples().unwrap_or_default();
            let r = stats::summarize_by(v, |s| s.rps);
            t.row(vec![
                m.name().into(),
                num(r.median),
                stats::range(&r),
                ratio(r.median, base),
                per(stats::summarize_by(v, |s| s.sc).median),
            ]);
        }
        out += &t.render();
        out.push('\n');
    }
    out
}
