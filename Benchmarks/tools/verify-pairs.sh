#!/bin/bash
# verify-pairs.sh DIR ROUNDS AUDITCTL... : full verification of DIR by each build in turn,
# ROUNDS times (alternating, so a slow hour of the machine falls on all of them), then each
# build's median and range of entries/s, CPU seconds (user + system) and peak RSS.
#   Benchmarks/tools/verify-pairs.sh /tmp/b1 10 /tmp/auditctl-before .build/release/auditctl
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 DIR ROUNDS AUDITCTL [AUDITCTL...]" >&2
    exit 2
fi
[ -x /usr/bin/time ] || { echo "needs GNU time (/usr/bin/time): apt-get install time" >&2; exit 2; }
dir=$1
rounds=$2
shift 2
for b in "$@"; do
    [ -x "$b" ] || { echo "$b: not an executable" >&2; exit 2; }
done
[ -d "$dir" ] || { echo "$dir: no such data directory" >&2; exit 2; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for r in $(seq 1 "$rounds"); do
    for b in "$@"; do
        t=$(mktemp)
        # GNU time's fields: wall, user, system, peak RSS (kB).
        /usr/bin/time -o "$t" -f "%e %U %S %M" "$b" verify "$dir" --quiet > "$t.out" 2>&1 \
            || { cat "$t.out" >&2; echo "$b: verify failed" >&2; rm -f "$t" "$t.out"; exit 1; }
        rate=$(grep -o '[0-9]* entries/s' "$t.out" | cut -d' ' -f1)
        echo "$b $rate $(cat "$t")" | tee -a "$out"
        rm -f "$t" "$t.out"
    done
done
python3 - "$out" <<'PY'
import statistics, sys, collections
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    b, rate, wall, user, sys_, rss = line.split()
    runs[b].append((int(rate), float(user) + float(sys_), int(rss)))
for b, v in runs.items():
    rates = [x[0] for x in v]
    cpu = [x[1] for x in v]
    rss = [x[2] for x in v]
    print(f"{b}: median {statistics.median(rates):,.0f} entries/s ({min(rates):,}-{max(rates):,}), "
          f"CPU median {statistics.median(cpu):.2f} s, peak RSS median {statistics.median(rss)/1024:.1f} MB, {len(v)} runs")
PY
