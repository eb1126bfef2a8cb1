#!/usr/bin/env bash
# bench/run.sh: the gateway benchmark. gatewise against nginx, on this machine,
# in the same run. See bench/README.md.
#
#   bench/run.sh                      # full run: DURATION=10 REPS=3
#   DURATION=2 REPS=1 bench/run.sh    # quick check (the report says it is no measurement)
#
# Servers (nginx upstream, nginx proxy, gatewise) run on CPU $SERVER_CPU and
# wrk on CPU $LOAD_CPU. All traffic goes to 127.0.0.1. Every process this
# script starts is tracked by PID and stopped on exit; nothing else is touched.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
OUT=$BENCH/out

# ---- settings (environment) -------------------------------------------------
DURATION=${DURATION:-10}        # seconds measured per run
REPS=${REPS:-3}                 # repetitions; each runs every scenario once
WARMUP=${WARMUP:-2}             # seconds of discarded warm-up before each run
CONNECTIONS=${CONNECTIONS:-64}  # wrk connections (one wrk thread)
N_ROTATION=${N_ROTATION:-1000}  # tokens in the rotation (D) and the unknown-kid flood (F)
# Fresh tokens (E): enough for the warm-up plus the run at FRESH_RATE req/s.
# gatewise is restarted before every run, so each repetition walks the same
# file from its first line with an empty cache.
FRESH_RATE=${FRESH_RATE:-25000}
N_FRESH=${N_FRESH:-$(((WARMUP + DURATION) * FRESH_RATE))}
SCENARIOS=${SCENARIOS:-A B C D E F G H}
ATTEMPTS=${ATTEMPTS:-3}         # a run with foreign CPU load above FOREIGN_MAX is repeated, up to ATTEMPTS times
FOREIGN_MAX=${FOREIGN_MAX:-10}  # percent of one core used by processes that are not part of the benchmark
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
GATEWISE_LOG=${GATEWISE_LOG:-info}  # gatewise's log filter (its default is info)
SKIP_BUILD=${SKIP_BUILD:-0}
PRIO=${PRIO:-0}                 # 1: run in a new session with autogroup nice -19 (needs root)
TRIAL=${TRIAL:-0}               # 1: mark the results as a trial run
NGINX=${NGINX:-/usr/sbin/nginx}
WRK=${WRK:-/usr/bin/wrk}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

UP_PORT=18080   # nginx upstream
PX_PORT=18081   # nginx reverse proxy
GW_PORT=18082   # gatewise

for v in DURATION REPS WARMUP CONNECTIONS N_ROTATION N_FRESH ATTEMPTS FOREIGN_MAX SERVER_CPU LOAD_CPU FRESH_RATE; do
  if ! [[ ${!v} =~ ^[0-9]+$ ]]; then
    echo "run.sh: $v must be a whole number (got '${!v}')" >&2
    exit 2
  fi
done
if ((DURATION < 1 || REPS < 1 || ATTEMPTS < 1 || N_ROTATION < 1 || N_FRESH < 1 || CONNECTIONS < 1)); then
  echo "run.sh: DURATION, REPS, ATTEMPTS, CONNECTIONS, N_ROTATION and N_FRESH must be at least 1" >&2
  exit 2
fi
for s in $SCENARIOS; do
  [[ $s =~ ^[ABCDEFGH]$ ]] || { echo "run.sh: unknown scenario '$s' (A to H)" >&2; exit 2; }
done

# Optional: a new session whose autogroup runs at nice -19, so that unrelated
# jobs on a shared machine get little CPU while the benchmark runs.
if [[ $PRIO == 1 && ${BENCH_PRIO_DONE:-0} != 1 ]]; then
  export BENCH_PRIO_DONE=1
  # shellcheck disable=SC2016 # $0 and $@ belong to the inner bash
  exec setsid --wait bash -c 'echo -19 > /proc/self/autogroup && exec "$0" "$@"' "$0" "$@"
fi

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in "$NGINX" "$WRK" taskset curl python3 cargo /usr/bin/time getconf; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
(($(nproc --all) >= 2)) || die "needs 2 CPUs (servers on CPU $SERVER_CPU, wrk on CPU $LOAD_CPU)"
CLK_TCK=$(getconf CLK_TCK)

cd "$ROOT"
mkdir -p "$OUT"

