// Package fabric is the network model of the project, shared by its two
// front ends, the Docker network driver (package docker) and the CNI
// plugin (package cni): what a network on a VXLAN fabric is and every rule
// about it, with no netlink of its own.
//
//   - The option table (options.go, [Options]) declares each network option
//     once: its name, the kinds of network that take it, its meaning,
//     default and accepted values, and how its value is read (values.go).
//     [ParseOptions] reads options through it into a typed [NetworkSpec]
//     (spec.go); every refusal is an [*OptionError] naming the option and
//     what it accepts.
//   - [Resolve] (resolve.go) completes a spec on a host: the VTEP device,
//     the MTUs, the link names and owner marks (names.go), a parent network's
//     parent (parent.go) or parent file (parentfile.go), an EVPN network's
//     local address (evpn.go, with ControlPlane's option rules), and the vxlan
//     link's own checks (vxlan.Config.Validate, reported as the option that
//     set the field). It reads the host only through [Interfaces].
//   - [Endpoint] (endpoint.go) is a container's attachment.
//
// Package linuxhost makes what a spec describes on a Linux machine.
//
// # Layers
//
// Imports flow one way: cmd → {docker, cni} → {fabric, linuxhost} →
// vxlan → rtlink. This package imports vxlan (for vxlan.Config) and rtlink
// (for its link kinds' types), never a front end nor linuxhost.
//
// # From a user's option to a netlink attribute
//
// One option, TTL=9, on its way to the kernel, from either front end:
//
//	Docker: docker/handler.go      NewHandler's NetworkDriver.CreateNetwork route decodes the request
//	        docker/network.go      Driver.CreateNetwork: the -o options (genericOptions), then specFor
//	CNI:    cni/config.go          parseConfig: the configuration's key "TTL": 9 becomes the option TTL=9
//	        cni/add.go             cmdAdd, addition.makeNetwork, session.spec
//	both:   fabric/resolve.go      Resolve
//	        fabric/options.go      ParseOptions: the table's TTL row, read by values.go's parseRange
//	        fabric/resolve.go      Resolve: vxlan.Config.Validate, a refusal reported by optionErrorOf
//	        linuxhost/network.go   Host.CreateNetwork, ensureVXLANLink
//	        vxlan/vxlan.go         Client.Create: toLink sets rtlink.VXLAN.TTL
//	        rtlink/link.go         Conn.CreateLink, one RTM_NEWLINK request
//	        rtlink/vxlan.go        the IFLA_VXLAN_TTL attribute
//
// Each front end only turns its protocol into options and back; from
// Resolve on, both run the same functions, and no file is visited twice
// for the same layer.
package fabric
