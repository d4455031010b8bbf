#!/usr/bin/env bash
# asycamore next to the floor of the plaintext benchmarks in one harness run: a mio loop that
# answers every request head with a canned response (examples/canned_floor.rs: no parsing,
# no routing, no metrics). The difference in server CPU per request is what being an HTTP
# server costs; the floor itself is the kernel's share. Every load run is bounded by the
# harness's DURATION and goes to 127.0.0.1 only.
#
# Usage: bench/floor.sh [HARNESS_DIR]        (default: ../shared/bench next to the repo)
# Environment: everything the harness reads (ROUNDS, DURATION, OUT, ...); TESTS defaults to
#   "plain_pipe plain_ka" (the floor answers every path alike, so static tests mean nothing).
# Needs: wrk, curl, python3 (apt-get install -y wrk curl python3).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
harness=${1:-$here/../shared/bench}
[[ -x $harness/compare.sh ]] || { echo "bench/floor.sh: no harness at $harness" >&2; exit 2; }
cargo build --release --manifest-path "$here/Cargo.toml" --bin asycamore --example canned_floor
export NAME_A=${NAME_A:-asycamore} NAME_B=${NAME_B:-floor}
export TESTS=${TESTS:-"plain_pipe plain_ka"}
exec "$harness/compare.sh" \
  "$here/bench/asycamore-run.sh {port} {root}" \
  "$here/target/release/examples/canned_floor {port}"
