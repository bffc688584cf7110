#!/usr/bin/env bash
# Schemathesis against both ports' OpenAPI documents, with every check (`--checks all`): the API
# port's (/server/openapi.json) logged in as the first administrator, and the license port's
# (/openapi.json). Every operation is fuzzed from its schema, and no answer may be a 5xx,
# contradict the schema, refuse what the schema allows or accept what it forbids. Starts a release
# server of its own on a temporary data directory.
#
#   end2end/schemathesis.sh            (make test runs it; needs `st` from .venv, see the Makefile)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${LICENSE_SERVER_BIN:-target/release/license-server}
VENDOR_BIN=${LICENSE_VENDOR_BIN:-$(dirname "$BIN")/license-vendor}
ST=${ST:-.venv/bin/st}
EXAMPLES=${SCHEMATHESIS_EXAMPLES:-50}

dir=$(mktemp -d)
pid=
vendor_pid=
cleanup() {
    for p in $pid $vendor_pid; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT

"$VENDOR_BIN" keygen --out-dir "$dir/keys" >/dev/null
id=$("$BIN" server-id --data-dir "$dir/data")
"$VENDOR_BIN" issue --key "$dir/keys/vendor.key" --server-id "$id" \
    --product-spec "7:0:Tool:5:1000" --max-users 100 --out "$dir/license.lic" 2>/dev/null
"$BIN" license install "$dir/license.lic" --data-dir "$dir/data" \
    --vendor-public-key "$dir/keys/vendor.pub" >/dev/null
# The first `field` ("api_addr", "addr") that the JSON log `file` announces, once it does.
announced() {
    local file=$1 field=$2 process=$3 value=
    for _ in $(seq 300); do
        value=$(grep -o "\"$field\":\"[^\"]*\"" "$file" | head -1 | cut -d'"' -f4 || true)
        [ -n "$value" ] && { echo "$value"; return; }
        kill -0 "$process" 2>/dev/null || break
        sleep 0.1
    done
    echo "it did not start:" >&2; cat "$file" >&2; exit 1
}

# A vendor service with the sample catalog, so the remote/... operations reach a real one.
"$VENDOR_BIN" --log-format json serve --key "$dir/keys/vendor.key" --catalog examples/catalog.toml \
    --bind 127.0.0.1 --port 0 --data-dir "$dir/vendor-data" 2>"$dir/vendor.log" &
vendor_pid=$!
vendor=$(announced "$dir/vendor.log" addr "$vendor_pid")

"$BIN" --log-format json serve --bind 127.0.0.1 --port 0 --data-dir "$dir/data" \
    --vendor-public-key "$dir/keys/vendor.pub" --vendor-url "http://$vendor" 2>"$dir/server.log" &
pid=$!
api=$(announced "$dir/server.log" api_addr "$pid")
license=$(announced "$dir/server.log" license_addr "$pid")

token=$(python3 - "$api" "$dir/data/initial-admin-password" <<'PY'
import json, sys, urllib.request
api, password_file = sys.argv[1], sys.argv[2]
body = json.dumps({"principal": "admin", "secret": open(password_file).read().strip()}).encode()
request = urllib.request.Request(f"http://{api}/server/auth", body, {"content-type": "application/json"})
print(json.load(urllib.request.urlopen(request))["token"])
PY
)

# Logging out would end the token in the middle of the run; it has its own tests. The event
# stream (/status/events) never ends, and Schemathesis reads an answer whole: its refusals are
# tested in server/tests/it/events.rs.
"$ST" --config-file end2end/schemathesis.toml run "http://$api/server/openapi.json" \
    --header "X-Ak-Session-Id: $token" \
    --checks all \
    --include-path-regex '^/(server|status)/' \
    --exclude-operation-id logout \
    --exclude-path /status/events \
    --max-examples "$EXAMPLES" \
    --workers 1

"$ST" --config-file end2end/schemathesis.toml run "http://$license/openapi.json" \
    --checks all \
    --max-examples "$EXAMPLES" \
    --workers 1
