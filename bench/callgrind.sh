#!/usr/bin/env bash
# bench/callgrind.sh: instructions per proxied request, counted by callgrind.
# Unlike req/s, the count does not depend on what else the machine is doing,
# so it compares two builds of the hot path on a shared machine.
#
#   bench/callgrind.sh [plain|jwt] [seconds]     # default: plain 6
#   LOGGING=true bench/callgrind.sh plain        # with the call log on (SQLite)
#
# Needs: valgrind, wrk, nginx, curl, a release build (cargo build --release -p
# gatewise-cli) and the tokens of a bench/run.sh run (bench/out/jwks.json,
# rotation.txt) for the jwt mode. Starts nginx on 127.0.0.1:18080 (the
# upstream of bench/run.sh) when nothing answers there, and gatewise on
# 127.0.0.1:18090 under callgrind; both stop at the end. Writes
# bench/out/callgrind-MODE/ (profile, wrk output); `callgrind_annotate` on
# cg.out.1 shows where the instructions go.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODE=${1:-plain}
DUR=${2:-6}
LOGGING=${LOGGING:-false}
[[ $MODE == plain || $MODE == jwt ]] || { echo "callgrind.sh: mode is plain or jwt" >&2; exit 2; }
[[ $DUR =~ ^[0-9]+$ ]] || { echo "callgrind.sh: seconds must be a whole number" >&2; exit 2; }
OUT=$ROOT/bench/out/callgrind-$MODE
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/gatewise
for tool in valgrind callgrind_control callgrind_annotate wrk nginx curl; do
  command -v "$tool" >/dev/null || { echo "callgrind.sh: $tool is not installed" >&2; exit 1; }
done
[[ -x $BIN ]] || { echo "callgrind.sh: build first: cargo build --release -p gatewise-cli" >&2; exit 1; }
TOKEN=x
if [[ $MODE == jwt ]]; then
  [[ -s $ROOT/bench/out/rotation.txt ]] || { echo "callgrind.sh: run bench/run.sh once for the tokens" >&2; exit 1; }
  TOKEN=$(head -n1 "$ROOT/bench/out/rotation.txt")
fi
rm -rf "$OUT"
mkdir -p "$OUT/ngx/logs" "$OUT/ngx/tmp"
cat >"$OUT/gw.toml" <<EOT
[server]
listen = "127.0.0.1:18090"
shutdown_grace = "1s"
[admin]
enabled = false
[call_log]
enabled = $LOGGING
path = "$OUT/calllog/calls.db"
spool_dir = "$OUT/calllog/spool"
[[upstreams]]
name = "nginx"
targets = ["http://127.0.0.1:18080"]
[[routes]]
name = "plain"
path = "/plain"
upstream = "nginx"
EOT
if [[ $MODE == jwt ]]; then
  cat >>"$OUT/gw.toml" <<EOT
[[issuers]]
name = "bench"
issuer = "https://bench.gatewise.test"
jwks_file = "$ROOT/bench/out/jwks.json"
algorithms = ["RS256"]
[[routes]]
name = "jwt"
path_prefix = "/jwt"
upstream = "nginx"
[routes.jwt]
issuers = ["bench"]
audiences = ["https://api.bench.test"]
require_at_jwt = true
scopes_all = ["bench.read"]
EOT
fi
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
if ! curl -s -o /dev/null http://127.0.0.1:18080/; then
  cat >"$OUT/ngx/nginx.conf" <<EOT
worker_processes 1;
daemon off;
pid nginx.pid;
error_log logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 10000000;
  client_body_temp_path $OUT/ngx/tmp;
  proxy_temp_path $OUT/ngx/tmp;
  fastcgi_temp_path $OUT/ngx/tmp;
  uwsgi_temp_path $OUT/ngx/tmp;
  scgi_temp_path $OUT/ngx/tmp;
  server { listen 127.0.0.1:18080; location / { default_type application/json; return 200 '{"ok":true}'; } }
}
EOT
  nginx -p "$OUT/ngx/" -c nginx.conf -e logs/error.log &
  PIDS+=($!)
  sleep 0.5
fi
valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.out" "$BIN" serve --config "$OUT/gw.toml" >"$OUT/gatewise.log" 2>&1 &
VPID=$!
PIDS+=("$VPID")
for _ in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:18090/plain && break; sleep 0.3; done
URL=http://127.0.0.1:18090/plain
[[ $MODE == jwt ]] && URL=http://127.0.0.1:18090/jwt/x
wrk -t1 -c16 -d3s -H "Authorization: Bearer $TOKEN" "$URL" >/dev/null
callgrind_control --zero "$VPID" >/dev/null
wrk -t1 -c16 -d"${DUR}s" -H "Authorization: Bearer $TOKEN" "$URL" >"$OUT/wrk.txt"
callgrind_control --dump "$VPID" >/dev/null
kill -TERM "$VPID"; wait "$VPID" || true
REQ=$(grep -o '[0-9]* requests in' "$OUT/wrk.txt" | awk '{print $1}')
TOTAL=$(callgrind_annotate "$OUT/cg.out.1" 2>/dev/null | grep -m1 "PROGRAM TOTALS" | tr -d ',' | awk '{print $1}')
echo "mode=$MODE call_log=$LOGGING requests=$REQ instructions=$TOTAL per_request=$((TOTAL / REQ))"