# ---- process tracking ---------------------------------------------------------
# STARTED[pid]=signal used to stop it. Only these PIDs are ever signalled.
declare -A STARTED=()
declare -A EXTRA_PIDS=()   # nginx workers seen (children of a master we started)

# alive PID: the process exists and is not a zombie.
alive() {
  local line rest
  read -r line 2>/dev/null <"/proc/$1/stat" || return 1
  rest=${line##*) }
  [[ ${rest:0:1} != Z ]]
}

# children_of PID: sets CHILDREN to the PIDs whose parent is PID (no fork).
children_of() {
  local p line rest
  local -a f
  CHILDREN=()
  for p in /proc/[0-9]*; do
    read -r line 2>/dev/null <"$p/stat" || continue
    rest=${line##*) }
    read -r -a f <<<"$rest"
    [[ ${f[1]} == "$1" ]] && CHILDREN+=("${p#/proc/}")
  done
  return 0
}

# A FIFO nobody writes to: `read -t` on it sleeps without forking a process.
SLEEP_FIFO=$OUT/.sleep.fifo
rm -f "$SLEEP_FIFO"
mkfifo "$SLEEP_FIFO"
exec {SLEEP_FD}<>"$SLEEP_FIFO"
pause() { read -r -t "$1" -u "$SLEEP_FD" _ || true; }

# stop_pid PID SIGNAL: signal, wait up to 15 s, then SIGKILL; reaps our children.
stop_pid() {
  local pid=$1 sig=$2 i
  if alive "$pid"; then
    kill -s "$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
      alive "$pid" || break
      pause 0.1
    done
    if alive "$pid"; then
      log "PID $pid did not stop after SIG$sig within 15 s; sending SIGKILL"
      kill -s KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
  unset "STARTED[$pid]"
}

cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  for pid in "${!STARTED[@]}"; do
    stop_pid "$pid" "${STARTED[$pid]}"
  done
  # nginx workers whose master had to be killed would be orphaned: stop the
  # ones we saw, if they are still there and still nginx.
  for pid in "${!EXTRA_PIDS[@]}"; do
    if alive "$pid" && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == nginx ]]; then
      kill -s KILL "$pid" 2>/dev/null || true
    fi
  done
  rm -f "$SLEEP_FIFO"
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# port_busy PORT: something already listens on 127.0.0.1:PORT.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port PORT PID: wait (at most 10 s) until PORT answers HTTP, while PID
# lives. The probe is one GET /plain (a public route: gatewise's counters then
# show one extra request, and no extra refusal).
wait_port() {
  local i code
  for ((i = 0; i < 100; i++)); do
    alive "$2" || return 1
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$1/plain" || true)
    [[ $code != 000 && -n $code ]] && return 0
    pause 0.1
  done
  return 1
}

for port in $UP_PORT $PX_PORT $GW_PORT; do
  if port_busy "$port"; then
    die "127.0.0.1:$port is already in use by a process this script did not start; free it first"
  fi
done

# ---- build and mint ---------------------------------------------------------------
if [[ $SKIP_BUILD != 1 ]]; then
  log "building gatewise (release)"
  cargo build --release -p gatewise-cli
  log "building the token minter (release)"
  cargo build --release -p gatewise-test-support --example mint
fi
GATEWISE=$TARGET_DIR/release/gatewise
MINT=$TARGET_DIR/release/examples/mint
[[ -x $GATEWISE ]] || die "$GATEWISE is missing (build failed, or SKIP_BUILD=1 without a build)"
# Run a copy, so that a build started elsewhere during the benchmark cannot
# swap the binary between runs.
mkdir -p "$OUT/bin"
cp -f "$GATEWISE" "$OUT/bin/gatewise"
GATEWISE_BUILT=$(date -u -r "$GATEWISE" '+%Y-%m-%d %H:%M UTC')
GATEWISE=$OUT/bin/gatewise

