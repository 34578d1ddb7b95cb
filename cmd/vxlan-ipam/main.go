// Command vxlan-ipam is the CNI IPAM plugin of docker-vxlan-plugin
// (package cni): addresses on a segment shared by hosts, checked on the
// segment before they are handed out, by the same rules as the Docker
// driver's IPAM, so that CNI hosts and Docker hosts on one segment never
// hand out the same address.
//
// It is installed as "vxlan-ipam" in the CNI plugin directory
// (/usr/lib/cni or /opt/cni/bin) and named as the "type" of a network's
// "ipam" section. It speaks CNI 0.3.0 to 1.1.0: ADD, DEL, CHECK, VERSION,
// GC and STATUS.
package main

import (
	"runtime/debug"

	"github.com/TrilliumIT/docker-vxlan-plugin/cni"
	"github.com/containernetworking/cni/pkg/skel"
)

func main() {
	skel.PluginMainFuncs(cni.IPAMFuncs(), cni.Versions(), about())
}

// about is what the plugin prints when run without CNI_COMMAND.
func about() string {
	const s = "vxlan-ipam: addresses on VXLAN segments of docker-vxlan-plugin"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return s + " " + bi.Main.Version
	}
	return s
}
