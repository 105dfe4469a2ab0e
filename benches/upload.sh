#!/usr/bin/env bash
# Large upload benchmark: a 1 GiB S3 PUT (curl, signed by the bench agent with
# UNSIGNED-PAYLOAD, as S3 clients stream uploads) to the local TLS upstream, directly and
# through Airlock. Reports throughput of each and Airlock's RSS growth (VmHWM) over the
# uploads; the upstream hashes the body, and both hashes must equal the file's.
#
#   bash benches/upload.sh [MIB]          (default 1024)
set -euo pipefail
cd "$(dirname "$0")/.."
MIB=${1:-1024}
source benches/stack.sh
stack_up

file="$work/upload.bin"
head -c "$((MIB * 1024 * 1024))" /dev/urandom > "$file"
want=$(sha256sum "$file" | cut -d' ' -f1)
rss_kib() { awk '/VmHWM/ {print $2}' "/proc/$airlock_pid/status"; }

upload() { # label curl-args...
    local label=$1; shift
    local out
    out=$("${pin_load[@]}" curl -sS --fail -T "$file" -w '\n%{time_total}' "$@")
    local body seconds
    body=$(head -n -1 <<< "$out"); seconds=$(tail -n 1 <<< "$out")
    grep -q "\"body_sha256\":\"$want\"" <<< "$body" || { echo "upload.sh: $label: the upstream got other bytes: $body" >&2; exit 1; }
    echo "$seconds"
}

# Warm up: the first request loads the AWS catalog (~45 MiB, once) and the agent's role
# session; the RSS growth reported is what the uploads themselves cost.
head -c 1024 /dev/urandom > "$work/small.bin"
curl -sS --fail -o /dev/null -T "$work/small.bin" -x "http://$proxy" --cacert "$work/certs/ca.pem" \
    --aws-sigv4 aws:amz:us-east-1:s3 --user "$AGENT_KEY:$AGENT_SECRET" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "https://bench.s3.amazonaws.com/small.bin"
before=$(rss_kib)
direct=$(upload direct --cacert "$work/upstream-ca.pem" -H "Host: bench.s3.amazonaws.com" \
    "https://127.0.0.1:${upstream#*:}/big.bin")
through=$(upload through -x "http://$proxy" --cacert "$work/certs/ca.pem" \
    --aws-sigv4 aws:amz:us-east-1:s3 --user "$AGENT_KEY:$AGENT_SECRET" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "https://bench.s3.amazonaws.com/big.bin")
after=$(rss_kib)

python3 - "$MIB" "$direct" "$through" "$before" "$after" <<'PY'
import sys
mib, direct, through, before, after = float(sys.argv[1]), *map(float, sys.argv[2:])
print(f"| {mib:.0f} MiB upload | direct | through Airlock |")
print(f"|---|---|---|")
print(f"| throughput | {mib/direct:,.0f} MiB/s | {mib/through:,.0f} MiB/s ({direct/through*100:.0f}% of direct) |")
print(f"| Airlock peak RSS | | {before/1024:.1f} MiB before, {after/1024:.1f} MiB after (+{(after-before)/1024:.1f} MiB) |")
PY
