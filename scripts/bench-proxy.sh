#!/usr/bin/env bash
# Throughput of the access proxy (issue 5): wrk with keep-alive through `authz proxy` (ES256 JWT,
# the shop policies, forwarding to an upstream) and, in the same run and under the same
# conditions, through nginx as a plain reverse proxy to the same upstream. Prints requests/s,
# p50 and p99 latency of each, the ratio authz / nginx, and the latency each proxy adds over
# calling the upstream directly; docs/benchmarks.md ("Proxy throughput") publishes the figures.
#
# The upstream is a third server that both proxies forward to: nginx answering
# `return 200 '{"ok":true}'` on its own loopback port (its cost is the same for both proxies).
#
# The request is `GET /orders/o-100` with `Authorization: Bearer <ES256 JWT>` for `carol`, minted
# by `authz token` from examples/shop/dev/dev-es256.pem. carol is a business-tier support agent:
# `support-reads-orders` allows it and no `limit` of examples/shop/limits.authz applies to her, so
# every request is decided, allowed and forwarded (alice, tier free, would be limited to 100 a
# minute and answered 429). Before anything is timed, curl checks that each target answers 200
# with the upstream's body, and that authz refuses the same request without its token (401).
#
# authz runs `authz proxy -c CONFIG --listen 127.0.0.1:PORT` with the shop policies and entities,
# one JWT issuer (`https://auth.shop.example`, ES256, `jwks_file` = examples/shop/dev/jwks.json),
# the shop's context mappings and one `[[upstream]]`: once without a decision log ("authz") and,
# unless DECISION_LOG=0, once with the decision log to a file ("authz+log"; the file is emptied
# after each run). Warnings only on stderr (`[log] level = "warn"`).
#
# nginx as a reverse proxy: `proxy_pass` to an `upstream` block with `keepalive 256`,
# `proxy_http_version 1.1` and `Connection ""` (so that, like authz's pooled client, it keeps
# its upstream connections), `access_log off`, `keepalive_requests` raised so that it never
# closes a client connection during the run. It forwards the request headers, Authorization
# included, as authz does.
#
# Fairness: both proxies get the same cores and the same number of workers (tokio worker threads
# for authz, worker processes for nginx), and wrk sends both the very same requests with the same
# threads, connections and duration. Each round times, back to back: the upstream directly, authz,
# authz+log, nginx; the figures are medians over rounds. "added" is the proxy's p50 / p99 minus
# the direct p50 / p99 of the same mode. The CPU column is the proxy's CPU time during the timed
# run over its duration (100% = one core), from /proc; it tells whether the proxy was the
# bottleneck, and divided by the requests/s it gives the proxy's CPU time per request. Modes:
#   unpinned  everything shares all cores; proxies and the upstream get `nproc` workers, wrk
#             THREADS threads.
#   pinned    (2 cores or more) wrk (one thread) and the upstream (one worker) on CPU 0, or the
#             upstream on CPU 1 with 4 cores or more; the proxy alone on the remaining CPUs with
#             one worker per CPU, so that its CPU is its own.
# With LATENCY=1 (default), each mode also measures the latency added at one connection
# (`wrk -t1 -c1`, no queueing): the proxy's own time per request.
#
# Everything runs on loopback, in a temporary directory removed at the end; the nginx instances
# run in the foreground under that prefix (nothing system-wide changes); all servers are stopped
# on exit.
#
# Usage: scripts/bench-proxy.sh
# Environment:
#   DURATION     seconds per measured run (default 15)
#   ROUNDS       measured runs per target and mode; the figures are medians (default 3)
#   WARMUP       seconds of unmeasured load before each run (default 3)
#   CONNECTIONS  keep-alive connections (default 64)
#   THREADS      wrk threads in unpinned mode (default 2)
#   MODES        "unpinned pinned" (default), or one of them
#   DECISION_LOG 0 to skip the authz+log row
#   ASSERTION    1 to add two rows without decision log and with a signed identity assertion
#                (`[assertion]`, ES256 with the shop's development key) on every forwarded request:
#                "authz+assert" (`scope = "request"`, one signature per request) and
#                "authz+idassert" (`scope = "identity"`, one signature per principal and half TTL)
#   LATENCY      0 to skip the one-connection latency runs
#   BASELINE     path of another authz binary (say, a release build of an earlier commit), timed
#                in the same run with the same configuration as "authz" as a "baseline" row, so
#                that a change is compared with what came before it under the same conditions
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
with_log="${DECISION_LOG:-1}"
with_assertion="${ASSERTION:-0}"
with_latency="${LATENCY:-1}"
baseline="${BASELINE:-}"
if [[ -n "$baseline" && ! -x "$baseline" ]]; then
  echo "error: BASELINE=$baseline is not an executable" >&2
  exit 2
