#!/usr/bin/env bash
# Load test: the same local TLS upstream measured directly and through Airlock, for AWS and
# Google requests, in one run.
#
#   bash benches/load.sh [SECONDS_PER_SCENARIO]      (default 10)
#
# Scenarios (each direct, then through Airlock with CONNECT via `oha -x`, first as AWS then
# as Google):
#   keepalive   closed-loop throughput, 16 connections kept alive
#   rate300     open-loop latency at a fixed 300 req/s, keep-alive (coordinated-omission
#               corrected), p50 / p99 / p99.9
#   newconn     a new connection (TCP + CONNECT + TLS) per request at 100 req/s
# AWS: `GET https://bench.s3.amazonaws.com/small` (s3:GetObject), SigV4-signed by the bench
# agent (oha replays one signature, valid for 5 minutes). Google: `GET
# https://storage.googleapis.com/storage/v1/b/bench/o/small` (storage.objects.get) with the
# agent's static Airlock bearer token; Airlock forwards it with the service-account token
# it minted at iamcredentials. Both upstreams answer the same 3 bytes (`ok\n`). For each
# through-Airlock scenario, Airlock's CPU time (/proc/PID/stat utime + stime, all threads)
# is divided by the requests oha completed; after the load, the iamcredentials calls are
# counted (one per agent per token lifetime is the target).
# Installs oha (pinned) if missing. Writes bench-results/load-<date>.json and prints
# Markdown tables. Everything runs on loopback and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-10}
OHA_VERSION=1.16.0
# Airlock gets a core of its own, as on its own host; the load generator and the upstream
# share the other core in both the direct and the through-Airlock runs (PIN=0: let the
# scheduler place everything).

command -v oha >/dev/null 2>&1 || cargo install oha --locked --version "$OHA_VERSION"
source benches/stack.sh
stack_up
aws_url=https://bench.s3.amazonaws.com/small
mapfile -t auth < <(signed_get_headers "$aws_url" s3)

direct=(--cacert "$work/upstream-ca.pem" "https://127.0.0.1:${upstream#*:}/small")
aws=(-x "http://$proxy" --no-pre-lookup --cacert "$work/certs/ca.pem" "${auth[@]}" "$aws_url")
google_url=https://storage.googleapis.com/storage/v1/b/bench/o/small
google=(-x "http://$proxy" --no-pre-lookup --cacert "$work/certs/ca.pem" -H "Authorization: Bearer $GOOGLE_TOKEN" "$google_url")

# Warm up both clouds (catalogs, the AWS role session, the Google token mint): the
# scenarios measure steady state.
for _ in 1 2; do
    curl -sS --fail -o /dev/null -x "http://$proxy" --cacert "$work/certs/ca.pem" "${auth[@]}" "$aws_url"
    curl -sS --fail -o /dev/null -x "http://$proxy" --cacert "$work/certs/ca.pem" \
        -H "Authorization: Bearer $GOOGLE_TOKEN" "$google_url"
done

run() { # name oha-args: also records Airlock's CPU time over the run
    local name=$1; shift
    local cpu_before
    cpu_before=$(airlock_cpu_us)
    "${pin_load[@]}" oha --no-tui --output-format json -z "${SECONDS_EACH}s" "$@" > "$work/$name.json"
    echo "$(( $(airlock_cpu_us) - cpu_before ))" > "$work/$name.cpu_us"
}

for scenario in keepalive rate300 newconn; do
    case $scenario in
        keepalive) args=(-c 16) ;;
        rate300) args=(-c 16 -q 300 --latency-correction) ;;
        newconn) args=(-c 4 -q 100 --latency-correction --disable-keepalive) ;;
    esac
    for path in direct aws google; do
        declare -n target="$path"
        run "$scenario-$path" "${args[@]}" "${target[@]}"
    done
done
calls=$(iam_calls)
echo "$calls" > "$work/iamcredentials.calls"

mkdir -p bench-results
out="bench-results/load-$(date -u +%Y%m%dT%H%M%SZ).json"
python3 - "$work" "$out" <<'PY'
import json, sys, os
work, out = sys.argv[1], sys.argv[2]
res, cpu = {}, {}
for name in os.listdir(work):
    path = os.path.join(work, name)
    if name.endswith(".json") and "-" in name:
        with open(path) as f:
            res[name[:-5]] = json.load(f)
    elif name.endswith(".cpu_us"):
        cpu[name[:-7]] = int(open(path).read())
calls = int(open(os.path.join(work, "iamcredentials.calls")).read())

def s(name): return res[name]["summary"]
def pct(name, p): return res[name]["latencyPercentiles"][p] * 1000
def done(name): return sum(res[name]["statusCodeDistribution"].values())
def ok200(name): return res[name]["statusCodeDistribution"].get("200", 0)
def cpu_per_req(name): return cpu[name] / max(done(name), 1)

for name in res:
    res[name]["airlock_cpu_us"] = cpu[name]
    res[name]["airlock_cpu_us_per_request"] = cpu_per_req(name)
res["iamcredentials_calls"] = calls
json.dump(res, open(out, "w"), indent=1)
del res["iamcredentials_calls"]

print("| scenario | direct | through Airlock, AWS | through Airlock, Google |")
print("|---|---|---|---|")
d = s("keepalive-direct")["requestsPerSec"]
row = [f"{d:,.0f} req/s"]
for c in ["aws", "google"]:
    t = s(f"keepalive-{c}")["requestsPerSec"]
    row.append(f"{t:,.0f} req/s ({t/d*100:.0f}% of direct)")
print(f"| keep-alive throughput, -c 16 | {' | '.join(row)} |")
for sc, label in [("rate300", "300 req/s keep-alive"), ("newconn", "100 req/s, new connection each")]:
    for p in ["p50", "p99", "p99.9"]:
        dd = pct(f"{sc}-direct", p)
        row = [f"{dd:.3f} ms"]
        for c in ["aws", "google"]:
            tt = pct(f"{sc}-{c}", p)
            row.append(f"{tt:.3f} ms ({tt-dd:+.3f})")
        print(f"| {label} {p} | {' | '.join(row)} |")

print()
print("| Airlock CPU per request (utime + stime / requests) | AWS | Google | Google / AWS |")
print("|---|---|---|---|")
for sc, label in [("keepalive", "keep-alive, -c 16"), ("rate300", "300 req/s keep-alive"), ("newconn", "100 req/s, new connection each")]:
    a, g = cpu_per_req(f"{sc}-aws"), cpu_per_req(f"{sc}-google")
    print(f"| {label} | {a:.1f} µs ({done(f'{sc}-aws'):,} requests) | {g:.1f} µs ({done(f'{sc}-google'):,} requests) | {g/a:.2f} |")
print(f"\niamcredentials generateAccessToken calls for the bench agent after the load: {calls}")
for name in sorted(res):
    if s(name)["successRate"] < 1 or ok200(name) != done(name):
        print(f"\nWARNING: {name}: success rate {s(name)['successRate']*100:.2f}%, statuses {res[name]['statusCodeDistribution']}, errors {res[name].get('errorDistribution')}")
print(f"\nraw results: {out}")
PY
