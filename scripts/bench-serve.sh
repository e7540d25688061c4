#!/usr/bin/env bash
# Throughput of the decision server (issue 4): wrk with keep-alive against `POST /v1/decide` of
# `authz serve` and, in the same run and under the same conditions, against nginx answering a
# static 200 with a small JSON body. Prints requests/s, p50 and p99 latency of each and the ratio
# authz / nginx; docs/benchmarks.md ("Decision server throughput") publishes the figures.
#
# The workload is the examples/docs policy set with its entities: nested roles, groups, sets,
# `containsAll`, folder hierarchies, forbids with reasons and limits with obligations, so each
# decision walks real hierarchies and answers a full explanation. wrk rotates over the fourteen
# requests of examples/docs/README.md (5 allow, 9 deny); every one is checked with curl against
# its expected decision before anything is timed.
#
# Fairness: both servers get the same cores and the same number of workers (tokio worker threads
# for authz, worker processes for nginx), and wrk sends both the same POST requests with the same
# threads, connections and duration. nginx's keepalive_requests is raised so that, like hyper, it
# never closes a keep-alive connection during the run. Each round times authz then nginx back to back.
# Modes:
#   unpinned  servers and wrk share all cores; servers get `nproc` workers, wrk THREADS threads.
#   pinned    (2 cores or more) wrk on CPU 0 with one thread, the server on the other CPUs with
#             one worker per CPU, so that the load generator does not steal the server's CPU.
#
# Everything runs on loopback, in a temporary directory that is removed at the end; nginx runs in
# the foreground under that prefix (nothing system-wide changes); both servers are stopped on exit.
#
# Usage: scripts/bench-serve.sh
# Environment:
#   DURATION     seconds per measured run (default 15)
#   ROUNDS       measured runs per server and mode, alternating authz and nginx; the figures are
#                the medians over rounds (default 3)
#   WARMUP       seconds of unmeasured load before each run (default 3)
#   CONNECTIONS  keep-alive connections (default 64)
#   THREADS      wrk threads in unpinned mode (default 2)
#   MODES        "unpinned pinned" (default), or one of them
#   NO_BUILD=1   use target/release/authz as it is
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

duration="${DURATION:-15}"
warmup="${WARMUP:-3}"
connections="${CONNECTIONS:-64}"
threads="${THREADS:-2}"
modes="${MODES:-unpinned pinned}"
rounds="${ROUNDS:-3}"
cores="$(nproc)"

say() { echo "==> $*" >&2; }

