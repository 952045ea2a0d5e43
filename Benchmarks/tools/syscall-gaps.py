#!/usr/bin/env python3
"""Where a lone writer's ack spends its time, one system call to the next.

Reads `perf script -F tid,time,event,trace` of raw_syscalls enter/exit events and prints, for
the busiest thread (the event loop that commits a lone writer's entries itself), the median
and mean of every step between consecutive events: a system call's own duration
(`fdatasync> -> fdatasync<`) and the daemon's user-space work between two calls
(`read< -> pwrite>`: preparing and sequencing the entry, `fdatasync< -> write>`: from the
durable write to the ack). Set beside `Benchmarks/tools/floor.c` under the same tracing, the
steps say what the daemon adds to the machine's floor.

  perf record -e raw_syscalls:sys_enter,raw_syscalls:sys_exit -p $(pidof auditd) -o /tmp/sc.data &
  /tmp/lone-writer ./auditd.sock /tmp/ev1m.ndjson 5000; kill -INT %1
  perf script -i /tmp/sc.data -F tid,time,event,trace | python3 Benchmarks/tools/syscall-gaps.py
"""
import collections
import re
import statistics
import sys

NAMES = {0: "read", 1: "write", 17: "pread", 18: "pwrite", 74: "fsync", 75: "fdatasync", 202: "futex", 232: "epoll"}
LINE = re.compile(r"\s*(\d+)\s+([\d.]+):\s+raw_syscalls:sys_(enter|exit): NR (\d+)")


def main():
    events = collections.defaultdict(list)
    for line in sys.stdin:
        m = LINE.match(line)
        if m:
            events[int(m.group(1))].append((float(m.group(2)) * 1e6, m.group(3), int(m.group(4))))
    if not events:
        sys.exit("no raw_syscalls events on stdin: record them with perf record -e raw_syscalls:sys_enter,raw_syscalls:sys_exit")
    tid = max(events, key=lambda t: len(events[t]))
    steps = collections.defaultdict(list)
    previous = None
    for t, kind, nr in events[tid]:
        label = NAMES.get(nr, str(nr)) + (">" if kind == "enter" else "<")
        if previous:
            steps[previous[1] + " -> " + label].append(t - previous[0])
        previous = (t, label)
    print(f"thread {tid}: {len(events[tid])} events")
    for step, times in sorted(steps.items(), key=lambda x: -len(x[1]))[:16]:
        print(f"{len(times):7d}  median {statistics.median(times):7.1f} us  mean {statistics.mean(times):7.1f} us  {step}")


if __name__ == "__main__":
    main()
