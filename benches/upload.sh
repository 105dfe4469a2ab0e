#!/usr/bin/env bash
# Large upload benchmark, both clouds, to the local TLS servers, directly and through
# Airlock:
#   S3      a PUT (curl, signed by the bench agent with UNSIGNED-PAYLOAD, as S3 clients
#           stream uploads)
#   Google  a Cloud Storage resumable upload: the session is started (`POST
#           …/upload/storage/v1/b/bench/o?uploadType=resumable&name=big`, the agent's
#           bearer token), then the whole file is PUT to the session URI the Storage
#           stand-in answered in `Location` (a chunk with `upload_id`, which Airlock
#           streams)
# Reports throughput of each and Airlock's RSS growth over each upload through it: its
# peak (VmHWM) reset before the upload (`echo 5 > /proc/PID/clear_refs`) against the peak
# after. The servers hash the body, and every hash must equal the file's.
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
kib() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$airlock_pid/status"; }
# Start a new peak: VmHWM drops to the current RSS (where the kernel allows; otherwise the
# peak since start-up, as before).
reset_peak() { echo 5 > "/proc/$airlock_pid/clear_refs" 2>/dev/null || true; kib VmHWM; }

upload() { # label file curl-args...
    local label=$1 body_file=$2; shift 2
    local out
    out=$("${pin_load[@]}" curl -sS --fail -T "$body_file" -w '\n%{time_total}' "$@")
    local body seconds
    body=$(head -n -1 <<< "$out"); seconds=$(tail -n 1 <<< "$out")
    [ "$body_file" != "$file" ] || grep -q "\"body_sha256\":\"$want\"" <<< "$body" || {
        echo "upload.sh: $label: the upstream got other bytes: $body" >&2; exit 1; }
    echo "$seconds"
}

through=(-x "http://$proxy" --cacert "$work/certs/ca.pem")
s3=(--aws-sigv4 aws:amz:us-east-1:s3 --user "$AGENT_KEY:$AGENT_SECRET" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
bearer=(-H "Authorization: Bearer $GOOGLE_TOKEN")
gcs_upload=https://storage.googleapis.com/upload/storage/v1/b/bench/o

# A resumable session's URI, started through Airlock (the upload's size announced).
gcs_session() { # name bytes
    local headers
    headers=$(curl -sS --fail -o /dev/null -D - "${through[@]}" "${bearer[@]}" \
        -H "Content-Type: application/json; charset=UTF-8" \
        -H "X-Upload-Content-Type: application/octet-stream" -H "X-Upload-Content-Length: $2" \
        --data "{\"name\":\"$1\"}" "$gcs_upload?uploadType=resumable&name=$1")
    sed -n 's/^[Ll]ocation: *//p' <<< "$headers" | tr -d '\r'
}

# Warm up: the first request of each cloud loads its catalog (AWS ~45 MiB, Google ~26 MiB,
# once), the agent's role session and its Google token; the RSS growth reported is what
# the uploads themselves cost.
head -c 1024 /dev/urandom > "$work/small.bin"
upload warm-s3 "$work/small.bin" "${through[@]}" "${s3[@]}" "https://bench.s3.amazonaws.com/small.bin" > /dev/null
upload warm-gcs "$work/small.bin" "${through[@]}" "${bearer[@]}" "$(gcs_session small 1024)" > /dev/null

s3_direct=$(upload s3-direct "$file" --cacert "$work/upstream-ca.pem" -H "Host: bench.s3.amazonaws.com" \
    "https://127.0.0.1:${upstream#*:}/big.bin")
s3_before=$(reset_peak)
s3_through=$(upload s3-through "$file" "${through[@]}" "${s3[@]}" "https://bench.s3.amazonaws.com/big.bin")
s3_after=$(kib VmHWM)

gcs_direct=$(upload gcs-direct "$file" --cacert "$work/upstream-ca.pem" -H "Host: storage.googleapis.com" \
    "https://127.0.0.1:${storage#*:}/upload/storage/v1/b/bench/o?uploadType=resumable&name=big&upload_id=direct")
session=$(gcs_session big "$((MIB * 1024 * 1024))")
[ -n "$session" ] || { echo "upload.sh: no resumable session URI" >&2; exit 1; }
gcs_before=$(reset_peak)
gcs_through=$(upload gcs-through "$file" "${through[@]}" "${bearer[@]}" "$session")
gcs_after=$(kib VmHWM)

python3 - "$MIB" "$s3_direct" "$s3_through" "$s3_before" "$s3_after" \
    "$gcs_direct" "$gcs_through" "$gcs_before" "$gcs_after" <<'PY'
import sys
mib, *rest = map(float, sys.argv[1:])
print(f"| {mib:.0f} MiB upload | direct | through Airlock | Airlock peak RSS (VmHWM) over the upload |")
print(f"|---|---|---|---|")
for label, (direct, through, before, after) in [("S3 PUT", rest[:4]), ("Google resumable", rest[4:])]:
    print(f"| {label} | {mib/direct:,.0f} MiB/s | {mib/through:,.0f} MiB/s ({direct/through*100:.0f}% of direct) "
          f"| {before/1024:.1f} MiB before, {after/1024:.1f} MiB after (+{(after-before)/1024:.1f} MiB) |")
PY
echo "iamcredentials generateAccessToken calls: $(iam_calls)"
