#!/usr/bin/env bash
# bench/calllog.sh: the call log's store figures for bench/results.md (issue 6).
#
#   bench/calllog.sh                 # writer rate, then queries over 10,000,000 calls
#   ROWS=1000000 bench/calllog.sh    # a quicker query database
#   QUERIES=0 bench/calllog.sh       # the writer only; the queries' last results are reused
#
# 1. The writer's sustained rate into SQLite: criterion `calllog/writer_into_sqlite`
#    (50,000 realistic records sent through `Writer`, until shutdown has stored them).
# 2. Filtered queries over ROWS calls spread over one day: criterion `query_ROWS_rows/*`
#    (the admin API's questions). The database is built under $BENCH_TMP (default
#    /dev/shm when it has room, else the system temp directory) and deleted afterwards.
# Writes bench/out/calllog.json; bench/report.py puts it in bench/results.md.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROWS=${ROWS:-10000000}
[[ $ROWS =~ ^[0-9]+$ ]] || { echo "calllog.sh: ROWS must be a whole number" >&2; exit 2; }
OUT=$ROOT/bench/out
CRIT=${CARGO_TARGET_DIR:-$ROOT/target}/criterion
mkdir -p "$OUT"
if [[ -z ${BENCH_TMP:-} ]]; then
  # About 700 bytes per call on disk; keep twice that free.
  need=$((ROWS * 1400 / 1024))
  if [[ -d /dev/shm ]] && (($(df -k --output=avail /dev/shm | tail -n1) > need)); then
    BENCH_TMP=/dev/shm
  else
    BENCH_TMP=${TMPDIR:-/tmp}
  fi
fi
echo "[calllog] writer into SQLite (criterion)" >&2
(cd "$ROOT" && cargo bench -p gatewise-store --bench writer -- 'calllog/writer_into_sqlite' 2>&1 | tee "$OUT/calllog-writer.txt" >&2)
if [[ ${QUERIES:-1} != 0 ]]; then
  echo "[calllog] queries over $ROWS calls in $BENCH_TMP (building the database takes a while)" >&2
  (cd "$ROOT" && TMPDIR=$BENCH_TMP GATEWISE_BENCH_ROWS=$ROWS cargo bench -p gatewise-store --bench query -- "query_${ROWS}_rows" 2>&1 | tee "$OUT/calllog-query.txt" >&2)
fi
python3 - "$CRIT" "$ROWS" "$OUT" <<'PY'
import json, sys, re
from pathlib import Path
crit, rows, out = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
def est(group, name):
    p = crit / group / name / "new" / "estimates.json"
    e = json.loads(p.read_text())
    return e["median"]["point_estimate"]  # ns per iteration
writer_ns = est("calllog", "writer_into_sqlite")
res = {"rows": rows, "writer_records": 50000, "writer_records_per_s": 50000 / (writer_ns / 1e9), "queries_ms": {}}
g = crit / f"query_{rows}_rows"
for d in sorted(p for p in g.iterdir() if p.is_dir() and p.name != "report"):
    res["queries_ms"][d.name] = est(g.name, d.name) / 1e6
m = re.search(r"database: (\d+) rows, (\d+) MB, (\d+) bytes/row", (out / "calllog-query.txt").read_text())
if m:
    res["db_mb"], res["bytes_per_row"] = int(m.group(2)), int(m.group(3))
(out / "calllog.json").write_text(json.dumps(res, indent=2))
print(json.dumps(res, indent=2))
PY
