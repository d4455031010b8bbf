#!/usr/bin/env bash
# Chunked upload throughput to the `upload` handler, measured with asycamore-bench: the
# server (one worker) pinned to core 0, the load generator to core 1, bodies sent with
# Transfer-Encoding: chunked and stored as files in a scratch directory (on /dev/shm when it
# exists, so the figure is the server's, not the disk's). Bounded by a request count; the
# directory is emptied afterwards.
#
# Usage: bench/upload.sh
# Environment: PORT [18591], UPLOADS [64], CONCURRENCY [4], CHUNKS [256], CHUNK_BYTES [65536]
#   (64 uploads of 16 MiB by default), JSON=1 for the tool's JSON report.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
port=${PORT:-18591} uploads=${UPLOADS:-64} concurrency=${CONCURRENCY:-4}
chunks=${CHUNKS:-256} chunk_bytes=${CHUNK_BYTES:-65536}
scratch=$(mktemp -d "$( [[ -d /dev/shm ]] && echo /dev/shm || echo /tmp )/asycamore-upload-XXXXXX")
config=$scratch/upload.toml
server=
cleanup() {
  [[ -n $server ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$scratch"
}
trap cleanup EXIT
mkdir "$scratch/files"
cat >"$config" <<TOML
[server]
listen = ["127.0.0.1:$port"]
workers = 1

[admin]
listen = "127.0.0.1:$((port + 1000))"

[limits]
max_body_bytes = $((chunks * chunk_bytes * 2))

[[route]]
name = "upload"
path = "/upload"
handler = "upload"
dir = "$scratch/files"
max_body_bytes = $((chunks * chunk_bytes * 2))
TOML
cargo build --release --manifest-path "$here/Cargo.toml" --bins >&2
taskset -c 0 "$here/target/release/asycamore" --config "$config" --log-level warn &
server=$!
tries=0
until curl -sf -o /dev/null "http://127.0.0.1:$((port + 1000))/readyz"; do
  tries=$((tries + 1))
  ((tries < 100)) && kill -0 "$server" || { echo "bench/upload.sh: the server did not start" >&2; exit 1; }
  sleep 0.1
done
args=(-n "$uploads" -c "$concurrency" --synthesize-post "$chunks" --chunksz "$chunk_bytes")
[[ ${JSON:-} == 1 ]] && args+=(--json)
taskset -c 1 "$here/target/release/asycamore-bench" "${args[@]}" "http://127.0.0.1:$port/upload"
