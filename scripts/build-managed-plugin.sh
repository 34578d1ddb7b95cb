#!/bin/sh
# Builds the managed (v2) plugin from this checkout, offline, and creates it
# in the Docker engine the docker client talks to (DOCKER_HOST is honoured):
#
#   scripts/build-managed-plugin.sh [-n] [-d DIR] NAME:TAG
#
# DIR (default: a temporary directory, removed afterwards) receives
# config.json (managed-plugin/config.json) and rootfs/ with the static binary
# and the directories it needs; then `docker plugin create NAME:TAG DIR`.
# -n builds DIR only, without creating the plugin (DIR is kept).
set -eu
create=1
dir=
while getopts nd: opt; do
	case $opt in
	n) create= ;;
	d) dir=$OPTARG ;;
	*) echo "usage: $0 [-n] [-d DIR] NAME:TAG" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
name=${1:?usage: $0 [-n] [-d DIR] NAME:TAG}
repo=$(cd "$(dirname "$0")/.." && pwd)
keep=1
if [ -z "$dir" ]; then
	dir=$(mktemp -d)
	keep=
fi
[ -n "$keep" ] || [ -z "$create" ] || trap 'rm -rf "$dir"' EXIT
rm -rf "$dir/rootfs"
for d in run/docker/plugins var/lib/docker-vxlan-plugin tmp proc sys dev etc; do
	mkdir -p "$dir/rootfs/$d"
done
(cd "$repo" && CGO_ENABLED=0 go build -trimpath -o "$dir/rootfs/docker-vxlan-plugin" ./cmd/docker-vxlan-plugin)
cp "$repo/managed-plugin/config.json" "$dir/config.json"
if [ -n "$create" ]; then
	docker plugin create "$name" "$dir"
else
	echo "$dir"
fi
