// Command vxlan-cni is a CNI plugin (network type "vxlan") that attaches
// containers to VXLAN segments with the same links, the same network
// options and the same owner marks as the Docker driver of this module
// (package plugin), so that Podman, containerd, CRI-O, Kubernetes and
// Nomad hosts share segments with Docker hosts.
//
// It is installed as "vxlan" in the CNI plugin directory
// (/usr/lib/cni or /opt/cni/bin) and speaks CNI 0.3.0 to 1.1.0: ADD, DEL,
// CHECK, VERSION, GC and STATUS. Addresses come from the IPAM plugin the
// configuration names under "ipam".
package main

import (
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"
)

// supportedVersions are the CNI versions whose results can carry the
// interfaces this plugin makes (0.1.0 and 0.2.0 results cannot).
var supportedVersions = version.PluginSupports("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")

func main() {
	skel.PluginMainFuncs(skel.CNIFuncs{Add: withSession(cmdAdd), Del: withSession(cmdDel), Check: withSession(cmdCheck), GC: withSession(cmdGC), Status: withSession(cmdStatus)},
		supportedVersions, "vxlan: VXLAN networks of docker-vxlan-plugin")
}
