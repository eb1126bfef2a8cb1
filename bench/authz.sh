#!/usr/bin/env bash
# bench/authz.sh: token issuance and introspection of `gatewise authz`
# against npm oidc-provider, on this machine, in the same run. See
# bench/README.md ("The authorization server").
#
#   bench/authz.sh                    # DURATION=10 REPS=3
#   DURATION=3 REPS=1 bench/authz.sh  # a quick check (not a measurement)
#
# Servers run on CPU $SERVER_CPU, wrk on CPU $LOAD_CPU (16 connections, one
# thread, a Lua script POSTing the form). All traffic stays on 127.0.0.1;
# every process started here is stopped on exit.
set -euo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
OUT=$BENCH/out/authz
DURATION=${DURATION:-10}
REPS=${REPS:-3}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-16}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
GW_PORT=18191
OP_PORT=18192
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/gatewise
for v in DURATION REPS WARMUP CONNECTIONS SERVER_CPU LOAD_CPU; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "authz.sh: $v must be a whole number" >&2; exit 2; }
done
for tool in wrk taskset node openssl curl python3; do
  command -v "$tool" >/dev/null || { echo "authz.sh: $tool is not installed" >&2; exit 1; }
done
[[ -x $BIN ]] || { echo "authz.sh: build first: cargo build --release -p gatewise-cli" >&2; exit 1; }
[[ -d $ROOT/interop/oidc-provider/node_modules/oidc-provider ]] || {
  echo "authz.sh: run npm ci --prefix interop/oidc-provider first" >&2; exit 1; }
log() { printf '[authz-bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
rm -rf "$OUT"; mkdir -p "$OUT/runs"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

export BENCH_SECRET=bench-secret-0123456789abcdef BENCH_OPAQUE_SECRET=bench-opaque-secret-0123456789
RESOURCE=https://api.example.test
config() { # $1 = algorithm
  cat <<EOT
issuer = "http://127.0.0.1:$GW_PORT"
listen = "127.0.0.1:$GW_PORT"
storage = "sqlite::memory:"
scopes = ["orders.read"]
resources = ["$RESOURCE"]
[keys]
algorithm = "$1"
[[clients]]
id = "bench"
secret_env = "BENCH_SECRET"
grant_types = ["client_credentials"]
scopes = ["orders.read"]
resources = ["$RESOURCE"]
token_format = "jwt"
[[clients]]
id = "bench-opaque"
secret_env = "BENCH_OPAQUE_SECRET"
grant_types = ["client_credentials"]
scopes = ["orders.read"]
resources = ["$RESOURCE"]
token_format = "opaque"
EOT
}
config RS256 >"$OUT/rs256.toml"
config ES256 >"$OUT/es256.toml"

# wrk script: POST a form with Basic authentication; counts non-200 answers.
cat >"$OUT/post.lua" <<'EOT'
local body, auth = os.getenv("FORM"), os.getenv("AUTH")
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
if auth ~= nil and auth ~= "" then wrk.headers["Authorization"] = "Basic " .. auth end
local bad = 0
response = function(status) if status ~= 200 then bad = bad + 1 end end
done = function() io.write(string.format("non200=%d\n", bad)) end
EOT
b64() { printf '%s' "$1" | base64 -w0; }

wait_port() { for _ in $(seq 1 150); do curl -s -o /dev/null "http://127.0.0.1:$1/.well-known/openid-configuration" && return 0; sleep 0.2; done; return 1; }
start_gw() { # $1 = config
  taskset -c "$SERVER_CPU" "$BIN" authz --config "$1" >"$OUT/gw.log" 2>&1 &
  SPID=$!; PIDS+=("$SPID"); wait_port $GW_PORT || { cat "$OUT/gw.log" >&2; exit 1; }
}
start_op() {
  (cd "$ROOT/interop/oidc-provider" && exec taskset -c "$SERVER_CPU" node server.mjs --port $OP_PORT) >"$OUT/op.log" 2>&1 &
  SPID=$!; PIDS+=("$SPID"); wait_port $OP_PORT || { cat "$OUT/op.log" >&2; exit 1; }
}
stop_server() { kill "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; }
run() { # $1 = label, $2 = url, FORM and AUTH exported
  local f="$OUT/runs/$1-r$rep.txt"
  taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" -s "$OUT/post.lua" "$2" >/dev/null
  taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$OUT/post.lua" "$2" >"$f"
  log "$1: $(grep 'Requests/sec' "$f" | awk '{print $2}') req/s, p99 $(grep ' 99%' "$f" | awk '{print $2}'), $(grep non200 "$f")"
}

log "RSA-2048 signing on one core (openssl speed)"
taskset -c "$SERVER_CPU" openssl speed -seconds 3 rsa2048 2>/dev/null | grep '^rsa 2048' >"$OUT/openssl.txt" || true
cat "$OUT/openssl.txt" >&2

for ((rep = 1; rep <= REPS; rep++)); do
  log "repetition $rep of $REPS"
  export FORM="grant_type=client_credentials&scope=orders.read&resource=$RESOURCE" AUTH=""
  for alg in rs256 es256; do
    start_gw "$OUT/$alg.toml"
    AUTH=$(b64 "bench:$BENCH_SECRET")
    run "gatewise-$alg" "http://127.0.0.1:$GW_PORT/token"
    if [[ $alg == es256 ]]; then
      AUTH=$(b64 "bench-opaque:$BENCH_OPAQUE_SECRET")
      opaque=$(curl -s -u "bench-opaque:$BENCH_OPAQUE_SECRET" -d "$FORM" "http://127.0.0.1:$GW_PORT/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
      FORM="token=$opaque"
      run "gatewise-introspect-opaque" "http://127.0.0.1:$GW_PORT/introspect"
      FORM="grant_type=client_credentials&scope=orders.read&resource=$RESOURCE"
    fi
    stop_server
  done
  start_op
  AUTH=$(b64 "gateway-test:gateway-test-secret")
  FORM="grant_type=client_credentials&scope=orders.read&resource=https://api.gatewise.test"
  run "oidc-provider-rs256" "http://127.0.0.1:$OP_PORT/token"
  # client_secret_post: the credentials in the form, no Basic header.
  AUTH=""
  FORM="grant_type=client_credentials&scope=orders.read&resource=https://api.gatewise.test&client_id=gateway-test-es256&client_secret=gateway-test-es256-secret"
  run "oidc-provider-es256" "http://127.0.0.1:$OP_PORT/token"
  FORM="grant_type=client_credentials&scope=orders.read&resource=$RESOURCE"
  stop_server
done
python3 "$BENCH/authz_report.py" "$OUT" "$BENCH/authz-results.md"
log "done: bench/authz-results.md"
