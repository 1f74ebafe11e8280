#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Resolve the kernel addresses of a flat "perf report --sort comm,symbol"
with the kernel's System.map and sum the samples per symbol:
dev/symbolize.py System.map < report."""
import bisect
import re
import sys
from collections import defaultdict

syms = []
for line in open(sys.argv[1]):
    addr, kind, name = line.split()[:3]
    if kind.lower() in "tw":
        syms.append((int(addr, 16), name))
syms.sort()
addrs = [a for a, _ in syms]
total = defaultdict(float)
for line in sys.stdin:
    m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(\S+)", line)
    if not m:
        continue
    pct, comm, _kind, sym = m.groups()
    if sym.startswith("0xffffffff"):
        i = bisect.bisect_right(addrs, int(sym, 16)) - 1
        sym = syms[i][1] if i >= 0 else sym
    total[(comm, sym)] += float(pct)
for (comm, sym), pct in sorted(total.items(), key=lambda kv: -kv[1])[:60]:
    print(f"{pct:6.2f}%  {comm:14} {sym}")
