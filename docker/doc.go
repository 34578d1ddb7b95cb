// Package docker is the Docker front end of the project: a network driver
// for libnetwork's remote driver protocol, served over HTTP on the
// plugin's socket, as the legacy plugin and as a managed (swarm) plugin.
//
// It holds the protocol (wire types in api.go, the bounded HTTP handler in
// handler.go), the Driver that keeps networks and endpoints and serialises
// the calls on each (driver.go, network.go, endpoint.go), its state store
// across restarts (state.go over internal/store) and the restore at start
// (restore.go, restore_global.go), swarm VNI allocation (allocate.go),
// swarm peers (peers.go, discovery.go) and the membership the plugins of a
// swarm keep among themselves (membership.go), the IPAM driver (ipam.go),
// the status report (status.go), and the Prometheus metrics (metrics.go),
// which read the status report's census and count every call in the
// handler's one wrapper.
//
// What a network is and how its options are read is package fabric's;
// making it on the machine is package linuxhost's, behind the Host
// interface (host.go) that unit tests fake. The CNI front end (package
// cni) is a peer: neither imports the other. See package fabric for the
// walk of one option from a request to its netlink attribute.
package docker
