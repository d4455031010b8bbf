#!/usr/bin/env bash
# Runs asycamore in the foreground for ../shared/bench/compare.sh: one worker on
# 127.0.0.1:PORT with routes equivalent to the harness's nginx.conf.
# Usage: bench/asycamore-run.sh PORT ROOT [metrics=on|off]
# The admin port listens on PORT+1000 (so two instances never compete for it); with
# metrics=off the data plane counts nothing (for measuring what counting costs).
set -euo pipefail
port=$1 root=$2 metrics=${3:-metrics=on}
case $metrics in metrics=on) counting=true ;; metrics=off) counting=false ;; *) echo "bad $metrics" >&2; exit 2 ;; esac
here=$(cd "$(dirname "$0")/.." && pwd)
# One file per port, rewritten each run (the server execs, so nothing could clean up after).
config=${TMPDIR:-/tmp}/asycamore-bench-$port.toml
cat > "$config" <<TOML
[server]
listen = ["127.0.0.1:$port"]
workers = 1
max_requests_per_connection = 0

[admin]
listen = "127.0.0.1:$((port + 1000))"
metrics = $counting

[[route]]
name = "plaintext"
exact = "/plaintext"
handler = "respond"
body = "Hello, World!"
headers = { "Content-Type" = "text/plain" }

[[route]]
name = "static"
path = "/static"
handler = "static"
root = "$root/static"
TOML
exec "$here/target/release/asycamore" --config "$config" --log-level warn
