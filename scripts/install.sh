#!/usr/bin/env bash
# Builds docker-vxlan-plugin (static: CGO_ENABLED=0) and installs it with its
# systemd units and environment file:
#
#   $DESTDIR$PREFIX/bin/docker-vxlan-plugin          (PREFIX default /usr/local)
#   $DESTDIR$UNITDIR/docker-vxlan-plugin.socket       (UNITDIR default /etc/systemd/system)
#   $DESTDIR$UNITDIR/docker-vxlan-plugin.service
#   $DESTDIR/etc/default/docker-vxlan-plugin          (only if not there: it is the operator's)
#
# The binary is replaced atomically (written beside, then renamed), so an
# upgrade is: run this again, then `systemctl restart docker-vxlan-plugin`.
# With DESTDIR set (packaging, tests) nothing outside DESTDIR is touched and
# systemctl is not run.
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX=${PREFIX:-/usr/local}
UNITDIR=${UNITDIR:-/etc/systemd/system}
DESTDIR=${DESTDIR:-}
bindir="$PREFIX/bin"

install -d -m 0755 "$DESTDIR$bindir" "$DESTDIR$UNITDIR" "$DESTDIR/etc/default"

tmp="$DESTDIR$bindir/.docker-vxlan-plugin.new.$$"
trap 'rm -f "$tmp"' EXIT
CGO_ENABLED=0 go build -trimpath -buildvcs=auto -o "$tmp" ./cmd/docker-vxlan-plugin
chmod 0755 "$tmp"
mv -f "$tmp" "$DESTDIR$bindir/docker-vxlan-plugin"

# The service runs the binary where PREFIX put it.
sed "s|/usr/local/bin/docker-vxlan-plugin|$bindir/docker-vxlan-plugin|" dist/systemd/docker-vxlan-plugin.service \
	> "$DESTDIR$UNITDIR/docker-vxlan-plugin.service"
install -m 0644 dist/systemd/docker-vxlan-plugin.socket "$DESTDIR$UNITDIR/docker-vxlan-plugin.socket"
chmod 0644 "$DESTDIR$UNITDIR/docker-vxlan-plugin.service"
if [ ! -e "$DESTDIR/etc/default/docker-vxlan-plugin" ]; then
	install -m 0644 dist/systemd/docker-vxlan-plugin.default "$DESTDIR/etc/default/docker-vxlan-plugin"
fi

echo "installed $DESTDIR$bindir/docker-vxlan-plugin ($("$DESTDIR$bindir/docker-vxlan-plugin" -version))"
if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload
	echo "first install: set DVP_FLAGS in /etc/default/docker-vxlan-plugin, then"
	echo "  systemctl enable --now docker-vxlan-plugin.socket docker-vxlan-plugin.service"
	echo "upgrade: systemctl restart docker-vxlan-plugin.service (dockerd's calls wait on the socket meanwhile)"
fi
