#!/usr/bin/env bash
# Worst stall of a probe on the same worker during a large `fsync = true` upload: one worker,
# a keep-alive probe client sending GET to a `respond` route back to back while curl PUTs
# SIZE bytes (chunked, from /dev/zero) to an fsync upload route; prints the probe's worst
# latency over the whole upload (body and commit) and the 201's timing. The scratch
# directory is on a real disk (SCRATCH, default /var/tmp: an fsync on a tmpfs waits for
# nothing); it is removed afterwards.
#
# Usage: bench/upload_stall.sh [BINARY]   (default: target/release/asycamore, built first)
# Environment: PORT [18595], SIZE [500M] (head -c syntax), SCRATCH [/var/tmp]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
port=${PORT:-18595} size=${SIZE:-500M}
binary=${1:-}
if [[ -z $binary ]]; then
  cargo build --release --manifest-path "$here/Cargo.toml" --bins >&2
  binary=$here/target/release/asycamore
fi
scratch=$(mktemp -d "${SCRATCH:-/var/tmp}/asycamore-stall-XXXXXX")
server=
cleanup() {
  [[ -n $server ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$scratch"
}
trap cleanup EXIT
mkdir "$scratch/files"
cat >"$scratch/stall.toml" <<TOML
[server]
listen = ["127.0.0.1:$port"]
workers = 1

[limits]
max_body_bytes = 4294967296

[[route]]
name = "probe"
path = "/probe"
handler = "respond"
status = 200
body = "ok"

[[route]]
name = "synced"
path = "/synced"
handler = "upload"
dir = "$scratch/files"
fsync = true
TOML
"$binary" --config "$scratch/stall.toml" --log-level debug 2>"$scratch/log" &
server=$!
tries=0
until curl -sf -o /dev/null "http://127.0.0.1:$port/probe"; do
  tries=$((tries + 1))
  ((tries < 100)) && kill -0 "$server" || { echo "upload_stall.sh: the server did not start" >&2; exit 1; }
  sleep 0.1
done
sync
python3 - "$port" "$size" <<'PY'
import socket, subprocess, sys, threading, time
port, size = int(sys.argv[1]), sys.argv[2]
done = threading.Event()
result = {}
def upload():
    start = time.monotonic()
    feed = subprocess.Popen(["head", "-c", size, "/dev/zero"], stdout=subprocess.PIPE)
    out = subprocess.run(
        ["curl", "-sS", "-T", "-", "-H", "Expect:", "-o", "/dev/null",
         "-w", "%{http_code} upload %{time_pretransfer}..%{time_total}s",
         f"http://127.0.0.1:{port}/synced/big.bin"],
        stdin=feed.stdout, capture_output=True, text=True)
    result["upload"] = out.stdout.strip() + out.stderr.strip()
    result["elapsed"] = time.monotonic() - start
    done.set()
t = threading.Thread(target=upload)
def connect():
    conn = socket.create_connection(("127.0.0.1", port))
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn
probe = connect()
request = b"GET /probe HTTP/1.1\r\nHost: b\r\n\r\n"
worst, worst_at, count = 0.0, 0.0, 0
t0 = time.monotonic()
t.start()
while not done.is_set():
    sent = time.monotonic()
    probe.sendall(request)
    got = b""
    while not got.endswith(b"\r\n\r\nok"):
        chunk = probe.recv(4096)
        if not chunk:
            # max_requests_per_connection: the server closed after its last answer; the
            # new connection's set-up counts in this probe's latency.
            probe = connect()
            probe.sendall(request)
            got = b""
            continue
        got += chunk
    latency = time.monotonic() - sent
    count += 1
    if latency > worst:
        worst, worst_at = latency, sent - t0
t.join()
print(f"{result['upload']}; {count} probes, worst {worst * 1e3:.1f} ms "
      f"(sent {worst_at:.2f} s after the upload began, which took {result['elapsed']:.2f} s)")
PY
grep -o 'stored .* in [0-9.]* ms' "$scratch/log" || echo "(no commit timing in the log: an older build)"
