#!/bin/bash
# The daemon's peak memory over the README's read-side run at 10M entries: a start (which
# verifies the whole log), 300 then 1,500 org pages of six orgs (`auditbench http-query`), the
# busiest org's whole export, and two whole-history searches that match nothing (every page,
# following its cursor). Prints VmRSS and VmHWM (kB) after each step, then the peak.
#
#   Benchmarks/tools/memory.sh AUDITD DATA KEY TOKEN ORGS
#
# DATA: a log of `genevents.py --count 10000000 --seed 1` imported with `auditctl import`;
# TOKEN: `auditctl token create DATA --operator`; ORGS: six orgs, the busiest first
# (comma-separated). Needs curl, python3 and a release build of the Benchmarks package.
set -euo pipefail
if [ $# -ne 5 ]; then
    echo "usage: $0 AUDITD DATA KEY TOKEN ORGS (the busiest org first)" >&2
    exit 2
fi
AUDITD=$1 DATA=$2 KEY=$3 TOKEN=$4 ORGS=$5
BUSIEST=${ORGS%%,*}
BENCH=$(cd "$(dirname "$0")/.." && pwd)/.build/release/auditbench
[ -x "$BENCH" ] || { echo "no $BENCH: swift build -c release --package-path Benchmarks" >&2; exit 2; }
PORT=${PORT:-18777}
URL=http://127.0.0.1:$PORT
WORK=$(mktemp -d)
"$AUDITD" --data "$DATA" --key "$KEY" --socket "$WORK/s.sock" --http-port "$PORT" > "$WORK/auditd.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$WORK"' EXIT
step() { echo "$1: $(awk '/VmRSS|VmHWM/ {printf "%s %s kB  ", $1, $2}' /proc/$PID/status)"; }
# The start's verification pass: until /healthz counts every sealed entry verified and stops rising.
last=-1
while :; do
    kill -0 $PID 2>/dev/null || { echo "auditd exited:" >&2; cat "$WORK/auditd.log" >&2; exit 1; }
    v=$(curl -s -m 2 "$URL/healthz" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("verified_entries",0))' 2>/dev/null || echo 0)
    [ "$v" -gt 0 ] && [ "$v" = "$last" ] && break
    last=$v
    sleep 2
done
step "verified $v entries"
"$BENCH" http-query --url "$URL" --token "$TOKEN" --orgs "$ORGS" --count 300 > /dev/null
step "300 pages"
"$BENCH" http-query --url "$URL" --token "$TOKEN" --orgs "$ORGS" --count 1500 > /dev/null
step "1,500 pages"
curl -sf -H "Authorization: Bearer $TOKEN" "$URL/v1/orgs/$BUSIEST/export" -o /dev/null
step "export of $BUSIEST"
for k in 1 2; do
    python3 - "$URL" "$TOKEN" "$BUSIEST" <<'PY'
import json, sys, urllib.request
url, token, org = sys.argv[1:4]
cursor = None
while True:
    q = f"{url}/v1/orgs/{org}/entries?q=zzqqnotfound&limit=100" + (f"&cursor={cursor}" if cursor else "")
    page = json.load(urllib.request.urlopen(urllib.request.Request(q, headers={"Authorization": "Bearer " + token})))
    cursor = page.get("next_cursor")
    if not cursor:
        break
PY
    step "whole-history search $k"
done
echo "peak: $(awk '/VmHWM/ {print $2}' /proc/$PID/status) kB"
