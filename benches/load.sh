#!/usr/bin/env bash
# Load test: the same local TLS upstream measured directly and through Airlock, in one run.
#
#   bash benches/load.sh [SECONDS_PER_SCENARIO]      (default 10)
#
# Scenarios (each direct, then through Airlock with CONNECT via `oha -x`):
#   keepalive   closed-loop throughput, 16 connections kept alive
#   rate300     open-loop latency at a fixed 300 req/s, keep-alive (coordinated-omission
#               corrected), p50 / p99 / p99.9
#   newconn     a new connection (TCP + CONNECT + TLS) per request at 100 req/s
# Installs oha (pinned) if missing. Writes bench-results/load-<date>.json and prints a
# Markdown table. Everything runs on loopback and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-10}
OHA_VERSION=1.16.0
# Airlock gets a core of its own, as on its own host; the load generator and the upstream
# share the other core in both the direct and the through-Airlock runs (PIN=0: let the
# scheduler place everything). Through Airlock, oha replays one request signed by the
# bench agent (valid for 5 minutes, like any SigV4 signature).

command -v oha >/dev/null 2>&1 || cargo install oha --locked --version "$OHA_VERSION"
source benches/stack.sh
stack_up
mapfile -t auth < <(signed_get_headers https://sts.amazonaws.com/small sts)

direct=(--cacert "$work/upstream-ca.pem" "https://127.0.0.1:${upstream#*:}/small")
through=(-x "http://$proxy" --no-pre-lookup --cacert "$work/certs/ca.pem" "${auth[@]}" "https://sts.amazonaws.com/small")

run() { # name path... oha-args
    local name=$1; shift
    "${pin_load[@]}" oha --no-tui --output-format json -z "${SECONDS_EACH}s" "$@" > "$work/$name.json"
}

for path in direct through; do
    declare -n target="$path"
    run "keepalive-$path" -c 16 "${target[@]}"
    run "rate300-$path" -c 16 -q 300 --latency-correction "${target[@]}"
    run "newconn-$path" -c 4 -q 100 --latency-correction --disable-keepalive "${target[@]}"
done

mkdir -p bench-results
out="bench-results/load-$(date -u +%Y%m%dT%H%M%SZ).json"
python3 - "$work" "$out" <<'PY'
import json, sys, os
work, out = sys.argv[1], sys.argv[2]
res = {}
for name in os.listdir(work):
    if name.endswith(".json") and "-" in name:
        with open(os.path.join(work, name)) as f:
            res[name[:-5]] = json.load(f)
json.dump(res, open(out, "w"), indent=1)

def s(name): return res[name]["summary"]
def pct(name, p): return res[name]["latencyPercentiles"][p] * 1000
def ok(name): return s(name)["successRate"] * 100

print(f"| scenario | direct | through Airlock | difference |")
print(f"|---|---|---|---|")
d, t = s("keepalive-direct")["requestsPerSec"], s("keepalive-through")["requestsPerSec"]
print(f"| keep-alive throughput, -c 16 | {d:,.0f} req/s | {t:,.0f} req/s | {t/d*100:.0f}% of direct |")
for sc, label in [("rate300", "300 req/s keep-alive"), ("newconn", "100 req/s, new connection each")]:
    for p in ["p50", "p99", "p99.9"]:
        dd, tt = pct(f"{sc}-direct", p), pct(f"{sc}-through", p)
        print(f"| {label} {p} | {dd:.3f} ms | {tt:.3f} ms | +{tt-dd:.3f} ms |")
for name in sorted(res):
    if ok(name) < 100:
        print(f"\nWARNING: {name} success rate {ok(name):.2f}%")
print(f"\nraw results: {out}")
PY
