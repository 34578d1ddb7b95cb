// Package linuxhost makes the networks of package fabric on a Linux
// machine, through packages vxlan and rtlink: a [Host] creates, adopts,
// checks and deletes a network's links (network.go), a container's
// interfaces (endpoint.go) and a network's flood entries to remote VTEPs
// (peers.go); it reconciles the host with a list of networks at start
// (reconcile.go), reports how the kernel differs from a spec without
// changing anything (check.go), gives an EVPN network's vxlan link its
// bridge port flags (evpn.go), builds a network's anycast gateway and puts
// the host's own addresses on its bridge (gateway.go), probes and guards
// addresses on a network's segment for an address allocator (segment.go),
// reads its vxlan links' counters and FDB
// sizes in two dumps for the metrics and the status (counters.go),
// deletes the links it lets go of in the background, many per request
// (reaper.go), counting them for the metrics (Released,
// WithDeletionObserver), and, with WithVTEPFilter, admits each vxlan
// network's VXLAN packets only from its VTEPs through package
// vtepfilter's nftables table (vtepfilter.go).
//
// Both front ends use it: the Docker driver (package docker) keeps one
// Host for the daemon's life, the CNI plugin (package cni) one per call.
// It imports fabric, vxlan, vtepfilter and rtlink, never a front end. A
// change made in several steps is taken back whole when a step fails
// (internal/undo); a link is deleted only when it carries the owner mark
// of the network it is deleted for (fabric.OwnerMark), or, for a
// container's link, when its name, kind and master or lower link show it
// is the one made for the endpoint. The VTEP filter's table is the only
// nftables table it touches.
package linuxhost
