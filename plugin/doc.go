// Package plugin is a Docker network driver for VXLAN fabrics: it serves
// libnetwork's remote driver protocol and turns each call into calls of
// packages vxlan and rtlink.
//
// A request flows one way: the HTTP handler (handler.go) decodes the call
// (api.go), the Driver (driver.go, network.go) turns its options into a
// NetworkSpec (spec.go) through the option table (options.go) and Resolve
// (resolve.go, parent.go), keeps the
// networks and endpoints and their state across restarts (network.go,
// endpoint.go, state.go, restore.go, discovery.go), and asks a Host
// (host.go) to make the links. LinuxHost (linux*.go) is the Host of this
// machine; unit tests use a fake one.
//
// Three kinds of network exist: a vxlan link in a bridge with a veth pair
// per container (KindBridge), a vxlan link with a macvlan link per
// container (KindMacvlan), and a macvlan network on a host interface
// (KindParent). Every link the plugin makes for a network carries an owner
// mark in its alias (names.go); only marked links are ever deleted.
//
// The option table, [Options], is the one place each network option is
// declared; [ParseOptions] and [Resolve] read options through it, so the
// other front end, the CNI plugin (cmd/vxlan-cni), takes the same options
// with the same errors and makes the same links with LinuxHost.
package plugin
