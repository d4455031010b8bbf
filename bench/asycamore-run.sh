#!/usr/bin/env bash
# Runs asycamore in the foreground for ../shared/bench/compare.sh: one worker on
# 127.0.0.1:PORT with routes equivalent to the harness's nginx.conf.
# Usage: bench/asycamore-run.sh PORT ROOT
set -euo pipefail
port=$1 root=$2
here=$(cd "$(dirname "$0")/.." && pwd)
config=$(mktemp /tmp/asycamore-bench-XXXXXX.toml)
cat > "$config" <<TOML
[server]
listen = ["127.0.0.1:$port"]
workers = 1
max_requests_per_connection = 0

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
