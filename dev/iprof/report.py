#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turns iprof.so output (block address, instructions) into a per-function
instruction profile of the guest kernel, using its System.map.

  report.py System.map A.out [B.out] [--top N] [--per N_A [N_B]]

With one file: the top functions by instructions. With two: both side by
side and the difference, each divided by its --per count (e.g. events) so
that the two runs compare per unit of work."""
import bisect
import sys


def load_map(path):
    syms = []
    for line in open(path):
        parts = line.split()
        if len(parts) >= 3 and parts[1] in "tTwW":
            syms.append((int(parts[0], 16), parts[2]))
    syms.sort()
    return [a for a, _ in syms], [n for _, n in syms]


def load(path, addrs, names):
    prof = {}
    for line in open(path):
        if line.startswith("#"):
            sys.stderr.write(path + ": " + line)
            continue
        a, n = line.split()
        a, n = int(a, 16), int(n)
        if a < 0xFFFFFFFF80000000:
            name = "[user]"
        else:
            i = bisect.bisect_right(addrs, a) - 1
            name = names[i] if i >= 0 else "[unknown]"
        prof[name] = prof.get(name, 0) + n
    return prof


def main(argv):
    top, per, files = 40, [], []
    i = 0
    while i < len(argv):
        if argv[i] == "--top":
            top = int(argv[i + 1]); i += 2
        elif argv[i] == "--per":
            i += 1
            while i < len(argv) and argv[i].isdigit():
                per.append(int(argv[i])); i += 1
        else:
            files.append(argv[i]); i += 1
    addrs, names = load_map(files[0])
    profs = [load(f, addrs, names) for f in files[1:]]
    per = (per + [1] * len(profs))[: len(profs)]
    profs = [{k: v / d for k, v in p.items()} for p, d in zip(profs, per)]
    keys = set().union(*profs)
    totals = [sum(p.values()) for p in profs]
    if len(profs) == 1:
        p = profs[0]
        print(f"total {totals[0]:.0f}")
        for k in sorted(keys, key=lambda k: -p[k])[:top]:
            print(f"{p[k]:14.1f} {100 * p[k] / totals[0]:5.1f}%  {k}")
    else:
        a, b = profs[0], profs[1]
        print(f"{'A':>12} {'B':>12} {'A-B':>12}  function   (totals {totals[0]:.0f} {totals[1]:.0f})")
        for k in sorted(keys, key=lambda k: -abs(a.get(k, 0) - b.get(k, 0)))[:top]:
            print(f"{a.get(k, 0):12.1f} {b.get(k, 0):12.1f} {a.get(k, 0) - b.get(k, 0):12.1f}  {k}")


if __name__ == "__main__":
    main(sys.argv[1:])
