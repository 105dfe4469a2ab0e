# Sourced by the benchmark scripts: a local stack on loopback, torn down on exit.
#   upstream  the test TLS upstream (benches/support/upstream.rs), hashes what it receives
#   moto      STS for Airlock's credential broker (tests/aws/moto_server.py, from .venv)
#   airlock   the release binary, every AWS host routed to the upstream, one agent `bench`
# After `stack_up`: $work, $upstream (ip:port), $proxy (ip:port), $airlock_pid,
# $AGENT_KEY / $AGENT_SECRET. `pin_airlock` / `pin_load` hold taskset prefixes (PIN=1).

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

    "${pin_load[@]}" target/release/examples/upstream "$work" > "$work/upstream.out" &
    pids+=($!)
    wait_for "$work/upstream.out" listening
    upstream=$(awk '/listening/ {print $2}' "$work/upstream.out")

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
credentials:
  sts_endpoint: http://127.0.0.1:$moto_port
log:
  format: ${AIRLOCK_LOG_FORMAT:-json}
  level: ${AIRLOCK_LOG_LEVEL:-info}
YAML
    local keys
    keys=$(target/release/airlock agents add bench --owner bench@example.com \
        --role arn:aws:iam::123456789012:role/bench --config "$work/airlock.yaml")
    AGENT_KEY=$(sed -n 's/^export AWS_ACCESS_KEY_ID=//p' <<< "$keys")
    AGENT_SECRET=$(sed -n 's/^export AWS_SECRET_ACCESS_KEY=//p' <<< "$keys")

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
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
request = AWSRequest(method="GET", url=sys.argv[1])
SigV4Auth(Credentials(os.environ["AGENT_KEY"], os.environ["AGENT_SECRET"]), sys.argv[2], "us-east-1").add_auth(request)
for name in ("Authorization", "X-Amz-Date"):
    print("-H"); print(f"{name}: {request.headers[name]}")
PY
}
