#!/bin/bash
# The CPU profiler's accuracy and memory: samples times the period against the CPU time
# /proc shows over the same window, and VmRSS before, during and after a profile.
#
# Usage: bench/profile-accuracy.sh [BINARY] [WORKERS] [keepalive|pipelined] [SECONDS] [HZ]
# (defaults: target/release/asycamore 1 keepalive 3 99). Needs wrk and curl.
set -euo pipefail
BIN=${1:-target/release/asycamore}
WORKERS=${2:-1}
MODE=${3:-keepalive}
SECONDS_=${4:-3}
HZ=${5:-99}
DIR=$(mktemp -d)
trap 'kill $PID $WRK $POLL 2>/dev/null || true; rm -rf "$DIR"' EXIT
cat > "$DIR/asycamore.toml" <<TOML
[server]
listen = ["127.0.0.1:0"]
workers = $WORKERS
[[route]]
name = "hello"
path = "/"
handler = "respond"
body = "Hello, World!"
[admin]
listen = "127.0.0.1:0"
profile_max_seconds = 60
TOML
"$BIN" --log-level debug -c "$DIR/asycamore.toml" > "$DIR/log" 2>&1 &
PID=$!
for _ in $(seq 1 200); do grep -q "admin port on" "$DIR/log" && break; sleep 0.05; done
DATA=$(grep -o "listening on http://[0-9.:]*" "$DIR/log" | head -1 | sed 's#.*http://##')
ADMIN=$(grep -o "admin port on http://[0-9.:]*" "$DIR/log" | head -1 | sed 's#.*http://##')
rss() { awk '/VmRSS/ {print $2}' "/proc/$PID/status"; }
anon() { awk '/RssAnon/ {print $2}' "/proc/$PID/status"; }
ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
SCRIPT=()
if [ "$MODE" = pipelined ]; then SCRIPT=(-s "$(dirname "$0")/pipeline.lua"); fi
timeout $((SECONDS_ + 10)) wrk -t1 -c16 -d$((SECONDS_ + 5))s "${SCRIPT[@]}" "http://$DATA/" \
    ${SCRIPT:+-- 16} > "$DIR/wrk" 2>&1 &
WRK=$!
sleep 1 # the load's own buffers settle before the baseline
RSS_BEFORE=$(rss)
ANON_BEFORE=$(anon)
(while kill -0 $PID 2>/dev/null; do rss >> "$DIR/rss"; sleep 0.1; done) &
POLL=$!
curl -sf -o /dev/null -X POST "http://$ADMIN/profiling/start?frequency=$HZ"
T0=$(ticks)
sleep "$SECONDS_"
T1=$(ticks)
curl -sf -o "$DIR/profile.svg" -X POST "http://$ADMIN/profiling/stop?format=flamegraph"
RSS_AFTER=$(rss)
ANON_AFTER=$(anon)
kill $POLL 2>/dev/null || true
RSS_PEAK=$(sort -n "$DIR/rss" | tail -1)
CLK=$(getconf CLK_TCK)
SAMPLES=$(grep -o "stopped (runtime): [0-9]* sample" "$DIR/log" | grep -o "[0-9]*" | tail -1)
echo "workers=$WORKERS load=$MODE hz=$HZ seconds=$SECONDS_"
echo "cpu_proc_ms=$(( (T1 - T0) * 1000 / CLK )) expected_samples=$(( (T1 - T0) * HZ / CLK )) samples=$SAMPLES"
grep -o "profile: .*" "$DIR/log" | tail -1
grep -o 'id="title"[^<]*<' "$DIR/profile.svg" | sed 's/.*>//; s/<$//'
echo "rss_kib before=$RSS_BEFORE peak=$RSS_PEAK after=$RSS_AFTER (anonymous: before=$ANON_BEFORE after=$ANON_AFTER)"