fi
cores="$(nproc)"
ticks_per_second="$(getconf CLK_TCK)"

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
shop="$root/examples/shop"

# --- temporary directory, cleanup ---------------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/authz-bench-proxy.XXXXXX")"
declare -A pids=()
stop_one() {
  local name="$1" pid="${pids[$1]:-}"
  [[ -z "$pid" ]] && return 0
  if [[ "$name" == authz* || "$name" == baseline ]]; then
    kill "$pid" 2>/dev/null || true
  else
    kill -QUIT "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  unset "pids[$name]"
}
stop() {
  local name
  for name in "${!pids[@]}"; do
    stop_one "$name"
  done
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

# --- the request ----------------------------------------------------------------------------------
request_path="/orders/o-100"
token="$("$authz" token --key "$shop/dev/dev-es256.pem" --kid shop-dev-1 --iss https://auth.shop.example \
  --aud shop-api --sub carol --ttl 3600)"
authorization="Bearer $token"
upstream_body='{"ok":true}'

cat >"$work/request.lua" <<EOF
wrk.method = "GET"
wrk.path = "$request_path"
wrk.headers["Authorization"] = "$authorization"
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
EOF

# --- servers ------------------------------------------------------------------------------------
# nginx_conf NAME PORT WORKERS BODY: a minimal configuration under $work/NAME.
nginx_conf() {
  local name="$1" port="$2" workers="$3" body="$4"
  mkdir -p "$work/$name"
  cat >"$work/$name/nginx.conf" <<EOF
worker_processes $workers;
pid $work/$name/nginx.pid;
error_log $work/$name/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 120s;
  client_body_temp_path $work/$name/body;
  proxy_temp_path $work/$name/proxy;
  fastcgi_temp_path $work/$name/fastcgi;
  uwsgi_temp_path $work/$name/uwsgi;
  scgi_temp_path $work/$name/scgi;
$body
}
EOF
}

# start_nginx NAME URL_VAR [taskset CPUS]: starts nginx from $work/NAME/nginx.conf.
start_nginx() {
  local name="$1" url="$2"
  shift 2
  "$@" "$nginx_bin" -p "$work/$name" -e "$work/$name/error.log" -c "$work/$name/nginx.conf" \
    -g 'daemon off;' 2>"$work/$name.err" &
  pids[$name]=$!
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "$url$request_path" 2>/dev/null && return 0
    kill -0 "${pids[$name]}" 2>/dev/null || break
    sleep 0.1
  done
  cat "$work/$name.err" "$work/$name/error.log" >&2 2>/dev/null || true
  echo "error: nginx ($name) did not start" >&2
  exit 1
}

# start_upstream WORKERS [taskset CPUS]
start_upstream() {
  local workers="$1"
  shift
  upstream_port="$(free_port)"
  upstream_url="http://127.0.0.1:$upstream_port"
  nginx_conf upstream "$upstream_port" "$workers" "  server {
    listen 127.0.0.1:$upstream_port;
    location / {
      default_type application/json;
      return 200 '$upstream_body';
    }
  }"
  start_nginx upstream "$upstream_url" "$@"
}

# start_nginx_proxy WORKERS [taskset CPUS]
start_nginx_proxy() {
  local workers="$1"
  shift
  local port
  port="$(free_port)"
  nginx_url="http://127.0.0.1:$port"
  nginx_conf nginx "$port" "$workers" "  upstream backend {
    server 127.0.0.1:$upstream_port;
    keepalive 256;
    keepalive_requests 100000000;
  }
  server {
    listen 127.0.0.1:$port;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
    }
  }"
  start_nginx nginx "$nginx_url" "$@"
}