mint_complete() {
  local f
  for f in jwks.json token.txt rotation.txt fresh.txt unknown-kid.txt mint.json; do
    [[ -s $OUT/$f ]] || return 1
  done
  python3 - "$OUT" "$N_ROTATION" "$N_FRESH" <<'PY'
import json, sys
out, rot, fresh = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
m = json.load(open(f"{out}/mint.json"))
def lines(name):
    with open(f"{out}/{name}", "rb") as f:
        return sum(1 for _ in f)
ok = (m.get("rotation") == rot and m.get("fresh", 0) >= fresh
      and lines("rotation.txt") == rot and lines("unknown-kid.txt") == rot
      and lines("fresh.txt") == m.get("fresh"))
sys.exit(0 if ok else 1)
PY
}
if mint_complete; then
  log "tokens already minted in bench/out (rotation $N_ROTATION, fresh >= $N_FRESH)"
else
  [[ -x $MINT ]] || die "$MINT is missing"
  log "minting: $N_ROTATION rotation, $N_FRESH fresh and $N_ROTATION unknown-kid tokens into bench/out"
  "$MINT" "$OUT" "$N_ROTATION" "$N_FRESH"
fi
FRESH_LINES=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["fresh"])' "$OUT/mint.json")
TOKEN=$(<"$OUT/token.txt")
FIRST_ROTATION=$(head -n 1 "$OUT/rotation.txt")
LAST_FRESH=$(tail -n 1 "$OUT/fresh.txt")
FIRST_UNKNOWN=$(head -n 1 "$OUT/unknown-kid.txt")

