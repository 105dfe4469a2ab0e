#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, then runs
# formatting and lint checks, unit tests, integration tests through the real binary, and
# the benchmarks in test mode (each once, to prove they run).
#
#   bash tests/run.sh
#
# Needs: a Rust toolchain (cargo). Installs, if missing: curl, openssl and chromium
# (Debian packages, used as real clients by the tests; the web page's tests drive
# /usr/bin/chromium with Playwright, which never downloads a browser of its own), and
# the Python test tools pinned in tests/requirements.txt (into .venv, never system-wide).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool in curl openssl chromium; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
    echo "tests/run.sh: installing ${missing[*]}" >&2
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq "${missing[@]}"
fi

if grep -qvE '^\s*(#|$)' tests/requirements.txt; then
    [ -x .venv/bin/python ] || python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -r tests/requirements.txt
    export PATH="$PWD/.venv/bin:$PATH"
    export AIRLOCK_TEST_PYTHON="$PWD/.venv/bin/python"
fi

cargo fmt --check
cargo clippy --locked --all-targets --quiet -- -D warnings
rm -f target/aws-classification-report.txt target/gcp-classification-report.txt
cargo test --locked --all-targets
cat target/aws-classification-report.txt target/gcp-classification-report.txt
