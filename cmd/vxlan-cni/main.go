// Command vxlan-cni is the CNI plugin of network type "vxlan" (package
// cni): VXLAN networks that share segments with the Docker plugin's.
//
// It is installed as "vxlan" in the CNI plugin directory (/usr/lib/cni or
// /opt/cni/bin) and speaks CNI 0.3.0 to 1.1.0: ADD, DEL, CHECK, VERSION,
// GC and STATUS. Addresses come from the IPAM plugin the configuration
// names under "ipam".
package main

import (
	"runtime/debug"

	"github.com/TrilliumIT/docker-vxlan-plugin/cni"
	"github.com/containernetworking/cni/pkg/skel"
)

func main() {
	skel.PluginMainFuncs(cni.Funcs(), cni.Versions(), about())
}

// about is what the plugin prints when run without CNI_COMMAND: what it
// is, and the module version it was built from when the build knows it.
func about() string {
	const s = "vxlan: VXLAN networks of docker-vxlan-plugin"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return s + " " + bi.Main.Version
	}
	return s
}