# start_authz NAME WORKERS LOG [taskset CPUS]: LOG is a decision log file, or empty for none.
start_authz() {
  local name="$1" workers="$2" log="$3"
  shift 3
  local binary="$authz"
  [[ "$name" == baseline ]] && binary="$baseline"
  local port
  port="$(free_port)"
  mkdir -p "$work/$name"
  {
    cat <<EOF
[proxy]
mode = "forward"

[policies]
dir = "$shop"
entities = "$shop/entities.json"

[log]
level = "warn"

[[upstream]]
name = "bench"
url = "$upstream_url"
prefix = "/"

[[identity.jwt]]
issuer = "https://auth.shop.example"
audiences = ["shop-api"]
algorithms = ["ES256"]
jwks_file = "$shop/dev/jwks.json"
principal_type = "User"

[context]
mfa = "header:x-mfa"
amount = "query:amount"
"client.ip" = "client_ip"
"client.userAgent" = "header:user-agent"
EOF
    if [[ -n "$log" ]]; then
      printf '\n[decision_log]\npath = "%s"\n' "$log"
    fi
    if [[ "$name" == authz+assert ]]; then
      printf '\n[assertion]\nalgorithm = "ES256"\nkey_file = "%s"\n' "$shop/dev/dev-es256.pem"
    fi
    if [[ "$name" == authz+idassert ]]; then
      printf '\n[assertion]\nalgorithm = "ES256"\nkey_file = "%s"\nscope = "identity"\n' "$shop/dev/dev-es256.pem"
    fi
  } >"$work/$name/proxy.toml"
  # A free port can be taken between the probe and the bind: up to three attempts.
  local url="" attempt
  for attempt in 1 2 3; do
    TOKIO_WORKER_THREADS="$workers" "$@" "$binary" proxy -c "$work/$name/proxy.toml" \
      --listen "127.0.0.1:$port" >"$work/$name.out" 2>"$work/$name.err" &
    pids[$name]=$!
    for _ in $(seq 100); do
      grep -q '^listening on ' "$work/$name.out" && break
      kill -0 "${pids[$name]}" 2>/dev/null || break
      sleep 0.1
    done
    if grep -q '^listening on ' "$work/$name.out"; then
      url="http://127.0.0.1:$port"
      break
    fi
    stop_one "$name"
    say "$name did not start (attempt $attempt): $(tail -3 "$work/$name.err" | tr '\n' ' ')"
    port="$(free_port)"
  done
  if [[ -z "$url" ]]; then
    echo "error: authz proxy ($name) did not start" >&2
    exit 1
  fi
  printf -v "${name//+/_}_url" '%s' "$url"
  # The request without its token is refused, so the figures are those of checked requests.
  local status
  status="$(curl -sS -o /dev/null -w '%{http_code}' "$url$request_path")"
  if [[ "$status" != 401 ]]; then
    echo "error: $name answered $status without a token; expected 401" >&2
    exit 1
  fi
}

# verify TARGET URL: the request answers 200 with the upstream's body.
verify() {
  local target="$1" url="$2" status
  status="$(curl -sS -o "$work/answer" -w '%{http_code}' -H "Authorization: $authorization" "$url$request_path")"
  if [[ "$status" != 200 ]] || [[ "$(cat "$work/answer")" != "$upstream_body" ]]; then
    echo "error: $target answered $status: $(cat "$work/answer"); expected 200 $upstream_body" >&2
    exit 1
  fi
}

# cpu_ticks PID: user + system ticks of a process and its children (nginx's workers).
cpu_ticks() {
  local pid="$1" total=0 child
  for child in "$pid" $(pgrep -P "$pid" || true); do
    [[ -r "/proc/$child/stat" ]] || continue
    total=$((total + $(sed 's/^.*) //' "/proc/$child/stat" | awk '{ print $12 + $13 }')))
  done
  echo "$total"
}

