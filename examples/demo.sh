#!/usr/bin/env bash
# `make demo`: a vendor service with the sample catalog, a license server that activates the demo
# licenses from it, and a few `client run` jobs in a loop, so the status page is alive within a
# minute. With CLUSTER=3 (or 5), the server is a failover network of that many members on this
# machine (license ports 1400, 1410, 1420, …; API ports one above), the licenses activated on one
# member and the jobs given every member. Everything lives in a temporary directory; Ctrl-C stops
# every process and removes it.
#
#   DEMO_PORT=1400 DEMO_JOBS=5 CLUSTER=1 examples/demo.sh      (the Makefile builds first)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${LICENSE_SERVER_BIN:-target/release/license-server}
VENDOR_BIN=${LICENSE_VENDOR_BIN:-$(dirname "$BIN")/license-vendor}
PORT=${DEMO_PORT:-1400}
JOBS=${DEMO_JOBS:-5}
CLUSTER=${CLUSTER:-1}
case "$CLUSTER" in
    [1-7]) ;;
    *) echo "CLUSTER must be 1 to 7 (members of the failover network)" >&2; exit 2 ;;
esac

dir=$(mktemp -d -t license-server-demo.XXXXXX)
pids=()
stop() {
    trap - INT TERM EXIT
    echo
    echo "Stopping the demo…"
    # The job loops first (their children release their licenses), then the servers.
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
    echo "Stopped; removed $dir."
}
trap stop INT TERM EXIT

# The first `field` the JSON log `file` announces, once it does.
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

"$VENDOR_BIN" keygen --out-dir "$dir/keys" >/dev/null
"$VENDOR_BIN" --log-format json serve --key "$dir/keys/vendor.key" --catalog examples/catalog.toml \
    --bind 127.0.0.1 --port 0 --data-dir "$dir/vendor-data" 2>"$dir/vendor.log" &
pids+=($!)
vendor=$(announced "$dir/vendor.log" addr "${pids[-1]}")

# The members (one, or a failover network): data directories data1, data2, …
members=()
servers=()
for i in $(seq "$CLUSTER"); do
    port=$((PORT + 10 * (i - 1)))
    servers+=("127.0.0.1:$port")
    if [ "$CLUSTER" -gt 1 ]; then
        members+=(--member "127.0.0.1:$port=$("$BIN" network identity --data-dir "$dir/data$i")")
    fi
done
if [ "$CLUSTER" -gt 1 ]; then
    for i in $(seq "$CLUSTER"); do
        "$BIN" network init "${members[@]}" --data-dir "$dir/data$i" >/dev/null
    done
fi
apis=()
for i in $(seq "$CLUSTER"); do
    port=$((PORT + 10 * (i - 1)))
    "$BIN" --log-format json serve --bind 127.0.0.1 --port "$port" --data-dir "$dir/data$i" \
        --vendor-public-key "$dir/keys/vendor.pub" --vendor-url "http://$vendor" 2>"$dir/server$i.log" &
    pids+=($!)
    apis+=("$(announced "$dir/server$i.log" api_addr "${pids[-1]}")")
done
api=${apis[0]}
if [ "$CLUSTER" -gt 1 ]; then
    # The members elect a coordinator before anything is activated.
    for _ in $(seq 100); do
        curl -sf "http://$api/ready" >/dev/null && break
        sleep 0.1
    done
fi

# Log in as the first administrator, log in to the vendor as the sample account, activate both of
# its licenses: what an administrator does on the Vendor activation screen.
python3 - "$api" "$dir/data1/initial-admin-password" <<'PY'
import json, sys, urllib.request
api, password_file = sys.argv[1], sys.argv[2]
def call(method, path, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://{api}{path}", data, {"content-type": "application/json", **(headers or {})}, method=method)
    return json.load(urllib.request.urlopen(request))
admin = call("POST", "/server/auth", {"principal": "admin", "secret": open(password_file).read().strip()})["token"]
lic = call("POST", "/server/manage/license/remote/auth", {"principal": "demo", "secret": "demo-secret"}, {"X-Ak-Session-Id": admin})["token"]
for key in ("DEMO-PDFTOOLBOX-10", "DEMO-CREDITS"):
    call("PUT", f"/server/manage/license/remote/licenses/{key}", headers={"X-Ak-Session-Id": admin, "X-Lic-Session-Id": lic})
    print(f"activated {key}")
call("DELETE", "/server/auth", headers={"X-Ak-Session-Id": admin})
PY

# Jobs: runcount jobs of 5–25 s on pdfToolbox 10, and one credits job, each in a loop.
job_loop() {
    local n=$1 type=$2 major=$3
    trap 'kill -TERM "$child" 2>/dev/null; wait "$child" 2>/dev/null; exit 0' TERM INT
    while true; do
        "$BIN" client run --server "$(IFS=,; echo "${servers[*]}")" --product-id 1000 --major-version "$major" \
            --type "$type" --message "demo job $n" -- sleep $((RANDOM % 20 + 5)) 2>/dev/null &
        child=$!
        wait "$child" || true
        sleep $((RANDOM % 4 + 1))
    done
}
for n in $(seq "$JOBS"); do
    job_loop "$n" runcount 10 &
    pids=("$!" "${pids[@]}")
done
job_loop credits credits 0 &
pids=("$!" "${pids[@]}")

echo
echo "The demo is running:"
for i in $(seq "$CLUSTER"); do
    echo "  status page   http://${apis[$((i - 1))]}/status/index.html"
done
echo "  admin screens http://$api/admin  (user admin, password $(cat "$dir/data1/initial-admin-password"))"
echo "  vendor        http://$vendor  (account demo, secret demo-secret)"
echo "Press Ctrl-C to stop everything."
wait
