// SPDX-License-Identifier: GPL-2.0

//! kevent-bench: kevent against epoll and io_uring.
//!
//! ```text
//! kevent-bench [--quick] [--runs N] [--only TEXT] [--echo-cpus same|split|any]
//!              [chain] [timers] [churn] [echo] [scale] [stream] [aio]
//! ```
//!
//! The cases: `chain` (libevent's bench), `timers`, `churn` (registration),
//! `echo` (TCP echo server), `scale` (idle connections), `stream` (socket
//! paths with no event mechanism) and `aio` (network AIO: loopback
//! throughput and CPU per byte of kevent AIO send/recv, with and without a
//! ready ring, against blocking I/O, epoll and io_uring, and of AIO sendfile
//! against `sendfile(2)`).
//!
//! Progress goes to stderr; the results, one Markdown table per case, go to
//! stdout between the lines `KEVENT-BENCH-BEGIN` and `KEVENT-BENCH-END`,
//! printed at the end in one piece. Mechanisms whose system calls are
//! missing (kevent on a kernel without it, its socket or AIO source or
//! ready ring, io_uring when disabled) are reported as "n/a (...)" rows; a run that
//! fails its checks is reported as "FAILED: reason", never as a number.

mod aio;
mod chain;
mod churn;
mod echo;
mod notify;
mod scale;
mod stats;
mod stream;
mod sys;
mod timers;

use std::fmt::Write as _;
use std::os::fd::AsFd;
use std::panic::{self, AssertUnwindSafe};
use std::time::Instant;

use kevent::{Queue, QueueFlags, Request};

/// What a mechanism needs from the kernel.
#[derive(Clone, Copy, Debug)]
pub enum Need {
    Nothing,
    Kevent,
    KeventSocket,
    KeventAio,
    /// A queue with a ready ring (`KEVENT_RING`).
    KeventRing,
    /// A ready ring and the socket source.
    KeventSocketRing,
    /// A ready ring and the AIO source.
    KeventAioRing,
    Uring,
}

/// Where the echo server and client threads run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EchoCpus {
    /// Both on CPU 0 (the default: the steadiest numbers; cross-CPU
    /// wake-ups of an idle vCPU dominate and vary a lot otherwise).
    Same,
    /// Client on CPU 0, server on CPU 1.
    Split,
    /// Wherever the scheduler puts them.
    Any,
}

/// The run's settings and what the kernel offers.
pub struct Env {
    pub quick: bool,
    pub runs: usize,
    pub echo_cpus: EchoCpus,
    /// Only mechanisms whose name contains this (`--only`), for profiling.
    pub only: Option<String>,
    pub kevent: Result<(), String>,
    pub kevent_socket: Result<(), String>,
    pub kevent_aio: Result<(), String>,
    pub kevent_ring: Result<(), String>,
    pub uring: Result<String, String>,
}

impl Env {
    /// Why a mechanism needing `need` cannot run, if it cannot.
    pub fn missing(&self, need: Need) -> Option<String> {
        match need {
            Need::Nothing => None,
            Need::Kevent => self.kevent.clone().err(),
            Need::KeventSocket => self.kevent.clone().and(self.kevent_socket.clone()).err(),
            Need::KeventAio => self.kevent.clone().and(self.kevent_aio.clone()).err(),
            Need::KeventRing => self.kevent.clone().and(self.kevent_ring.clone()).err(),
            Need::KeventSocketRing => self
                .kevent
                .clone()
                .and(self.kevent_socket.clone())
                .and(self.kevent_ring.clone())
                .err(),
            Need::KeventAioRing => self
                .kevent
                .clone()
                .and(self.kevent_aio.clone())
                .and(self.kevent_ring.clone())
                .err(),
            Need::Uring => self.uring.clone().err(),
        }
    }