# measure TARGET URL PID WRK_THREADS WRK_CONNECTIONS [taskset CPUS]: prints "rps p50_us p99_us cpu%".
measure() {
  local target="$1" url="$2" pid="$3" wrk_threads="$4" wrk_connections="$5"
  shift 5
  "$@" wrk -t"$wrk_threads" -c"$wrk_connections" -d"${warmup}s" -s "$work/request.lua" "$url" >/dev/null
  local before after
  before="$(cpu_ticks "$pid")"
  "$@" wrk -t"$wrk_threads" -c"$wrk_connections" -d"${duration}s" --latency -s "$work/request.lua" \
    "$url" >"$work/wrk-$target.out"
  after="$(cpu_ticks "$pid")"
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
  awk -v r="$requests" -v d="$duration_us" -v a="$p50_us" -v b="$p99_us" -v t="$((after - before))" \
    -v hz="$ticks_per_second" \
    'BEGIN { printf "%.0f %d %d %.0f\n", r / (d / 1e6), a, b, 100 * t / hz / (d / 1e6) }'
}

# median "rps p50 p99 cpu"...: the median of each column (the upper one of an even count).
median() {
  local column
  for column in 1 2 3 4; do
    printf '%s\n' "$@" | awk -v c="$column" '{ print $c }' | sort -n |
      awk '{ v[NR] = $1 } END { printf "%s ", v[int(NR / 2) + 1] }'
  done
  echo
}

ms() { awk -v us="$1" 'BEGIN { printf "%.2f", us / 1000 }'; }
added() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.2f", (a - b) / 1000 }'; }
thousands() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; }

# --- run ----------------------------------------------------------------------------------------
cpu_model="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
say "$(date -u +%Y-%m-%dT%H:%MZ), $cores cores ($cpu_model), load average $(cut -d' ' -f1-3 /proc/loadavg)"
say "authz: $("$authz" --version 2>/dev/null || echo "$authz") at $(git rev-parse --short HEAD 2>/dev/null || echo '?'); $("$nginx_bin" -v 2>&1); $(wrk -v 2>&1 | head -1)"

targets=(authz)
if [[ -n "$baseline" ]]; then
  targets+=(baseline)
  say "baseline: $("$baseline" --version 2>/dev/null || echo "$baseline") at $baseline"
fi
[[ "$with_log" == 1 ]] && targets+=(authz+log)
[[ "$with_assertion" == 1 ]] && targets+=(authz+assert authz+idassert)
targets+=(nginx)

