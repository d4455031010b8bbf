#!/usr/bin/env bash
# Instructions per request under callgrind: a count that does not move with machine noise,
# so a hot-path regression shows as a number (docs/PERFORMANCE.md records the current ones).
#
# Runs bench/asycamore-run.sh under valgrind twice, once idle and once under a bounded wrk
# load of the chosen shape, and divides the difference in instructions (all threads) by the
# difference in requests counted by the admin port's metrics.
#
# Usage: bench/instructions.sh [SHAPE...]   SHAPE: pipe ka close static4k (default: all)
# Environment: PORT [18571] (admin on PORT+1000), SECONDS_PER_RUN [3], METRICS [on],
#   ROOT [/tmp/asyc-bench-root] (static/4k.bin is created if missing).
# Needs: valgrind, wrk, curl.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
port=${PORT:-18571} secs=${SECONDS_PER_RUN:-3} metrics=${METRICS:-on}
root=${ROOT:-/tmp/asyc-bench-root}
work=$(mktemp -d /tmp/asycamore-instructions-XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$root/static"
[[ -f $root/static/4k.bin ]] || head -c 4096 /dev/urandom > "$root/static/4k.bin"
[[ -f $root/static/1m.bin ]] || head -c 1048576 /dev/urandom > "$root/static/1m.bin"
cargo build --release --manifest-path "$here/Cargo.toml" --bin asycamore >&2
url=http://127.0.0.1:$port admin=http://127.0.0.1:$((port + 1000))

requests() { curl -sf "$admin/metrics" | awk '/^asycamore_http_requests_total/ {n += $2} END {print n + 0}'; }

# One valgrind run: "$1" = idle or a shape. Prints "instructions requests".
run() {
  local out=$work/callgrind.$1
  valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$out" \
    "$here/bench/asycamore-run.sh" "$port" "$root" "metrics=$metrics" >"$work/server.log" 2>&1 &
  local pid=$!
  local tries=0
  until curl -sf -o /dev/null "$admin/healthz" && curl -sf -o /dev/null "$url/plaintext"; do
    tries=$((tries + 1))
    if ((tries > 150)) || ! kill -0 "$pid" 2>/dev/null; then
      echo "bench/instructions.sh: the server did not start:" >&2; cat "$work/server.log" >&2; exit 1
    fi
    sleep 0.2
  done
  case $1 in
    idle) ;;
    pipe) wrk -t1 -c64 -d"${secs}s" -s "$here/bench/pipeline.lua" "$url/plaintext" >/dev/null ;;
    ka) wrk -t1 -c16 -d"${secs}s" "$url/plaintext" >/dev/null ;;
    close) wrk -t1 -c16 -d"${secs}s" -H 'Connection: close' "$url/plaintext" >/dev/null ;;
    static4k) wrk -t1 -c16 -d"${secs}s" "$url/static/4k.bin" >/dev/null ;;
    *) echo "bench/instructions.sh: unknown shape $1" >&2; kill "$pid"; exit 2 ;;
  esac
  local n
  n=$(requests)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local total
  total=$(callgrind_annotate "$(ls -S "$out"* | head -1)" 2>/dev/null |
    awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  echo "$total $n"
}

read -r idle_instructions idle_requests < <(run idle)
printf '%-9s %10s %14s %12s\n' shape requests instructions per_request
for shape in "${@:-pipe ka close static4k}"; do
  for s in $shape; do
    read -r instructions n < <(run "$s")
    d_instr=$((instructions - idle_instructions)) d_req=$((n - idle_requests))
    printf '%-9s %10d %14d %12d\n' "$s" "$d_req" "$d_instr" $((d_instr / d_req))
  done
done