    /// Measures `mechs` (described by `desc`: name and need) `runs` times
    /// each, interleaved; see [`stats::interleave`].
    pub fn compare<M: Copy, T>(
        &self,
        mechs: &[M],
        desc: impl Fn(M) -> (&'static str, Need),
        mut run: impl FnMut(M) -> Result<T, String>,
        show: impl Fn(&T) -> String,
    ) -> Vec<(M, stats::Outcome<T>)> {
        let labels: Vec<(String, Option<String>)> = mechs
            .iter()
            .map(|&m| {
                let (name, need) = desc(m);
                let skip = match &self.only {
                    // Spaces may be written as '_' (the argument goes through the shell).
                    Some(o) if !name.replace(' ', "_").contains(&o.replace(' ', "_")) => {
                        Some(format!("skipped (--only {o})"))
                    }
                    _ => self.missing(need),
                };
                (name.to_string(), skip)
            })
            .collect();
        let out = stats::interleave(&labels, self.runs, |i| run(mechs[i]), show);
        mechs.iter().copied().zip(out).collect()
    }
}

const CASES: [&str; 7] = ["chain", "timers", "churn", "echo", "scale", "stream", "aio"];

fn usage(code: i32) -> ! {
    eprintln!(
        "usage: kevent-bench [--quick] [--runs N] [--only TEXT] [--echo-cpus same|split|any] [{}]...\n\
         \x20 --quick      smaller sizes, 3 runs (unless --runs)\n\
         \x20 --runs N     runs per measurement (default 9)\n\
         \x20 --only TEXT  only mechanisms whose name contains TEXT (_ = space)\n\
         \x20 --echo-cpus  echo client and server (stream, aio: sender and receiver) on\n\
         \x20              CPU 0 (same, default), on CPUs 0 and 1 (split), or unbound (any)\n\
         \x20 cases        any of the names above; default all:\n\
         \x20   chain      libevent's bench: readiness passed along socket pairs\n\
         \x20   timers     timer expiry and re-arming\n\
         \x20   churn      registration and removal\n\
         \x20   echo       TCP echo server over 127.0.0.1\n\
         \x20   scale      many idle connections\n\
         \x20   stream     blocking stream throughput, no event mechanism\n\
         \x20   aio        network AIO over loopback, 4 KiB to 1 MiB messages: kevent\n\
         \x20              AIO (with and without a ready ring) vs blocking, epoll and\n\
         \x20              io_uring (MB/s, CPU per MiB); AIO sendfile vs sendfile(2)",
        CASES.join("|")
    );
    std::process::exit(code);
}

/// A byte that AIO probes send: static and never written, so that lending
/// it to the kernel is always sound.
static PROBE_BYTE: [u8; 1] = [0x6b];

/// The results of [`probe_kevent`]: the system calls, the socket source,
/// the AIO source, the ready ring.
type KeventProbe = (
    Result<(), String>,
    Result<(), String>,
    Result<(), String>,
    Result<(), String>,
);

/// kevent: are the system calls there, the socket and AIO sources, and the
/// ready ring?
fn probe_kevent() -> KeventProbe {
    let q = match Queue::new() {
        Ok(q) => q,
        Err(e) => {
            let why = if e.raw_os_error() == Some(libc::ENOSYS) {
                "no kevent syscalls".to_string()
            } else {
                format!("kevent: {e}")
            };
            return (
                Err(why.clone()),
                Err(why.clone()),
                Err(why.clone()),
                Err(why),
            );
        }
    };
    let socket = match sys::socketpair() {
        Err(e) => Err(format!("socketpair: {e}")),
        Ok((a, _b)) => {
            let mut r = [Request::socket(a.as_fd(), kevent::SOCKET_RECV).edge()];
            match q.add(&mut r).and_then(|_| r[0].result()) {
                Ok(()) => Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Err("no socket source".into()),
                Err(e) => Err(format!("socket source: {e}")),
            }
        }
    };
    // A one-byte send on a socket pair: EINVAL if the kernel has no AIO
    // source. The request may still run when the queue and the sockets are
    // closed below, which cancels it; the byte is static.
    let aio = match sys::socketpair() {
        Err(e) => Err(format!("socketpair: {e}")),
        Ok((a, _b)) => {
            // SAFETY: PROBE_BYTE is static and never written.
            let req = unsafe { Request::aio_send(a.as_fd(), &PROBE_BYTE, 1) };
            match q.add_one(req) {
                Ok(()) => Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Err("no AIO source".into()),
                Err(e) => Err(format!("AIO source: {e}")),
            }
        }
    };
    // A queue with the smallest ring: EINVAL if the kernel has no rings.
    let ring = match Queue::with_ring(QueueFlags::CLOEXEC, 2) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Err("no ready ring".into()),
        Err(e) => Err(format!("ready ring: {e}")),
    };
    (Ok(()), socket, aio, ring)
}