# --- tools --------------------------------------------------------------------------------------
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need+=(nginx)
command -v curl >/dev/null || need+=(curl)
if ((${#need[@]})); then
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y "${need[@]}" >/dev/null || { apt-get update >/dev/null && apt-get install -y "${need[@]}" >/dev/null; }
fi
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"

if [[ "${NO_BUILD:-}" != 1 ]]; then
  say "cargo build --release -p authz-server"
  cargo build --release -p authz-server
fi
authz="$root/target/release/authz"

# --- temporary directory, cleanup ---------------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/authz-bench-serve.XXXXXX")"
authz_pid=""
nginx_pid=""
stop() {
  if [[ -n "$authz_pid" ]]; then
    kill "$authz_pid" 2>/dev/null || true
    wait "$authz_pid" 2>/dev/null || true
    authz_pid=""
  fi
  if [[ -n "$nginx_pid" ]]; then
    kill -QUIT "$nginx_pid" 2>/dev/null || true
    wait "$nginx_pid" 2>/dev/null || true
    nginx_pid=""
  fi
}
cleanup() {
  stop
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
    echo $((20000 + RANDOM % 20000))
}

# --- the requests ---------------------------------------------------------------------------------
# expected decision, then the request body: the table of examples/docs/README.md.
cat >"$work/requests.tsv" <<'EOF'
allow	{"principal":{"type":"User","id":"bob"},"action":"read","resource":{"type":"Document","id":"roadmap"},"context":{}}
deny	{"principal":{"type":"User","id":"bob"},"action":"write","resource":{"type":"Document","id":"budget-2025"},"context":{}}
deny	{"principal":{"type":"User","id":"carol"},"action":"read","resource":{"type":"Document","id":"budget-2025"},"context":{}}
allow	{"principal":{"type":"User","id":"dave"},"action":"read","resource":{"type":"Document","id":"budget-2025"},"context":{}}
deny	{"principal":{"type":"User","id":"dave"},"action":"read","resource":{"type":"Document","id":"roadmap"},"context":{}}
deny	{"principal":{"type":"User","id":"erin"},"action":"read","resource":{"type":"Document","id":"roadmap"},"context":{}}
deny	{"principal":{"type":"User","id":"frank"},"action":"read","resource":{"type":"Document","id":"roadmap"},"context":{}}
deny	{"principal":{"type":"User","id":"alice"},"action":"export","resource":{"type":"Document","id":"salaries"},"context":{"format":"pdf"}}
deny	{"principal":{"type":"User","id":"alice"},"action":"delete","resource":{"type":"Document","id":"salaries"},"context":{}}
deny	{"principal":{"type":"User","id":"alice"},"action":"export","resource":{"type":"Document","id":"roadmap"},"context":{"format":"html"}}
allow	{"principal":{"type":"User","id":"alice"},"action":"export","resource":{"type":"Document","id":"roadmap"},"context":{"format":"pdf"}}
allow	{"principal":{"type":"User","id":"bob"},"action":"list","resource":{"type":"Folder","id":"acme-eng"},"context":{}}
allow	{"principal":{"type":"User","id":"frank"},"action":"read","resource":{"type":"Document","id":"globex-plan"},"context":{}}
deny	{"principal":{"type":"User","id":"carol"},"action":"read","resource":{"type":"Document","id":"salaries"},"context":{}}
EOF

# The wrk script: the same POST requests, rotated, for both servers; `done` prints one line.
{
  echo 'local bodies = {'
  cut -f2 "$work/requests.tsv" | sed 's/^/  [[/; s/$/]],/'
  cat <<'EOF'
}
local prepared = {}
local next_index = 0
function init(args)
  for i, body in ipairs(bodies) do
    prepared[i] = wrk.format("POST", "/v1/decide", { ["Content-Type"] = "application/json" }, body)
  end
end
function request()
  next_index = next_index % #prepared + 1
  return prepared[next_index]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
EOF
} >"$work/decide.lua"

# --- servers ------------------------------------------------------------------------------------
# start_authz WORKERS [taskset CPUS]
start_authz() {
  local workers="$1"
  shift
  : >"$work/authz.out"
  TOKIO_WORKER_THREADS="$workers" "$@" "$authz" serve -p examples/docs -e examples/docs/entities.json \
    --listen 127.0.0.1:0 --no-watch >"$work/authz.out" 2>"$work/authz.err" &
  authz_pid=$!
  local line=""
  for _ in $(seq 100); do
    line="$(grep -m1 '^listening on ' "$work/authz.out" || true)"
    [[ -n "$line" ]] && break
    kill -0 "$authz_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -z "$line" ]]; then
    cat "$work/authz.err" >&2
    echo "error: authz serve did not start" >&2
    exit 1
  fi
  authz_url="${line#listening on }"
}

# start_nginx WORKERS [taskset CPUS]
start_nginx() {
  local workers="$1"
  shift
  local port
  port="$(free_port)"
  mkdir -p "$work/nginx"
  cat >"$work/nginx/nginx.conf" <<EOF
worker_processes $workers;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 120s;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  server {
    listen 127.0.0.1:$port;
    location / {
      default_type application/json;
      return 200 '{"decision":"allow"}';
    }
  }
}
EOF
  "$@" "$nginx_bin" -p "$work/nginx" -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf" \
    -g 'daemon off;' 2>"$work/nginx.err" &
  nginx_pid=$!
  nginx_url="http://127.0.0.1:$port"
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "$nginx_url/" 2>/dev/null && return 0
    kill -0 "$nginx_pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$work/nginx.err" "$work/nginx/error.log" >&2 2>/dev/null || true
  echo "error: nginx did not start" >&2
  exit 1
}

# Every request answers 200 with its expected decision (authz) or 200 at all (nginx).
verify() {
  local target="$1" url="$2" expected body status answer
  while IFS=$'\t' read -r expected body; do
    answer="$(curl -sS -o "$work/answer" -w '%{http_code}' -H 'Content-Type: application/json' \
      --data-binary "$body" "$url/v1/decide")"
    status="$answer"
    if [[ "$status" != 200 ]]; then
      echo "error: $target answered $status to $body: $(cat "$work/answer")" >&2
      exit 1
    fi
    if [[ "$target" == authz ]] && ! grep -q "\"decision\":\"$expected\"" "$work/answer"; then
      echo "error: authz answered $(cat "$work/answer") to $body; expected $expected" >&2
      exit 1
    fi
  done <"$work/requests.tsv"
}

# measure TARGET URL WRK_THREADS [taskset CPUS]: prints "rps p50_us p99_us".
measure() {
  local target="$1" url="$2" wrk_threads="$3"
  shift 3
  "$@" wrk -t"$wrk_threads" -c"$connections" -d"${warmup}s" -s "$work/decide.lua" "$url/v1/decide" >/dev/null
  "$@" wrk -t"$wrk_threads" -c"$connections" -d"${duration}s" --latency -s "$work/decide.lua" \
    "$url/v1/decide" >"$work/wrk-$target.out"
  local result
  result="$(grep '^RESULT ' "$work/wrk-$target.out")" || {
    cat "$work/wrk-$target.out" >&2
    exit 1
  }
  # requests= duration_us= p50_us= p99_us= connect= read= write= status= timeout=, all integers.
  local requests duration_us p50_us p99_us connect read write status timeout
  eval "$(tr ' ' '\n' <<<"${result#RESULT }")"
  local failures=$((connect + read + write + status + timeout))
  if ((failures > 0)); then
    echo "warning: $target: $failures errors (connect $connect, read $read, write $write, non-2xx $status, timeout $timeout)" >&2
  fi
  awk -v r="$requests" -v d="$duration_us" -v a="$p50_us" -v b="$p99_us" \
    'BEGIN { printf "%.0f %d %d\n", r / (d / 1e6), a, b }'
}

# median "rps p50 p99"...: the median of each column (the upper one of an even count).
median() {
  local column
  for column in 1 2 3; do
    printf '%s\n' "$@" | awk -v c="$column" '{ print $c }' | sort -n |
      awk '{ v[NR] = $1 } END { printf "%s ", v[int(NR / 2) + 1] }'
  done
  echo
}

# --- run ----------------------------------------------------------------------------------------
cpu_model="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
say "$(date -u +%Y-%m-%dT%H:%MZ), $cores cores ($cpu_model), load average $(cut -d' ' -f1-3 /proc/loadavg)"
say "authz: $("$authz" --version 2>/dev/null || echo "$authz"); $("$nginx_bin" -v 2>&1); $(wrk -v 2>&1 | head -1)"

results=()
for mode in $modes; do
  case "$mode" in
    unpinned)
      workers="$cores"
      wrk_threads="$threads"
      server_pin=()
      wrk_pin=()
      ;;
    pinned)
      if ((cores < 2)); then
        say "pinned: skipped, one core only"
        continue
      fi
      workers=$((cores - 1))
      wrk_threads=1
      server_pin=(taskset -c "1-$((cores - 1))")
      wrk_pin=(taskset -c 0)
      ;;
    *)
      echo "error: unknown mode $mode" >&2
      exit 2
      ;;
  esac
  say "$mode: $workers server workers, wrk -t$wrk_threads -c$connections -d${duration}s (+${warmup}s warm-up)"

  start_authz "$workers" "${server_pin[@]}"
  verify authz "$authz_url"
  authz_threads="$(find "/proc/$authz_pid/task" -mindepth 1 -maxdepth 1 | wc -l)"
  start_nginx "$workers" "${server_pin[@]}"
  verify nginx "$nginx_url"
  # Both servers stay up for the mode (the idle one costs nothing); each round times authz, then
  # nginx, so slow drifts in the machine's load hit both alike.
  authz_runs=()
  nginx_runs=()
  for round in $(seq "$rounds"); do
    authz_runs+=("$(measure authz "$authz_url" "$wrk_threads" "${wrk_pin[@]}")")
    nginx_runs+=("$(measure nginx "$nginx_url" "$wrk_threads" "${wrk_pin[@]}")")
    say "$mode round $round: authz ${authz_runs[-1]}, nginx ${nginx_runs[-1]} (req/s p50_us p99_us); load average $(cut -d" " -f1 /proc/loadavg)"
  done
  stop
  read -r authz_rps authz_p50 authz_p99 < <(median "${authz_runs[@]}")
  read -r nginx_rps nginx_p50 nginx_p99 < <(median "${nginx_runs[@]}")

  ratio="$(awk -v a="$authz_rps" -v n="$nginx_rps" 'BEGIN { printf "%.2f", a / n }')"
  say "$mode: authz $authz_rps req/s (p50 ${authz_p50} µs, p99 ${authz_p99} µs; $authz_threads threads in the process), nginx $nginx_rps req/s (p50 ${nginx_p50} µs, p99 ${nginx_p99} µs), ratio $ratio"
  results+=("| $mode | $workers | -t$wrk_threads -c$connections -d${duration}s x $rounds | $authz_rps | $nginx_rps | $ratio | $authz_p50 / $authz_p99 | $nginx_p50 / $nginx_p99 |")
done

echo
echo "| mode | server workers | wrk | authz req/s | nginx req/s | authz / nginx | authz p50 / p99 µs | nginx p50 / p99 µs |"
echo "|---|---:|---|---:|---:|---:|---:|---:|"
printf '%s\n' "${results[@]}"
