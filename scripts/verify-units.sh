#!/usr/bin/env bash
# Installs the plugin into a temporary DESTDIR with scripts/install.sh and
# checks its systemd units there with `systemd-analyze verify`. That works
# without systemd running as PID 1 given --root: the units are read, and
# ExecStart= is checked, inside the temporary root, into which the
# machine's own unit directory is copied so that the units' default
# dependencies (sysinit.target, sockets.target, ...) resolve. verify exits 0
# on warnings (an unknown key, a bad value), so any output is a failure too.
set -euo pipefail
cd "$(dirname "$0")/.."

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
DESTDIR="$root" ./scripts/install.sh >/dev/null
for dir in /usr/lib/systemd/system /lib/systemd/system; do
	if [ -d "$dir" ]; then
		mkdir -p "$root/usr/lib/systemd"
		cp -r "$dir" "$root/usr/lib/systemd/"
		break
	fi
done
units="$root/etc/systemd/system"
out=$(systemd-analyze verify --root="$root" "$units/docker-vxlan-plugin.socket" "$units/docker-vxlan-plugin.service" 2>&1) || {
	echo "$out"; exit 1
}
if [ -n "$out" ]; then
	echo "systemd-analyze verify warned:"; echo "$out"; exit 1
fi
echo "units verified: docker-vxlan-plugin.socket docker-vxlan-plugin.service"