fn probe_uring() -> Result<String, String> {
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    sys::uring_probe().map_err(|e| {
        let mut s = format!("io_uring: {e}");
        if !disabled.is_empty() && disabled != "0" {
            s += &format!(", io_uring_disabled = {disabled}");
        }
        s
    })
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

fn main() {
    let mut quick = false;
    let mut runs = None;
    let mut echo_cpus = EchoCpus::Same;
    let mut only = None;
    let mut cases: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--runs" => {
                runs = args
                    .next()
                    .and_then(|v| v.parse::<usize>().ok())
                    .filter(|&n| n > 0);
                if runs.is_none() {
                    usage(2);
                }
            }
            "--only" => only = Some(args.next().unwrap_or_else(|| usage(2))),
            "--echo-cpus" => {
                echo_cpus = match args.next().as_deref() {
                    Some("same") => EchoCpus::Same,
                    Some("split") => EchoCpus::Split,
                    Some("any") => EchoCpus::Any,
                    _ => usage(2),
                }
            }
            "-h" | "--help" => usage(0),
            c if CASES.contains(&c) => {
                if !cases.iter().any(|x| x == c) {
                    cases.push(c.to_string());
                }
            }
            _ => usage(2),
        }
    }
    if cases.is_empty() {
        cases = CASES.iter().map(|s| s.to_string()).collect();
    }
    let runs = runs.unwrap_or(if quick { 3 } else { 9 });

    let t0 = Instant::now();
    let nofile = sys::raise_nofile(1 << 20);
    let mut notes = Vec::new();
    // The per-user limits (4% of RAM by default, about 320k kevents and
    // 440k epoll watches on a 2 GiB guest) are enough for the largest case
    // (100k + 100); raise them if a smaller machine has less. The system's
    // file limit (about 200k on 2 GiB) does not bind root, but is raised
    // too. A host with higher values is left alone.
    for (path, min) in [
        ("/proc/sys/fs/file-max", 1_000_000),
        ("/proc/sys/fs/kevent/max_user_kevents", 400_000),
        ("/proc/sys/fs/epoll/max_user_watches", 400_000),
    ] {
        if let Some(n) = sys::ensure_sysctl(path, min) {
            eprintln!("{n}");
            notes.push(n);
        }
    }
    let (kev, kev_sock, kev_aio, kev_ring) = probe_kevent();
    let env = Env {
        quick,
        runs,
        echo_cpus,
        only,
        kevent: kev,
        kevent_socket: kev_sock,
        kevent_aio: kev_aio,
        kevent_ring: kev_ring,
        uring: probe_uring(),
    };
    let (release, version, machine) = sys::uname();
    let cpus = sys::cpus();
    let show = |r: &Result<String, String>| match r {
        Ok(s) => format!("available ({s})"),
        Err(e) => format!("n/a ({e})"),
    };
    let kev_line = format!(
        "{}; socket source: {}; AIO source: {}; ready ring: {}",
        show(
            &env.kevent
                .clone()
                .map(|_| "kevent_ctl 473, kevent_get_events 474".to_string())
        ),
        show(
            &env.kevent_socket
                .clone()
                .map(|_| "KEVENT_TYPE_SOCKET".to_string())
        ),
        show(
            &env.kevent_aio
                .clone()
                .map(|_| "KEVENT_TYPE_AIO".to_string())
        ),
        show(&env.kevent_ring.clone().map(|_| "KEVENT_RING".to_string()))
    );
    eprintln!(
        "kevent-bench: kernel {release}, {cpus} CPUs, {runs} runs{}, cases: {}",
        if quick { ", quick" } else { "" },
        cases.join(" ")
    );
    eprintln!("  kevent: {kev_line}");
    eprintln!("  io_uring: {}", show(&env.uring));
    eprintln!("  RLIMIT_NOFILE: {nofile}");

    let mut body = String::new();
    for c in &cases {
        let tc = Instant::now();
        let r = panic::catch_unwind(AssertUnwindSafe(|| match c.as_str() {
            "chain" => chain::run(&env),
            "timers" => timers::run(&env),
            "churn" => churn::run(&env),
            "echo" => echo::run(&env),
            "scale" => scale::run(&env),
            "stream" => stream::run(&env),
            "aio" => aio::run(&env),
            _ => unreachable!(),
        }));
        match r {
            Ok(s) => body += &s,
            Err(p) => {
                let _ = writeln!(body, "## {c}\n\nFAILED: panic: {}\n", panic_text(&*p));
            }
        }
        eprintln!("{c}: done in {:.1} s", tc.elapsed().as_secs_f64());
    }

    let mut out = String::new();
    let _ = writeln!(out, "KEVENT-BENCH-BEGIN");
    let _ = writeln!(out, "## Environment\n");
    let _ = writeln!(out, "- kernel: {release} ({version}, {machine})");
    let _ = writeln!(out, "- CPUs: {cpus}");
    let _ = writeln!(
        out,
        "- runs per measurement: {runs}{}; cases: {}",
        if quick { " (--quick sizes)" } else { "" },
        cases.join(", ")
    );
    let _ = writeln!(out, "- kevent: {kev_line}");
    let _ = writeln!(out, "- io_uring: {}", show(&env.uring));
    let _ = writeln!(out, "- RLIMIT_NOFILE: {nofile}");
    for n in &notes {
        let _ = writeln!(out, "- {n}");
    }
    let _ = writeln!(
        out,
        "- wall time of the whole benchmark: {:.1} s\n",
        t0.elapsed().as_secs_f64()
    );
    out += &body;
    let _ = writeln!(out, "KEVENT-BENCH-END");
    print!("{out}");
}
