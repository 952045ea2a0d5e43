#!/bin/bash
# run.sh EVENTS ROUNDS : the floor of committed ingest (issue 24's "within 15 %"), from the
# repository's root. Builds release auditd twice, as checked out and with bytes-only.patch
# (the committed entries' bytes without the work that makes them: no subject keys, no SHA-256,
# no AES, no value rows; its entries do not verify), then runs ROUNDS rounds of three fresh
# daemons in turn (clear, bytes-only, committed), each fed 300,000 entries of EVENTS by
# writers.c (8 connections x batch 128 x depth 4), and prints each run's rate, the CPU ticks
# (10 ms) of each of the daemon's threads from /proc, the size of its segments, and the
# medians of the ratios to clear of each round.
#   Benchmarks/tools/personal-floor/run.sh /tmp/ev1m.ndjson 8
set -euo pipefail
if [ $# -ne 2 ]; then
    echo "usage: $0 EVENTS ROUNDS (from the repository's root)" >&2
    exit 2
fi
events=$(realpath "$1")
rounds=$2
here=$(dirname "$(realpath "$0")")
[ -f Package.swift ] && [ -d Sources/auditd ] || { echo "run it from the repository's root" >&2; exit 2; }
[ -f "$events" ] || { echo "$events: no such file (scripts/genevents.py makes one)" >&2; exit 2; }
work=$(mktemp -d /tmp/personal-floor.XXXXXX)
echo "work: $work"
swift build -c release --product auditd > "$work/build.log" 2>&1 || { tail "$work/build.log"; exit 1; }
cp .build/release/auditd "$work/auditd"
git worktree add --detach "$work/tree" HEAD > /dev/null
trap 'git worktree remove --force "$work/tree" > /dev/null 2>&1 || true' EXIT
git -C "$work/tree" apply "$here/bytes-only.patch"
(cd "$work/tree" && swift build -c release --product auditd > "$work/build-bytes.log" 2>&1) \
    || { tail "$work/build-bytes.log"; exit 1; }
cp "$work/tree/.build/release/auditd" "$work/auditd-bytes"
gcc -O2 -o "$work/writers" "$here/../writers.c"

one() { # one MODE: a fresh daemon, 300,000 entries, its threads' CPU
    local mode=$1 run="$work/run-$1-$RANDOM" bin="$work/auditd" env=() personal=()
    [ "$mode" = clear ] || personal=(--personal-fields commit)
    [ "$mode" = bytes ] && { bin="$work/auditd-bytes"; env=(AUDIT_EXP_BYTESONLY=1); }
    mkdir -p "$run"
    env "${env[@]}" "$bin" --data "$run/data" --socket "$run/s.sock" --http-port 0 "${personal[@]}" \
        > "$run/log.txt" 2>&1 &
    local pid=$!
    for _ in $(seq 1 100); do [ -S "$run/s.sock" ] && break; sleep 0.1; done
    sleep 0.5
    local rate
    rate=$("$work/writers" "$run/s.sock" "$events" 300000 8 128 4 2>&1 | tail -1 | grep -o '[0-9]* entries/s' | cut -d' ' -f1)
    local threads
    threads=$(for t in /proc/$pid/task/*; do
        echo "$(cat "$t/comm" 2>/dev/null) $(awk '{print $14+$15}' "$t/stat" 2>/dev/null)"
    done | awk 'NF==2 {a[$1]+=$2} END {for (k in a) if (a[k] > 5) printf "%s=%d ", k, a[k]}')
    local total
    total=$(awk '{print $14+$15}' "/proc/$pid/stat")
    kill -TERM "$pid"
    wait "$pid" || true
    echo "$mode $rate $total $(du -sb "$run/data/segments" | cut -f1) $threads" | tee -a "$work/runs.txt"
    rm -rf "$run"
    sync
    sleep 1
}
echo "mode entries/s cpu-ticks segment-bytes threads"
for _ in $(seq 1 "$rounds"); do
    one clear
    one bytes
    one commit
done
python3 - "$work/runs.txt" <<'PY'
import statistics, sys
runs = [l.split() for l in open(sys.argv[1])]
rounds = [runs[i:i + 3] for i in range(0, len(runs) - 2, 3)]
for k, name in ((1, "bytes-only"), (2, "committed")):
    rate = [int(r[k][1]) / int(r[0][1]) for r in rounds]
    cpu = [int(r[0][2]) / int(r[k][2]) for r in rounds]
    print(f"{name} / clear: rate {statistics.median(rate):.3f} ({min(rate):.2f}-{max(rate):.2f}), "
          f"CPU (clear's over its own) {statistics.median(cpu):.3f} ({min(cpu):.2f}-{max(cpu):.2f})")
PY