results=()
latency_results=()
for mode in $modes; do
  case "$mode" in
    unpinned)
      workers="$cores"
      upstream_workers="$cores"
      wrk_threads="$threads"
      proxy_pin=()
      upstream_pin=()
      wrk_pin=()
      ;;
    pinned)
      if ((cores < 2)); then
        say "pinned: skipped, one core only"
        continue
      fi
      upstream_workers=1
      wrk_threads=1
      wrk_pin=(taskset -c 0)
      if ((cores >= 4)); then
        upstream_pin=(taskset -c 1)
        proxy_pin=(taskset -c "2-$((cores - 1))")
        workers=$((cores - 2))
      else
        upstream_pin=(taskset -c 0)
        proxy_pin=(taskset -c "1-$((cores - 1))")
        workers=$((cores - 1))
      fi
      ;;
    *)
      echo "error: unknown mode $mode" >&2
      exit 2
      ;;
  esac
  say "$mode: $workers proxy workers, upstream $upstream_workers, wrk -t$wrk_threads -c$connections -d${duration}s (+${warmup}s warm-up)"

  start_upstream "$upstream_workers" "${upstream_pin[@]}"
  verify upstream "$upstream_url"
  start_authz authz "$workers" "" "${proxy_pin[@]}"
  verify authz "$authz_url"
  if [[ -n "$baseline" ]]; then
    start_authz baseline "$workers" "" "${proxy_pin[@]}"
    verify baseline "$baseline_url"
  fi
  if [[ "$with_log" == 1 ]]; then
    start_authz authz+log "$workers" "$work/decisions.log" "${proxy_pin[@]}"
    verify authz+log "$authz_log_url"
  fi
  if [[ "$with_assertion" == 1 ]]; then
    start_authz authz+assert "$workers" "" "${proxy_pin[@]}"
    verify authz+assert "$authz_assert_url"
    start_authz authz+idassert "$workers" "" "${proxy_pin[@]}"
    verify authz+idassert "$authz_idassert_url"
  fi
  start_nginx_proxy "$workers" "${proxy_pin[@]}"
  verify nginx "$nginx_url"
  declare -A url_of=([upstream]="$upstream_url" [authz]="$authz_url" [nginx]="$nginx_url")
  [[ "$with_log" == 1 ]] && url_of[authz+log]="$authz_log_url"
  [[ -n "$baseline" ]] && url_of[baseline]="$baseline_url"
  if [[ "$with_assertion" == 1 ]]; then
    url_of[authz+assert]="$authz_assert_url"
    url_of[authz+idassert]="$authz_idassert_url"
  fi

  # All servers stay up for the mode (the idle ones cost nothing); each round times every target
  # back to back, so slow drifts in the machine's load hit all alike.
  declare -A runs=()
  for round in $(seq "$rounds"); do
    line="$mode round $round:"
    for target in upstream "${targets[@]}"; do
      run="$(measure "$target" "${url_of[$target]}" "${pids[$target]}" "$wrk_threads" "$connections" "${wrk_pin[@]}")"
      runs[$target]+="$run"$'\n'
      line+=" $target $run;"
      if [[ "$target" == authz+log ]]; then
        : >"$work/decisions.log"
      fi
    done
    say "$line (req/s p50_us p99_us cpu%) load average $(cut -d" " -f1 /proc/loadavg)"
  done

  declare -A med=()
  for target in upstream "${targets[@]}"; do
    mapfile -t lines < <(printf '%s' "${runs[$target]}")
    med[$target]="$(median "${lines[@]}")"
  done
  read -r direct_rps direct_p50 direct_p99 _ <<<"${med[upstream]}"
  read -r nginx_rps _ _ _ <<<"${med[nginx]}"
  say "$mode: upstream directly $direct_rps req/s (p50 $direct_p50 µs, p99 $direct_p99 µs)"
  for target in "${targets[@]}"; do
    read -r rps p50 p99 cpu <<<"${med[$target]}"
    ratio="$(awk -v a="$rps" -v n="$nginx_rps" 'BEGIN { printf "%.2f", a / n }')"
    say "$mode: $target $rps req/s (p50 $p50 µs, p99 $p99 µs, CPU $cpu%), / nginx $ratio"
    results+=("| $mode | $target | $workers | $(thousands "$rps") | $ratio | $(ms "$p50") / $(ms "$p99") | $(added "$p50" "$direct_p50") / $(added "$p99" "$direct_p99") | $cpu% | $(awk -v c="$cpu" -v r="$rps" 'BEGIN { printf "%.1f", c * 1e4 / r }') |")
  done
  results+=("| $mode | upstream directly | $upstream_workers | $(thousands "$direct_rps") | | $(ms "$direct_p50") / $(ms "$direct_p99") | | | |")

  if [[ "$with_latency" == 1 ]]; then
    declare -A one=()
    for target in upstream "${targets[@]}"; do
      one[$target]="$(measure "$target-c1" "${url_of[$target]}" "${pids[$target]}" 1 1 "${wrk_pin[@]}")"
      : >"$work/decisions.log"
    done
    read -r _ direct1_p50 direct1_p99 _ <<<"${one[upstream]}"
    for target in "${targets[@]}"; do
      read -r rps p50 p99 _ <<<"${one[$target]}"
      say "$mode, one connection: $target $rps req/s, p50 $p50 µs, p99 $p99 µs (upstream directly p50 $direct1_p50, p99 $direct1_p99)"
      latency_results+=("| $mode | $target | $(ms "$p50") / $(ms "$p99") | $(added "$p50" "$direct1_p50") / $(added "$p99" "$direct1_p99") |")
    done
    latency_results+=("| $mode | upstream directly | $(ms "$direct1_p50") / $(ms "$direct1_p99") | |")
  fi
  stop
  unset url_of runs med one
done

echo
echo "| mode | target | workers | req/s | / nginx | p50 / p99 ms | added p50 / p99 ms | proxy CPU | CPU µs / request |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${results[@]}"
if ((${#latency_results[@]})); then
  echo
  echo "One connection (wrk -t1 -c1 -d${duration}s):"
  echo
  echo "| mode | target | p50 / p99 ms | added p50 / p99 ms |"
  echo "|---|---|---:|---:|"
  printf '%s\n' "${latency_results[@]}"
fi