# ---- configurations -----------------------------------------------------------------
nginx_common() {
  # $1 = prefix dir
  cat <<EOF
worker_processes 1;
daemon off;
pid nginx.pid;
error_log logs/error.log warn;
events { worker_connections 4096; multi_accept on; }
http {
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 75s;
    client_body_temp_path $1/tmp/body;
    proxy_temp_path $1/tmp/proxy;
    fastcgi_temp_path $1/tmp/fastcgi;
    uwsgi_temp_path $1/tmp/uwsgi;
    scgi_temp_path $1/tmp/scgi;
EOF
}
for d in ngx-up ngx-px; do
  mkdir -p "$OUT/$d/logs" "$OUT/$d/tmp"
done
{
  nginx_common "$OUT/ngx-up"
  cat <<EOF
    # Answers every path (/, /plain, /jwt/...) with the same small JSON.
    # Heads up to 4 KiB fit its first buffer: with nginx's default (1k), a
    # head over 1 KiB costs the upstream a second, large buffer, and that
    # CPU (on the shared core) would be billed to the proxy that sent the
    # longer head (see bench/README.md, "Scenarios").
    server {
        listen 127.0.0.1:$UP_PORT backlog=4096;
        client_header_buffer_size 4k;
        location / {
            default_type application/json;
            return 200 '{"ok":true}';
        }
    }
}
EOF
} >"$OUT/ngx-up/nginx.conf"
{
  nginx_common "$OUT/ngx-px"
  cat <<EOF
    upstream up {
        server 127.0.0.1:$UP_PORT;
        keepalive 128;
        keepalive_requests 10000000;
    }
    server {
        listen 127.0.0.1:$PX_PORT backlog=4096;
        location / {
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
} >"$OUT/ngx-px/nginx.conf"
cat >"$OUT/gatewise.toml" <<EOF
# Written by bench/run.sh (overwritten on every run). See bench/README.md.
[server]
listen = "127.0.0.1:$GW_PORT"
shutdown_grace = "2s"

[[issuers]]
name = "bench"
issuer = "https://bench.gatewise.test"
jwks_file = "$OUT/jwks.json"
algorithms = ["RS256"]

[[upstreams]]
name = "nginx"
targets = ["http://127.0.0.1:$UP_PORT"]

# (B) no token needed.
[[routes]]
name = "plain"
path = "/plain"
upstream = "nginx"

# (C) to (F): a valid RS256 access token for https://api.bench.test.
[[routes]]
name = "jwt"
path_prefix = "/jwt"
upstream = "nginx"

[routes.jwt]
issuers = ["bench"]
audiences = ["https://api.bench.test"]
require_at_jwt = true
scopes_all = ["bench.read"]
EOF
# (B) to (F) run without the call log; (G) and (H) are (B) and (D) with it on,
# in SQLite under bench/out/calllog (emptied before each run).
cp "$OUT/gatewise.toml" "$OUT/gatewise-log.toml"
cat >>"$OUT/gatewise.toml" <<EOF

[call_log]
enabled = false
EOF
cat >>"$OUT/gatewise-log.toml" <<EOF

[call_log]
path = "$OUT/calllog/calls.db"
spool_dir = "$OUT/calllog/spool"
EOF
"$GATEWISE" config validate "$OUT/gatewise.toml" >&2 || die "gatewise rejected bench/out/gatewise.toml"
"$GATEWISE" config validate "$OUT/gatewise-log.toml" >&2 || die "gatewise rejected bench/out/gatewise-log.toml"

# ---- servers ---------------------------------------------------------------------------
UP_PID="" PX_PID="" GW_PID=""
start_nginx() {
  # $1 = dir name, $2 = port; prints the master PID into NGINX_PID
  taskset -c "$SERVER_CPU" "$NGINX" -p "$OUT/$1/" -c nginx.conf -e "$OUT/$1/logs/error.log" &
  NGINX_PID=$!
  STARTED[$NGINX_PID]=QUIT
  wait_port "$2" "$NGINX_PID" || die "nginx ($1) did not start; see bench/out/$1/logs/error.log"
}
start_nginx ngx-up $UP_PORT
UP_PID=$NGINX_PID
start_nginx ngx-px $PX_PORT
PX_PID=$NGINX_PID
log "nginx upstream PID $UP_PID on :$UP_PORT, nginx proxy PID $PX_PID on :$PX_PORT (CPU $SERVER_CPU)"

start_gatewise() {
  # $1 = log file, $2 = config file (default gatewise.toml). Sets GW_PID.
  rm -rf "$OUT/calllog"
  NO_COLOR=1 GATEWISE_LOG=$GATEWISE_LOG taskset -c "$SERVER_CPU" "$GATEWISE" serve --config "${2:-$OUT/gatewise.toml}" >"$1" 2>&1 &
  GW_PID=$!
  STARTED[$GW_PID]=TERM
  if ! wait_port $GW_PORT "$GW_PID"; then
    tail -n 20 "$1" >&2 || true
    die "gatewise did not start (log: $1)"
  fi
}
# stop_gatewise: SIGTERM, wait; sets GW_EXIT (exit status, or "crashed:..." when it had died before).
stop_gatewise() {
  local was_alive=1
  alive "$GW_PID" || was_alive=0
  if ((was_alive)); then
    kill -s TERM "$GW_PID" 2>/dev/null || true
    local i
    for ((i = 0; i < 150; i++)); do
      alive "$GW_PID" || break
      pause 0.1
    done
    if alive "$GW_PID"; then
      log "gatewise PID $GW_PID still running 15 s after SIGTERM; SIGKILL"
      kill -s KILL "$GW_PID" 2>/dev/null || true
    fi
  fi
  GW_EXIT=0
  wait "$GW_PID" 2>/dev/null || GW_EXIT=$?
  ((was_alive)) || GW_EXIT="died-during-run:$GW_EXIT"
  unset "STARTED[$GW_PID]"
}

# ---- sanity checks ----------------------------------------------------------------------
# check NAME WANT URL [curl args]: the status must be WANT.
CHECK_FAILED=0
check() {
  local name=$1 want=$2 url=$3 code
  shift 3
  code=$(curl -s -o "$OUT/.check-body" -D "$OUT/.check-head" -w '%{http_code}' --max-time 5 "$@" "$url" || true)
  if [[ $code == "$want" ]]; then
    log "check ok: $name -> $code"
  else
    log "CHECK FAILED: $name -> $code, wanted $want; body: $(head -c 300 "$OUT/.check-body" 2>/dev/null)"
    CHECK_FAILED=1
  fi
}
mkdir -p "$OUT/logs" "$OUT/runs"
start_gatewise "$OUT/logs/sanity.log"
auth() { printf 'Authorization: Bearer %s' "$1"; }
check "upstream /plain" 200 "http://127.0.0.1:$UP_PORT/plain"
check "upstream /jwt/x" 200 "http://127.0.0.1:$UP_PORT/jwt/x"
check "nginx proxy /plain" 200 "http://127.0.0.1:$PX_PORT/plain" -H "$(auth "$TOKEN")"
check "gatewise /plain" 200 "http://127.0.0.1:$GW_PORT/plain" -H "$(auth "$TOKEN")"
check "gatewise /jwt/x, token.txt" 200 "http://127.0.0.1:$GW_PORT/jwt/x" -H "$(auth "$TOKEN")"
check "gatewise /jwt/x, first rotation token" 200 "http://127.0.0.1:$GW_PORT/jwt/x" -H "$(auth "$FIRST_ROTATION")"
check "gatewise /jwt/x, last fresh token" 200 "http://127.0.0.1:$GW_PORT/jwt/x" -H "$(auth "$LAST_FRESH")"
check "gatewise /jwt/x, no token" 401 "http://127.0.0.1:$GW_PORT/jwt/x"
check "gatewise /jwt/x, garbage token" 401 "http://127.0.0.1:$GW_PORT/jwt/x" -H "Authorization: Bearer x.y.z"
check "gatewise /jwt/x, unknown kid" 401 "http://127.0.0.1:$GW_PORT/jwt/x" -H "$(auth "$FIRST_UNKNOWN")"
stop_gatewise
[[ $GW_EXIT == 0 ]] || log "gatewise exited with $GW_EXIT after the checks"
if grep -q 'signature_checks=' "$OUT/logs/sanity.log"; then
  COUNTERS_AVAILABLE=1
  log "gatewise counters: $(grep -o 'requests=[^"]*' "$OUT/logs/sanity.log" | tail -n 1)"
else
  COUNTERS_AVAILABLE=0
  log "gatewise prints no signature_checks= line at shutdown: counter not available"
fi
((CHECK_FAILED == 0)) || die "sanity checks failed; nothing measured"

# ---- measurement ------------------------------------------------------------------------------
# Sum of utime+stime (clock ticks) of the given PIDs -> TICKS.
ticks_of() {
  local pid line rest
  local -a f
  TICKS=0
  for pid in "$@"; do
    read -r line 2>/dev/null <"/proc/$pid/stat" || continue
    rest=${line##*) }
    read -r -a f <<<"$rest"
    TICKS=$((TICKS + f[11] + f[12]))
  done
}
# nginx master PID -> NGX_PIDS (master and its workers).
nginx_pids() {
  children_of "$1"
  NGX_PIDS=("$1" "${CHILDREN[@]}")
  local c
  for c in "${CHILDREN[@]}"; do EXTRA_PIDS[$c]=1; done
}
# /proc/stat: STAT = "user nice system idle iowait irq softirq steal" for cpu, cpuN...
read_stat() {
  local name u n s i w q sq st rest
  STAT_JSON="{"
  while read -r name u n s i w q sq st rest; do
    [[ $name == cpu* ]] || break
    STAT_JSON+="\"$name\":[$u,$n,$s,$i,$w,$q,$sq,$st],"
    [[ $name == cpu ]] && STAT_BUSY=$((u + n + s))
  done </proc/stat
  STAT_JSON="${STAT_JSON%,}}"
}
read_uptime_cs() {
  local up rest
  read -r up rest </proc/uptime
  UPTIME_CS=$((10#${up/./}))
}
# VmRSS / VmHWM (kB) of a PID -> RSS_KB, HWM_KB (0 when gone).
read_mem() {
  local k v rest
  RSS_KB=0 HWM_KB=0
  [[ -r /proc/$1/status ]] || return 0
  while read -r k v rest; do
    case $k in
      VmRSS:) RSS_KB=$v ;;
      VmHWM:) HWM_KB=$v ;;
    esac
  done 2>/dev/null <"/proc/$1/status" || true
}
# "12.34" -> 1234 (centi-units)
centi() {
  local x=$1 i f
  i=${x%%.*}
  f=${x#*.}
  [[ $x == *.* ]] || f=00
  f=${f}00
  echo $((10#$i * 100 + 10#${f:0:2}))
}
json_str() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\t'/ }
  s=${s//$'\n'/ }
  printf '"%s"' "$s"
}

# Scenario table: target port, path, how the token is sent, which process is the proxy.
declare -A SC_PORT=([A]=$PX_PORT [B]=$GW_PORT [C]=$GW_PORT [D]=$GW_PORT [E]=$GW_PORT [F]=$GW_PORT [G]=$GW_PORT [H]=$GW_PORT)
declare -A SC_PATH=([A]=/plain [B]=/plain [C]=/jwt/x [D]=/jwt/x [E]=/jwt/x [F]=/jwt/x [G]=/plain [H]=/jwt/x)
declare -A SC_TOKENS=([A]=header [B]=header [C]=header [D]=rotation [E]=fresh [F]=unknown [G]=header [H]=rotation)
declare -A SC_CONFIG=([G]=$OUT/gatewise-log.toml [H]=$OUT/gatewise-log.toml)
declare -A SC_NAME=(
  [A]="nginx proxy, /plain"
  [B]="gatewise, /plain (no jwt)"
  [C]="gatewise jwt, one token"
  [D]="gatewise jwt, $N_ROTATION rotating tokens"
  [E]="gatewise jwt, every token new"
  [F]="gatewise jwt, unknown-kid flood"
  [G]="gatewise, /plain, call log on (SQLite)"
  [H]="gatewise jwt, $N_ROTATION rotating tokens, call log on (SQLite)"
)

# wrk_args SCENARIO SKIP -> WRK_ARGS (url and token options)
wrk_args() {
  local sc=$1 skip=$2 url="http://127.0.0.1:${SC_PORT[$1]}${SC_PATH[$1]}"
  case ${SC_TOKENS[$sc]} in
    header) WRK_ARGS=(-H "$(auth "$TOKEN")" "$url") ;;
    rotation) WRK_ARGS=(-s "$BENCH/tokens.lua" "$url" -- "$OUT/rotation.txt" cycle) ;;
    unknown) WRK_ARGS=(-s "$BENCH/tokens.lua" "$url" -- "$OUT/unknown-kid.txt" cycle) ;;
    fresh) WRK_ARGS=(-s "$BENCH/tokens.lua" "$url" -- "$OUT/fresh.txt" once "$skip") ;;
  esac
}

# run_wrk SECONDS OUTFILE TIMEFILE [--latency]: runs wrk on LOAD_CPU in the
# background, samples gatewise's RSS while it runs; sets WRK_RC, RSS_MAX_KB.
run_wrk() {
  local secs=$1 outfile=$2 timefile=$3
  local -a extra=("${@:4}")
  local tpid wpid="" c
  taskset -c "$LOAD_CPU" /usr/bin/time -f '%e %U %S' -o "$timefile" \
    "$WRK" -t1 -c"$CONNECTIONS" -d"${secs}s" "${extra[@]}" "${WRK_ARGS[@]}" >"$outfile" 2>&1 &
  tpid=$!
  STARTED[$tpid]=TERM
  RSS_MAX_KB=0
  while alive "$tpid"; do
    if [[ -z $wpid ]]; then
      children_of "$tpid"
      for c in "${CHILDREN[@]}"; do wpid=$c; STARTED[$wpid]=TERM; done
    fi
    if [[ -n $GW_PID ]]; then
      read_mem "$GW_PID"
      ((RSS_KB > RSS_MAX_KB)) && RSS_MAX_KB=$RSS_KB
    fi
    pause 0.2
  done
  WRK_RC=0
  wait "$tpid" || WRK_RC=$?
  unset "STARTED[$tpid]"
  [[ -n $wpid ]] && unset "STARTED[$wpid]"
  return 0
}

RUNS_JSONL=$OUT/runs.jsonl
: >"$RUNS_JSONL"
rm -f "$OUT"/runs/*.txt "$OUT"/runs/*.time "$OUT"/logs/r*.log

# measure REP SCENARIO
measure() {
  local rep=$1 sc=$2 attempt tag gw=0 skip=0 used=0 wraps=0 warm_used=0
  [[ $sc != A ]] && gw=1
  for ((attempt = 1; attempt <= ATTEMPTS; attempt++)); do
    tag="r$rep-$sc-a$attempt"
    local glog="$OUT/logs/$tag.log"
    GW_PID=""
    ((gw)) && start_gatewise "$glog" "${SC_CONFIG[$sc]:-$OUT/gatewise.toml}"

    # warm-up, discarded
    wrk_args "$sc" 0
    run_wrk "$WARMUP" "$OUT/runs/$tag-warmup.txt" "$OUT/runs/$tag-warmup.time"
    warm_used=0
    if [[ $(grep -o 'tokens: used=[0-9]*' "$OUT/runs/$tag-warmup.txt" || true) =~ used=([0-9]+) ]]; then
      warm_used=${BASH_REMATCH[1]}
    fi
    skip=0
    [[ $sc == E ]] && skip=$warm_used

    # measured run
    wrk_args "$sc" "$skip"
    local up_b px_b gw_b up_a px_a gw_a busy_b busy_a stat_b stat_a t_b t_a
    nginx_pids "$UP_PID"
    local -a up_pids=("${NGX_PIDS[@]}")
    nginx_pids "$PX_PID"
    local -a px_pids=("${NGX_PIDS[@]}")
    read_stat
    stat_b=$STAT_JSON busy_b=$STAT_BUSY
    read_uptime_cs
    t_b=$UPTIME_CS
    ticks_of "${up_pids[@]}"; up_b=$TICKS
    ticks_of "${px_pids[@]}"; px_b=$TICKS
    gw_b=0
    ((gw)) && { ticks_of "$GW_PID"; gw_b=$TICKS; }

    run_wrk "$DURATION" "$OUT/runs/$tag.txt" "$OUT/runs/$tag.time" --latency

    ticks_of "${up_pids[@]}"; up_a=$TICKS
    ticks_of "${px_pids[@]}"; px_a=$TICKS
    gw_a=0
    local gw_alive=1 hwm=0
    if ((gw)); then
      ticks_of "$GW_PID"; gw_a=$TICKS
      alive "$GW_PID" || gw_alive=0
      read_mem "$GW_PID"; hwm=$HWM_KB
    fi
    read_uptime_cs
    t_a=$UPTIME_CS
    read_stat
    stat_a=$STAT_JSON busy_a=$STAT_BUSY

    # foreign CPU: busy time (user+nice+system, all CPUs) not spent by the
    # servers or wrk, in percent of one core.
    local wrk_time wrk_cs=0 elapsed_cs foreign_pct
    wrk_time=$(tail -n 1 "$OUT/runs/$tag.time" 2>/dev/null || true)
    if [[ $wrk_time =~ ^[0-9.]+\ ([0-9.]+)\ ([0-9.]+)$ ]]; then
      wrk_cs=$(($(centi "${BASH_REMATCH[1]}") + $(centi "${BASH_REMATCH[2]}")))
    fi
    elapsed_cs=$((t_a - t_b))
    ((elapsed_cs > 0)) || elapsed_cs=1
    local ours_cs=$(((up_a - up_b + px_a - px_b + gw_a - gw_b) * 100 / CLK_TCK + wrk_cs))
    local busy_cs=$(((busy_a - busy_b) * 100 / CLK_TCK))
    foreign_pct=$(((busy_cs - ours_cs) * 100 / elapsed_cs))
    ((foreign_pct < 0)) && foreign_pct=0

    used=0 wraps=0
    if [[ $(grep -o 'tokens: used=[0-9]* wraps=[0-9]*' "$OUT/runs/$tag.txt" || true) =~ used=([0-9]+)\ wraps=([0-9]+) ]]; then
      used=${BASH_REMATCH[1]} wraps=${BASH_REMATCH[2]}
    fi

    local counters="" exit_status="" refused_lines=0 warn_lines=0 log_bytes=0
    if ((gw)); then
      stop_gatewise
      exit_status=$GW_EXIT
      counters=$(grep -o 'requests=[0-9]* [^"]*' "$glog" | tail -n 1 || true)
      refused_lines=$(grep -c 'refused:' "$glog" || true)
      warn_lines=$(grep -cE ' (WARN|ERROR) ' "$glog" || true)
      log_bytes=$(stat -c %s "$glog")
      # A flood of refusals is logged line by line: keep the log small.
      if ((log_bytes > 1000000)); then
        { head -n 40 "$glog"; echo "[... bench/run.sh cut this log: $log_bytes bytes ...]"; grep -vE 'refused:' "$glog" | tail -n 40; } >"$glog.cut"
        mv "$glog.cut" "$glog"
      fi
      if [[ $exit_status != 0 ]]; then
        log "gatewise exit status $exit_status in $tag (log: $glog)"
      fi
    fi

    {
      printf '{"rep":%d,"scenario":"%s","attempt":%d,"name":%s,' "$rep" "$sc" "$attempt" "$(json_str "${SC_NAME[$sc]}")"
      printf '"wrk":"runs/%s.txt","wrk_rc":%d,"wrk_time":%s,' "$tag" "$WRK_RC" "$(json_str "$wrk_time")"
      printf '"clk_tck":%d,"elapsed_cs":%d,"foreign_pct":%d,' "$CLK_TCK" "$elapsed_cs" "$foreign_pct"
      printf '"stat_before":%s,"stat_after":%s,' "$stat_b" "$stat_a"
      printf '"ticks":{"upstream":[%d,%d],"nginx_proxy":[%d,%d],"gatewise":[%d,%d]},' "$up_b" "$up_a" "$px_b" "$px_a" "$gw_b" "$gw_a"
      printf '"gatewise":%d,"gw_alive_after_run":%d,"gw_exit":%s,"gw_rss_max_kb":%d,"gw_hwm_kb":%d,' "$gw" "$gw_alive" "$(json_str "$exit_status")" "$RSS_MAX_KB" "$hwm"
      printf '"counters":%s,"log":"logs/%s.log","log_bytes":%d,"refused_log_lines":%d,"warn_log_lines":%d,' "$(json_str "$counters")" "$tag" "$log_bytes" "$refused_lines" "$warn_lines"
      printf '"tokens_used_warmup":%d,"tokens_used":%d,"token_wraps":%d,"fresh_lines":%d}\n' "$warm_used" "$used" "$wraps" "$FRESH_LINES"
    } >>"$RUNS_JSONL"

    local rps
    rps=$(grep -o 'Requests/sec: *[0-9.]*' "$OUT/runs/$tag.txt" | grep -o '[0-9.]*$' || echo "?")
    log "rep $rep/$REPS $sc (${SC_NAME[$sc]}) attempt $attempt: $rps req/s, foreign load ${foreign_pct}% of a core${counters:+, $counters}"
    if ((wraps > 0)); then
      log "  warning: fresh.txt ran out ($wraps wraps): raise N_FRESH or FRESH_RATE"
    fi
    if ((foreign_pct <= FOREIGN_MAX)); then
      break
    elif ((attempt < ATTEMPTS)); then
      log "  foreign load above ${FOREIGN_MAX}%: repeating this run"
      pause 3
    fi
  done
}

# ---- metadata -----------------------------------------------------------------------------------
{
  printf '{"date":%s,' "$(json_str "$(date -u '+%Y-%m-%d %H:%M UTC')")"
  printf '"nproc":%s,"cpu_model":%s,' "$(nproc --all)" "$(json_str "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')")"
  printf '"kernel":%s,' "$(json_str "$(uname -r)")"
  printf '"nginx":%s,' "$(json_str "$("$NGINX" -v 2>&1 | head -n 1)")"
  printf '"wrk":%s,' "$(json_str "$("$WRK" -v 2>&1 | head -n 1 || true)")"
  printf '"rustc":%s,' "$(json_str "$(rustc --version 2>/dev/null || echo unknown)")"
  printf '"binary_built":%s,' "$(json_str "$GATEWISE_BUILT")"
  printf '"commit":%s,' "$(json_str "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD -- crates 2>/dev/null || echo ' (crates modified)')")"
  printf '"duration":%d,"reps":%d,"warmup":%d,"connections":%d,' "$DURATION" "$REPS" "$WARMUP" "$CONNECTIONS"
  printf '"n_rotation":%d,"n_fresh":%d,"attempts":%d,"foreign_max":%d,' "$N_ROTATION" "$FRESH_LINES" "$ATTEMPTS" "$FOREIGN_MAX"
  printf '"server_cpu":%d,"load_cpu":%d,"gatewise_log":%s,"prio":%s,' "$SERVER_CPU" "$LOAD_CPU" "$(json_str "$GATEWISE_LOG")" "$PRIO"
  printf '"counters_available":%d,"trial":%d,"scenarios":%s}\n' "$COUNTERS_AVAILABLE" "$TRIAL" "$(json_str "$SCENARIOS")"
} >"$OUT/meta.json"

log "measuring: scenarios [$SCENARIOS], $REPS repetitions of ${WARMUP} s warm-up + ${DURATION} s, $CONNECTIONS connections"
for ((rep = 1; rep <= REPS; rep++)); do
  for sc in $SCENARIOS; do
    measure "$rep" "$sc"
  done
done

log "writing bench/results.md and bench/results.svg"
python3 "$BENCH/report.py" --out "$OUT" --md "$BENCH/results.md" --svg "$BENCH/results.svg"
log "done"
