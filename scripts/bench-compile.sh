#!/usr/bin/env bash
# Prints how compile time grows with the size of a policy set (issue 13): the per-tenant form of
# the issue-3 workload at N = 1,000 to 100,000 policies, compiled from source RUNS times each
# (median), with the time per 1,000 policies and the ratio to N = 10,000. Builds and runs the
# `compile_scaling` bench of the tests crate in release.
#
# Usage: scripts/bench-compile.sh
# Environment: POLICIES  comma-separated sizes (default 1000,10000,20000,40000,100000)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if [[ -n "${POLICIES:-}" ]]; then
  export AUTHZ_BENCH_POLICIES="$POLICIES"
fi
echo "==> cargo bench -p authz-tests --bench compile_scaling" >&2
cargo bench -p authz-tests --bench compile_scaling
