#!/usr/bin/env bash
# Times `authz check` on the generated 10,000-policy workload (issue 2's acceptance: under 1 s in
# release on this machine). Builds the release binary once, generates the workload into a temporary
# directory with the `gen-workload` binary of the tests crate, runs `authz check` on it RUNS times
# (default 7) and prints each wall time and the median.
#
# Usage: scripts/check-10k.sh [RUNS]
# Environment: POLICIES (default 10000), SEED (default 42), KEEP=1 keeps the generated directory.
set -euo pipefail

runs="${1:-7}"
policies="${POLICIES:-10000}"
seed="${SEED:-42}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! [[ "$runs" =~ ^[1-9][0-9]*$ ]]; then
  echo "check-10k: RUNS must be a positive integer, not '$runs'" >&2
  exit 1
fi

echo "==> building the release binary"
cargo build --release -p authz-server
cargo build --release -p authz-tests --bin gen-workload
target_dir="$(cargo metadata --format-version 1 --no-deps 2>/dev/null \
  | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
target_dir="${target_dir:-$root/target}"
authz="$target_dir/release/authz"
generator="$target_dir/release/gen-workload"
if [[ ! -x "$authz" ]]; then
  echo "check-10k: no binary at $authz" >&2
  exit 1
fi

workdir="$(mktemp -d "${TMPDIR:-/tmp}/authz-10k.XXXXXX")"
if [[ "${KEEP:-0}" != 1 ]]; then
  trap 'rm -rf "$workdir"' EXIT
fi
echo "==> generating $policies policies (seed $seed) into $workdir"
"$generator" --policies "$policies" --seed "$seed" --out "$workdir"

# One untimed run first: it must pass, and it warms the page cache.
echo "==> authz check (warm-up)"
if ! "$authz" check "$workdir" >/dev/null; then
  echo "check-10k: authz check failed on the generated workload" >&2
  "$authz" check "$workdir" 2>&1 | head -40 >&2 || true
  exit 1
fi

# Wall time of each run in milliseconds, measured with bash and date's nanosecond clock so that
# nothing beyond coreutils is needed.
times=()
for ((run = 1; run <= runs; run++)); do
  start="$(date +%s%N)"
  if ! "$authz" check "$workdir" >/dev/null 2>"$workdir/.stderr"; then
    echo "check-10k: authz check failed on run $run" >&2
    cat "$workdir/.stderr" >&2
    exit 1
  fi
  end="$(date +%s%N)"
  ms="$(( (end - start) / 1000000 )).$(printf '%03d' $(( (end - start) / 1000 % 1000 )))"
  times+=("$ms")
  echo "run $run: ${ms} ms"
done

median="$(printf '%s\n' "${times[@]}" | sort -n | awk '{ v[NR] = $1 } END {
  if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }')"
echo "median of $runs runs: ${median} ms for $policies policies"

# Peak memory of one run, when GNU time is available.
if [[ -x /usr/bin/time ]]; then
  /usr/bin/time -f "peak RSS of one run: %M KiB" -o "$workdir/.rss" "$authz" check "$workdir" >/dev/null 2>&1
  cat "$workdir/.rss"
fi
