#!/usr/bin/env bash
# Schemathesis against the API port's OpenAPI document (/server/openapi.json), logged in as the
# first administrator: every operation is fuzzed from the schema, and no answer may be a 5xx or
# contradict the schema. Starts a release server of its own on a temporary data directory.
#
#   end2end/schemathesis.sh            (make test runs it; needs `st` from .venv, see the Makefile)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${LICENSE_SERVER_BIN:-target/release/license-server}
ST=${ST:-.venv/bin/st}
EXAMPLES=${SCHEMATHESIS_EXAMPLES:-50}

dir=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$dir"
}
trap cleanup EXIT

"$BIN" vendor keygen --out-dir "$dir/keys" >/dev/null
id=$("$BIN" server-id --data-dir "$dir/data")
"$BIN" vendor issue --key "$dir/keys/vendor.key" --server-id "$id" \
    --product-spec "7:0:Tool:5:1000" --max-users 100 --out "$dir/license.lic" 2>/dev/null
"$BIN" license install "$dir/license.lic" --data-dir "$dir/data" \
    --vendor-public-key "$dir/keys/vendor.pub" >/dev/null
"$BIN" --log-format json serve --bind 127.0.0.1 --port 0 --data-dir "$dir/data" \
    --vendor-public-key "$dir/keys/vendor.pub" 2>"$dir/server.log" &
pid=$!

api=
for _ in $(seq 300); do
    api=$(grep -o '"api_addr":"[^"]*"' "$dir/server.log" | head -1 | cut -d'"' -f4 || true)
    [ -n "$api" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    sleep 0.1
done
[ -n "$api" ] || { echo "the server did not start" >&2; cat "$dir/server.log" >&2; exit 1; }

token=$(python3 - "$api" "$dir/data/initial-admin-password" <<'PY'
import json, sys, urllib.request
api, password_file = sys.argv[1], sys.argv[2]
body = json.dumps({"principal": "admin", "secret": open(password_file).read().strip()}).encode()
request = urllib.request.Request(f"http://{api}/server/auth", body, {"content-type": "application/json"})
print(json.load(urllib.request.urlopen(request))["token"])
PY
)

# Logging out would end the token in the middle of the run; it has its own tests.
"$ST" run "http://$api/server/openapi.json" \
    --header "X-Ak-Session-Id: $token" \
    --checks not_a_server_error,response_schema_conformance \
    --include-path-regex '^/(server|status)/' \
    --exclude-operation-id logout \
    --max-examples "$EXAMPLES" \
    --workers 2
