#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turn a kevent test boot's serial log into per-test results.

Reads the KUnit KTAP that the kernel prints at boot, the kselftest TAP that
the initramfs prints between KEVENT-SELFTEST-BEGIN/END markers, the boot
markers of the init script, and any extra results given with --extra
(lines "ok NAME" / "not ok NAME" / "skip NAME"). Prints one line a test and
the summary line "N passed, N failed[, N skipped]". Exits non-zero if a test
failed, if no test ran, if the boot did not finish, or if the kernel printed
a WARNING/BUG/KASAN/lockdep report.
"""
import argparse
import re
import sys

TS = re.compile(r"^\[\s*\d+\.\d+\]\s?")
RESULT = re.compile(r"^(?P<indent>\s*)(?P<not>not )?ok (?P<num>\d+)\s*(?:- )?(?P<name>[^#]*?)\s*(?:#\s*(?P<dir>\S+)(?P<why>.*))?$")
SUBTEST = re.compile(r"^(?P<indent>\s*)# Subtest: (?P<name>\S+)")
REPORTS = [
    re.compile(p)
    for p in (
        r"^-+\[ cut here \]-+",
        r"^WARNING: ",
        r"^BUG: ",
        r"^KASAN: ",
        r"^UBSAN: ",
        r"^Kernel panic",
        r"^Oops",
        r"general protection fault",
        r"^INFO: (possible|task|trying|lockdep)",
        r"DEBUG_LOCKS_WARN_ON",
        r"^kernel BUG at",
        r"^Unable to handle kernel",
        r"^rust_kernel: panicked",
        r"^RIP: ",
    )
]


def parse(lines):
    tests = []  # (name, status, note) status in pass/fail/skip
    reports = []
    boot = {"done": False, "cpus": None}
    section = None  # name of the selftest binary being read
    section_results = 0
    suites = {}  # indent -> suite name (KUnit)
    for raw in lines:
        line = TS.sub("", raw.rstrip("\r\n"))
        m = re.match(r"^KEVENT-SELFTEST-BEGIN (\S+)", line)
        if m:
            section, section_results = m.group(1), 0
            continue
        m = re.match(r"^KEVENT-SELFTEST-END (\S+) rc=(\d+)", line)
        if m:
            name, rc = m.group(1), int(m.group(2))
            # A selftest that died before reporting, or exited non-zero with no
            # failure reported, still fails.
            if rc != 0 and not any(t[0].startswith(name + ".") and t[1] == "fail" for t in tests):
                if rc == 4:  # KSFT_SKIP
                    tests.append((name, "skip", "whole program skipped"))
                else:
                    tests.append((name, "fail", f"exit status {rc}"))
            elif section_results == 0 and rc == 0:
                tests.append((name, "fail", "reported no results"))
            section = None
            continue
        m = re.match(r"^KEVENT-BOOT cpus=(\d+)", line)
        if m:
            boot["cpus"] = int(m.group(1))
            continue
        if line.startswith("KEVENT-DONE"):
            boot["done"] = True
            continue
        if any(p.search(line) for p in REPORTS):
            reports.append(line)
            continue
        m = SUBTEST.match(line)
        if m and section is None:
            suites[len(m.group("indent"))] = m.group("name")
            continue
        m = RESULT.match(line)
        if not m:
            continue
        indent = len(m.group("indent"))
        directive = (m.group("dir") or "").upper()
        status = "skip" if directive == "SKIP" else ("fail" if m.group("not") else "pass")
        name = m.group("name").strip()
        if section is not None:
            if indent == 0:
                tests.append((f"{section}.{name}", status, (m.group("why") or "").strip()))
                section_results += 1
            continue
        # KUnit: a suite's "# Subtest:" line and its cases share one indent
        # (4); a parameterised case's own line aggregates its parameters.
        if indent == 4 and 4 in suites:
            tests.append((f"kunit.{suites[4]}.{name}", status, (m.group("why") or "").strip()))
    return tests, reports, boot


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("--extra", action="append", default=[], help="file of extra results")
    ap.add_argument("--min-cpus", type=int, default=2)
    args = ap.parse_args()
    with open(args.log, errors="replace") as f:
        tests, reports, boot = parse(f)
    if boot["cpus"] is not None:
        ok = boot["cpus"] >= args.min_cpus
        tests.insert(0, ("boot.smp", "pass" if ok else "fail", f"{boot['cpus']} CPUs online"))
    tests.insert(0, ("boot.finished", "pass" if boot["done"] else "fail",
                     "" if boot["done"] else "init did not finish: crash or timeout"))
    for path in args.extra:
        with open(path) as f:
            for line in f:
                m = re.match(r"^(ok|not ok|skip) (\S+)\s*(.*)$", line.strip())
                if m:
                    st = {"ok": "pass", "not ok": "fail", "skip": "skip"}[m.group(1)]
                    tests.append((m.group(2), st, m.group(3)))
    tests.append(("kernel.no_reports", "fail" if reports else "pass",
                  f"{len(reports)} report line(s)" if reports else ""))
    word = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}
    for name, st, note in tests:
        print(f"{word[st]:4}  {name}" + (f"  ({note})" if note else ""))
    if reports:
        print("\nkernel reports:")
        for r in reports[:40]:
            print("  " + r)
    npass = sum(1 for t in tests if t[1] == "pass")
    nfail = sum(1 for t in tests if t[1] == "fail")
    nskip = sum(1 for t in tests if t[1] == "skip")
    # Real tests: not the boot/kernel bookkeeping entries.
    real = [t for t in tests if not t[0].startswith(("boot.", "kernel."))]
    summary = f"{npass} passed, {nfail} failed"
    if nskip:
        summary += f", {nskip} skipped"
    print(summary)
    if not real:
        print("error: no tests ran", file=sys.stderr)
        return 1
    return 1 if nfail else 0


if __name__ == "__main__":
    sys.exit(main())
