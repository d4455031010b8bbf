#!/usr/bin/env bash
# asycamore next to nginx in one run, with the shared side-by-side harness
# (../shared/bench/compare.sh: server pinned to core 0, wrk to core 1, interleaved rounds,
# medians and ratios). Builds the release binary first. Every load run is bounded by the
# harness's DURATION and goes to 127.0.0.1 only.
#
# Usage: bench/compare.sh [HARNESS_DIR]        (default: ../shared/bench next to the repo)
# Environment: everything compare.sh reads (ROUNDS, DURATION, TESTS, OUT, ...), plus
#   METRICS=off  run asycamore with the data plane's metrics off (what counting costs).
# Needs: nginx-light, wrk, apache2-utils, curl, python3 (apt-get install -y ...).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
harness=${1:-$here/../shared/bench}
[[ -x $harness/compare.sh ]] || { echo "bench/compare.sh: no harness at $harness" >&2; exit 2; }
metrics=${METRICS:-on}
cargo build --release --manifest-path "$here/Cargo.toml" --bin asycamore
export NAME_A=${NAME_A:-asycamore} NAME_B=${NAME_B:-nginx}
exec "$harness/compare.sh" \
  "$here/bench/asycamore-run.sh {port} {root} metrics=$metrics" \
  "$harness/nginx-run.sh {port} {root}"
