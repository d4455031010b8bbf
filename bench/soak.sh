#!/usr/bin/env bash
# Reload soak: RELOADS reloads (SIGHUP) spread over SECONDS of mixed traffic from
# asycamore-bench, and the count of failed requests, which must be zero. Each reload swaps
# the `respond` body between two texts; the traffic is keep-alive GETs, pipelined GETs, and
# chunked POSTs echoed and checked byte for byte (--verify-echo). All on 127.0.0.1, every
# load bounded by SECONDS.
#
# Usage: bench/soak.sh
# Environment: PORT [18611], SECONDS_TOTAL [60], RELOADS [200], WORKERS [2].
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
port=${PORT:-18611} secs=${SECONDS_TOTAL:-60} reloads=${RELOADS:-200} workers=${WORKERS:-2}
work=$(mktemp -d /tmp/asycamore-soak-XXXXXX)
server=
cleanup() {
  [[ -n $server ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
config() { # $1 = body text
  cat >"$work/soak.toml.new" <<TOML
[server]
listen = ["127.0.0.1:$port"]
workers = $workers
max_requests_per_connection = 0

[[route]]
name = "text"
path = "/"
handler = "respond"
body = "$1"

[[route]]
name = "echo"
path = "/echo"
handler = "echo"
TOML
  mv "$work/soak.toml.new" "$work/soak.toml"
}
cargo build --release --manifest-path "$here/Cargo.toml" --bins >&2
config "generation a"
"$here/target/release/asycamore" --config "$work/soak.toml" --log-level info 2>"$work/server.log" &
server=$!
tries=0
until curl -sf -o /dev/null "http://127.0.0.1:$port/"; do
  tries=$((tries + 1))
  ((tries < 100)) && kill -0 "$server" || { echo "bench/soak.sh: the server did not start" >&2; cat "$work/server.log" >&2; exit 1; }
  sleep 0.1
done
bench=$here/target/release/asycamore-bench
url=http://127.0.0.1:$port
"$bench" -c 32 -d "${secs}s" --json "$url/" >"$work/ka.json" 2>/dev/null &
ka=$!
"$bench" -c 16 -p 8 -d "${secs}s" --json "$url/" >"$work/pipe.json" 2>/dev/null &
pipe=$!
"$bench" -c 4 -d "${secs}s" --synthesize-post 4 --chunksz 1024 --verify-echo --json "$url/echo" \
  >"$work/post.json" 2>/dev/null &
post=$!
# Reloads spread evenly over the run, each with the other body.
interval=$(python3 -c "print($secs / ($reloads + 1))")
for i in $(seq 1 "$reloads"); do
  sleep "$interval"
  if ((i % 2)); then config "generation b"; else config "generation a"; fi
  kill -HUP "$server"
done
status=0
for job in ka pipe post; do
  wait "${!job}" || status=1
done
done_reloads=$(grep -c "now serving" "$work/server.log" || true)
printf '%-5s %10s %12s %8s\n' load requests requests/s errors
for job in ka pipe post; do
  python3 - "$work/$job.json" "$job" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]:<5} {r['requests']:>10} {r['requests_per_s']:>12.0f} {r['errors_total']:>8}")
PY
done
echo "reloads: $done_reloads of $reloads applied (generation $((done_reloads + 1)) at the end)"
kill -0 "$server" || { echo "the server died" >&2; exit 1; }
((done_reloads == reloads)) || status=1
exit $status
