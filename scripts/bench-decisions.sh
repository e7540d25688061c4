#!/usr/bin/env bash
# Prints the decision table of issue 3 (docs/benchmarks.md): the median time of one decision of
# every engine and form at each workload size N, its ratio to the reference engine of the same run
# (authz once it is in the harness, Cedar's literal form until then), the load time, the peak RSS
# and the memory the loaded engine holds. Builds and runs the `decision_table` bench of the tests
# crate in release (`cargo bench`); each (engine, form, N) runs in its own child process, killed
# after TIMEOUT seconds.
#
# Usage: scripts/bench-decisions.sh [extra decision_table options]
# Environment:
#   POLICIES  comma-separated workload sizes (default 10,100,1000,10000)
#   ENGINES   comma-separated engines (default: all the harness knows)
#   FORMS     literal,expert (default both)
#   MEASURE_SECONDS  measurement budget per row, in seconds (default 3)
#   TIMEOUT   seconds after which a row is abandoned and reported as timed out (default 300)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

args=(--policies "${POLICIES:-10,100,1000,10000}" --seconds "${MEASURE_SECONDS:-3}"
  --timeout "${TIMEOUT:-300}")
if [[ -n "${ENGINES:-}" ]]; then
  args+=(--engines "$ENGINES")
fi
if [[ -n "${FORMS:-}" ]]; then
  args+=(--forms "$FORMS")
fi

echo "==> cargo bench -p authz-tests --bench decision_table -- ${args[*]} $*" >&2
cargo bench -p authz-tests --bench decision_table -- "${args[@]}" "$@"
