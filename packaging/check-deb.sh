#!/usr/bin/env bash
# Checks the Debian package as `make test` does, without installing it on this machine: its
# control data and contents, the files unpacked into a scratch root, the shipped configuration
# file (the server starts with it), and the systemd unit (`systemd-analyze verify`).
set -euo pipefail
deb=${1:?usage: check-deb.sh PACKAGE.deb}
fail() { echo "check-deb: $*" >&2; exit 1; }

info=$(dpkg-deb --info "$deb")
grep -q '^ Package: license-server$' <<<"$info" || fail "not the license-server package"
grep -q '^ Depends: .*adduser' <<<"$info" || fail "no dependency on adduser (postinst needs it)"
contents=$(dpkg-deb --contents "$deb")
for file in ./usr/bin/license-server \
    ./usr/lib/systemd/system/license-server.service \
    ./etc/license-server/license-server.toml \
    ./usr/share/man/man1/license-server.1.gz \
    ./usr/share/man/man1/license-server-serve.1.gz \
    ./usr/share/bash-completion/completions/license-server \
    ./usr/share/zsh/vendor-completions/_license-server \
    ./usr/share/fish/vendor_completions.d/license-server.fish \
    ./usr/share/doc/license-server/examples/prometheus/license-server-alerts.yml; do
    grep -q " $file\$" <<<"$contents" || fail "$file is not in the package"
done
grep -q 'license-vendor' <<<"$contents" && fail "the vendor's tools must not be in the package"

root=$(mktemp -d)
server=
trap 'if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi; rm -rf "$root"' EXIT
dpkg-deb -x "$deb" "$root"
dpkg-deb -e "$deb" "$root/DEBIAN"
grep -qx /etc/license-server/license-server.toml "$root/DEBIAN/conffiles" \
    || fail "the configuration file is not a conffile (an upgrade would overwrite edits)"
grep -q 'adduser --system' "$root/DEBIAN/postinst" || fail "postinst does not create the user"
grep -q 'systemctl\|deb-systemd' "$root/DEBIAN/postinst" || fail "postinst does not enable the unit"
"$root/usr/bin/license-server" --version

# The shipped configuration is one the server takes (an unknown key would stop it).
data="$root/data"
"$root/usr/bin/license-server" --log-format json serve \
    --config "$root/etc/license-server/license-server.toml" \
    --data-dir "$data" --bind 127.0.0.1 --port 0 2>"$root/serve.log" &
server=$!
for _ in $(seq 1 100); do
    grep -q '"api_addr"' "$root/serve.log" 2>/dev/null && break
    kill -0 "$server" 2>/dev/null || fail "the server did not start with the shipped configuration: $(cat "$root/serve.log")"
    sleep 0.1
done
grep -q '"api_addr"' "$root/serve.log" || fail "the server did not become ready: $(cat "$root/serve.log")"
kill -TERM "$server"
wait "$server" || fail "the server did not stop cleanly on SIGTERM"
server=

# The unit, with its binary and man pages found in the scratch root.
unit="$root/usr/lib/systemd/system/license-server.service"
grep -q '^ExecStart=/usr/bin/license-server serve --config /etc/license-server/license-server.toml$' "$unit" \
    || fail "the unit does not start the server with the shipped configuration"
for option in NoNewPrivileges=yes ProtectSystem=strict StateDirectory=license-server User=license-server Type=notify; do
    grep -qx "$option" "$unit" || fail "the unit lacks $option"
done
# Verified as this machine's systemd would load it, with the binary where the package puts it
# (this machine does not have it installed there).
mkdir "$root/verify"
sed "s#/usr/bin/license-server#$root/usr/bin/license-server#" "$unit" >"$root/verify/license-server.service"
SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$root/verify/license-server.service" \
    2>&1 | tee "$root/verify.log"
# Without a running systemd (a container), verify cannot reach the manager: not the unit's fault.
if grep -v 'Failed to \(connect to\|determine\|initialize\)\|sysinit.target\|Failed to load\|System has not been booted' "$root/verify.log" | grep -q .; then
    fail "systemd-analyze verify found problems"
fi
echo "check-deb: $deb is sound"
