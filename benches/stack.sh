# Sourced by the benchmark scripts: a local stack on loopback, torn down on exit.
#   upstream  the test TLS upstream (benches/support/upstream.rs), hashes what it receives;
#             the same process serves a Google Cloud Storage stand-in, a fake GCE metadata
#             server (Airlock's own Google identity) and a fake iamcredentials
#   moto      STS for Airlock's credential broker (tests/aws/moto_server.py, from .venv)
#   airlock   the release binary, every AWS host routed to the upstream, every Google host
#             to the Storage stand-in; one agent `bench` with an AWS role and a Google
#             service account ($GOOGLE_SA)
# After `stack_up`: $work, $upstream and $storage (the Storage stand-in), $proxy, $counts
# (`GET /calls`: the iamcredentials calls as JSON, see `iam_calls`) as ip:port,
# $airlock_pid, $AGENT_KEY / $AGENT_SECRET (AWS), $GOOGLE_TOKEN (the agent's static Airlock
# bearer token). `pin_airlock` / `pin_load` hold taskset prefixes (PIN=1).

GOOGLE_SA=bench-agent@bench-project.iam.gserviceaccount.com

if [ "${PIN:-1}" = 1 ] && [ "$(nproc)" -ge 2 ]; then
    pin_airlock=(taskset -c 1); pin_load=(taskset -c 0)
else
    pin_airlock=(); pin_load=()
fi

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

wait_for() { # file pattern
    for _ in $(seq 400); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
    echo "benches: timed out waiting for '$2' in $1" >&2; cat "$1" >&2; exit 1
}

stack_up() {
    if [ ! -x .venv/bin/python ]; then
        python3 -m venv .venv
    fi
    .venv/bin/pip install -q --disable-pip-version-check -r tests/requirements.txt
    cargo build --release --quiet --bin airlock --example upstream

    "${pin_load[@]}" target/release/examples/upstream "$work" "$GOOGLE_SA" > "$work/upstream.out" &
    pids+=($!)
    wait_for "$work/upstream.out" listening
    upstream=$(awk '/^listening / {print $2}' "$work/upstream.out")
    storage=$(awk '/^google / {print $2}' "$work/upstream.out")
    counts=$(awk '/^counts / {print $2}' "$work/upstream.out")
    local metadata iamcredentials
    metadata=$(awk '/^metadata / {print $2}' "$work/upstream.out")
    iamcredentials=$(awk '/^iamcredentials / {print $2}' "$work/upstream.out")

    local moto_port
    moto_port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    .venv/bin/python tests/aws/moto_server.py --host 127.0.0.1 --port "$moto_port" > "$work/moto.out" 2>&1 &
    pids+=($!)
    wait_for "$work/moto.out" "Running on"

    target/release/airlock init --dir "$work" > /dev/null
    cat > "$work/airlock.yaml" <<YAML
proxy:
  listen: 127.0.0.1:0
control:
  listen: 127.0.0.1:0
upstream:
  ca_file: upstream-ca.pem
  routes:
    - host: "*.amazonaws.com"
      to: https://$upstream
    - host: "*.googleapis.com"
      to: https://$storage
credentials:
  sts_endpoint: http://127.0.0.1:$moto_port
  google:
    iamcredentials_endpoint: $iamcredentials
log:
  format: ${AIRLOCK_LOG_FORMAT:-json}
  level: ${AIRLOCK_LOG_LEVEL:-info}
YAML
    local keys
    keys=$(target/release/airlock agents add bench --owner bench@example.com \
        --role arn:aws:iam::123456789012:role/bench --gcp-service-account "$GOOGLE_SA" \
        --config "$work/airlock.yaml")
    AGENT_KEY=$(sed -n 's/^export AWS_ACCESS_KEY_ID=//p' <<< "$keys")
    AGENT_SECRET=$(sed -n 's/^export AWS_SECRET_ACCESS_KEY=//p' <<< "$keys")
    GOOGLE_TOKEN=$(sed -n 's/^export GOOGLE_OAUTH_ACCESS_TOKEN=//p' <<< "$keys")
    [ -n "$AGENT_KEY" ] && [ -n "$GOOGLE_TOKEN" ] || { echo "benches: agents add printed no keys: $keys" >&2; exit 1; }

    # Airlock's own Google identity: the fake metadata server only (an empty HOME: no
    # gcloud ADC file of whoever runs the benchmark).
    mkdir -p "$work/home"
    env -u GOOGLE_APPLICATION_CREDENTIALS HOME="$work/home" CLOUDSDK_CONFIG="$work/home/gcloud" \
        GCE_METADATA_HOST="$metadata" \
        AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=bench AWS_EC2_METADATA_DISABLED=true \
        "${pin_airlock[@]}" target/release/airlock serve --config "$work/airlock.yaml" \
        > "$work/airlock.out" 2> "$work/airlock.log" &
    airlock_pid=$!
    pids+=($airlock_pid)
    wait_for "$work/airlock.out" '"ready":true'
    proxy=$(grep -o '"proxy":"[^"]*"' "$work/airlock.out" | head -1 | cut -d'"' -f4)
}

# SigV4 headers (as `-H` arguments, one per line) for a body-less GET of URL by the bench
# agent, valid for 5 minutes: load generators replay one signed request.
signed_get_headers() { # url service
    AGENT_KEY=$AGENT_KEY AGENT_SECRET=$AGENT_SECRET .venv/bin/python - "$1" "$2" <<'PY'
import os, sys
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
request = AWSRequest(method="GET", url=sys.argv[1])
signer = S3SigV4Auth if sys.argv[2] == "s3" else SigV4Auth
signer(Credentials(os.environ["AGENT_KEY"], os.environ["AGENT_SECRET"]), sys.argv[2], "us-east-1").add_auth(request)
for name in ("Authorization", "X-Amz-Date", "X-Amz-Content-SHA256"):
    if name in request.headers:
        print("-H"); print(f"{name}: {request.headers[name]}")
PY
}

# Airlock's iamcredentials calls so far: `generateAccessToken` calls that minted a token for
# the bench agent's service account.
iam_calls() {
    curl -sS --fail "http://$counts/calls" | python3 -c 'import json, sys; print(json.load(sys.stdin)["calls"][sys.argv[1]])' "$GOOGLE_SA"
}

# Airlock's CPU time so far (user + system, all threads), in microseconds.
airlock_cpu_us() {
    awk -v hz="$(getconf CLK_TCK)" '{print int(($14 + $15) * 1000000 / hz)}' "/proc/$airlock_pid/stat"
}
