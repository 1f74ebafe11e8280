// SPDX-License-Identifier: GPL-2.0

//! Case 5: cost per event against the number of registered but idle
//! entries. The active set is the chain of `chain.rs` (n = 100 pairs, a =
//! 10, w = 10000); beside it K eventfds that never fire are registered in
//! the same epoll instance or kevent queue (level triggered, input). The
//! instance, with all K + 100 registrations, is set up once per K and
//! mechanism (untimed) and the chain is run on it `runs` times. The cost
//! per event should not depend on K: the ratio of K = 100k to K = 100
//! should stay near 1.

use std::fmt::Write as _;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::chain::{self, Mech, Pairs, Sample};
use crate::notify::{Notifier, BATCH};
use crate::stats::{self, num, per, ratio, Outcome, Table};
use crate::sys;
use crate::Env;

const N: usize = 100;
const A: usize = 10;
const W: u64 = 10_000;
/// Tokens of idle registrations start here (never a pair index).
const IDLE_TOKEN: u64 = 1 << 32;

pub fn idle_counts(quick: bool) -> Vec<usize> {
    if quick {
        vec![100, 10_000]
    } else {
        vec![100, 10_000, 100_000]
    }
}

/// A notifier of kind `m` watching the `idle` fds and the read ends of
/// `pairs`.
fn setup(m: Mech, pairs: &Pairs, idle: &[RawFd]) -> Result<Box<dyn Notifier>, String> {
    let mut nt = m.notifier(idle.len() + N)?;
    for (i, &fd) in idle.iter().enumerate() {
        nt.add(fd, IDLE_TOKEN + i as u64, false)?;
    }
    for (i, &fd) in pairs.rd.iter().enumerate() {
        nt.add(fd, i as u64, false)?;
    }
    nt.flush()?;
    Ok(nt)
}

pub fn run(env: &Env) -> String {
    let counts = idle_counts(env.quick);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Scale with idle registrations\n\n\
         The chain with n = {N}, a = {A}, w = {W}, in an instance that also \
         watches K idle eventfds (never signalled). ns/event as in the chain \
         case; \"vs K = {}\" is the ratio to the same mechanism with K = {} \
         (should stay near 1.0); \"vs epoll LT\" compares at the same K \
         (medians). {} runs each.\n",
        counts[0], counts[0], env.runs
    );
    let max = *counts.iter().max().unwrap_or(&0);
    eprintln!("scale: making {max} eventfds");
    let owned: Result<Vec<OwnedFd>, _> = (0..max).map(|_| sys::eventfd()).collect();
    let pairs = owned
        .map_err(|e| format!("making {max} eventfds: {e}"))
        .and_then(|o| Ok((o, Pairs::new(N)?)));
    let (owned, pairs) = match pairs {
        Ok(v) => v,
        Err(e) => {
            let _ = writeln!(out, "FAILED: {e}\n");
            return out;
        }
    };
    let fds: Vec<RawFd> = owned.iter().map(|f| f.as_raw_fd()).collect();
    let mechs = [Mech::EpollLt, Mech::KeventLt];
    let mut results: Vec<(Mech, usize, Outcome<Sample>)> = Vec::new();
    for &k in &counts {
        eprintln!("scale: K = {k} idle");
        // Both instances are set up (untimed) before the interleaved runs.
        let mut nts: Vec<Result<Box<dyn Notifier>, String>> = mechs
            .iter()
            .map(|&m| match env.missing(m.need()) {
                Some(why) => Err(why),
                None => setup(m, &pairs, &fds[..k]).map_err(|e| format!("setting up: {e}")),
            })
            .collect();
        let labels: Vec<(String, Option<String>)> = mechs
            .iter()
            .zip(&nts)
            .map(|(m, nt)| {
                (
                    format!("{} with {k} idle", m.name()),
                    nt.as_ref().err().cloned(),
                )
            })
            .collect();
        let mut ready = Vec::with_capacity(BATCH);
        let outs = stats::interleave(
            &labels,
            env.runs,
            |i| match &mut nts[i] {
                Ok(nt) => chain::measure(&pairs, A, W, 1, |c, _| {
                    chain::drive_notified(&mut **nt, c, &mut ready)
                }),
                Err(e) => Err(e.clone()),
            },
            chain::show,
        );
        for ((&m, nt), o) in mechs.iter().zip(&nts).zip(outs) {
            // A set-up failure is a failure, not "n/a".
            let o = match (nt, o) {
                (Err(e), _) if env.missing(m.need()).is_none() => Outcome::Failed(e.clone()),
                (_, o) => o,
            };
            results.push((m, k, o));
        }
        drop(nts);
    }
    let mut t = Table::new(
        format!("Scale: chain n = {N}, a = {A}, w = {W}, K idle"),
        &[
            "mechanism",
            "K idle",
            "ns/event (median)",
            "min–max",
            &format!("vs K = {}", counts[0]),
            "vs epoll LT",
            "syscalls/event",
        ],
    );
    let med = |m: Mech, k: usize| {
        results
            .iter()
            .find(|r| r.0 == m && r.1 == k)
            .and_then(|r| r.2.median_of(|s| s.ns))
            .unwrap_or(f64::NAN)
    };
    for &m in &mechs {
        for (rm, k, o) in &results {
            if *rm != m {
                continue;
            }
            if t.row_outcome(&[m.name(), &k.to_string()], o) {
                continue;
            }
            let v = o.samples().unwrap_or_default();
            let ns = stats::summarize_by(v, |s| s.ns);
            t.row(vec![
                m.name().into(),
                k.to_string(),
                num(ns.median),
                stats::range(&ns),
                ratio(ns.median, med(m, counts[0])),
                ratio(ns.median, med(Mech::EpollLt, *k)),
                per(stats::summarize_by(v, |s| s.sc).median),
            ]);
        }
    }
    out += &t.render();
    out.push('\n');
    drop(pairs);
    drop(owned);
    out
}
