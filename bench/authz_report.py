#!/usr/bin/env python3
"""bench/authz_report.py OUT MD: the authorization-server benchmark's report
from bench/out/authz (wrk outputs of bench/authz.sh), medians over the
repetitions, ratios within the same run, the issue's targets checked."""
import re
import statistics
import sys
from pathlib import Path

out, md = Path(sys.argv[1]), Path(sys.argv[2])


def to_ms(t):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s)", t)
    if not m:
        return None
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]


runs = {}
for f in sorted((out / "runs").glob("*.txt")):
    label = f.stem.rsplit("-r", 1)[0]
    text = f.read_text()
    rps = re.search(r"Requests/sec:\s+([0-9.]+)", text)
    p99 = re.search(r"^\s+99%\s+(\S+)", text, re.M)
    bad = re.search(r"non200=(\d+)", text)
    runs.setdefault(label, []).append(
        {
            "rps": float(rps.group(1)) if rps else 0.0,
            "p99": to_ms(p99.group(1)) if p99 else None,
            "bad": int(bad.group(1)) if bad else None,
        }
    )
med = {
    k: {
        "rps": statistics.median(r["rps"] for r in v),
        "p99": statistics.median(r["p99"] for r in v if r["p99"] is not None),
        "bad": sum(r["bad"] or 0 for r in v),
        "n": len(v),
    }
    for k, v in runs.items()
}
sign = None
ossl = (out / "openssl.txt").read_text() if (out / "openssl.txt").exists() else ""
m = re.search(r"rsa 2048 bits\s+\S+\s+\S+\s+([0-9.]+)", ossl)
if m:
    sign = float(m.group(1))


def r(k):
    return med.get(k, {}).get("rps")


rows = []


def target(label, value, want, text):
    ok = value is not None and value >= want
    rows.append((label, text if value is not None else "not measured", "**pass**" if ok else "**FAIL**"))


es, op_es = r("gatewise-es256"), r("oidc-provider-es256")
target("ES256 issuance ≥ 5× oidc-provider", es / op_es if es and op_es else None, 5.0,
       f"{es / op_es:.2f}× ({es:,.0f} vs {op_es:,.0f} req/s)" if es and op_es else "")
if es and op_es:
    p, q = med["gatewise-es256"]["p99"], med["oidc-provider-es256"]["p99"]
    rows.append(("ES256 p99 lower than oidc-provider's", f"{p:.2f} ms vs {q:.2f} ms", "**pass**" if p < q else "**FAIL**"))
rs = r("gatewise-rs256")
target("RS256 issuance ≥ 0.85× the machine's RSA-2048 signing rate", rs / sign if rs and sign else None, 0.85,
       f"{rs / sign:.2f}× ({rs:,.0f} req/s vs {sign:,.0f} signatures/s)" if rs and sign else "")
intro = r("gatewise-introspect-opaque")
target("introspection of an opaque token ≥ 20,000 req/s", intro, 20000.0, f"{intro:,.0f} req/s" if intro else "")

lines = [
    "# Authorization server benchmark",
    "",
    "Written by `bench/authz.sh` (method in bench/README.md): `gatewise authz` and npm oidc-provider "
    "(`interop/oidc-provider/server.mjs`) each alone on one core, `wrk -t1 -c16` with a POST script on the "
    "other, client_credentials with `client_secret_basic` (oidc-provider's ES256 client: `client_secret_post`), "
    "JWT access tokens for one resource; medians over the repetitions of one run.",
    "",
    "| target | measured | verdict |",
    "|---|---|---|",
]
lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
lines += ["", "| scenario | req/s (median) | p99 ms | non-200 | runs |", "|---|---|---|---|---|"]
for k in sorted(med):
    v = med[k]
    lines.append(f"| {k} | {v['rps']:,.0f} | {v['p99']:.2f} | {v['bad']} | {v['n']} |")
if sign:
    lines += ["", f"RSA-2048 signing on one core (`openssl speed rsa2048`): {sign:,.0f} signatures/s."]
md.write_text("\n".join(lines) + "\n")
print("\n".join(lines))
