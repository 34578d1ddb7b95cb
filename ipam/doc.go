// Package ipam hands out addresses on a layer-2 segment that spans hosts
// (a VXLAN network, or a physical segment under macvlan networks) so that
// no two hosts of the segment hand out the same address, with no central
// store: no datastore, no routing daemon, no setting per host.
//
// Each host keeps its own leases (a [Store]); before it hands out an
// address it asks the segment whether another host holds it, through its
// own link on the segment (a [Segment]: duplicate-address probes, ARP as
// RFC 5227 describes for IPv4 and neighbour solicitation as RFC 4862
// describes for IPv6, and on EVPN networks the MAC/IP entries the routing
// daemon installs). Each host tries the addresses of a pool in an order of
// its own, derived from its identity on the segment (the MAC of its link),
// so that hosts starting containers at the same moment rarely try the same
// candidate; and it keeps a few addresses probed and held ready per pool,
// so that a request is answered without waiting for a probe.
//
// While a host holds an address that no interface carries yet (ready, or
// leased to a container that is not up), the front end's guard answers
// other hosts' probes for it (package linuxhost), so a later probe
// elsewhere finds it taken.
//
// # The race that remains
//
// Two hosts that probe the same address within one probe's time (about
// 100 ms) do not both take it: each takes a probe it hears for a conflict
// and tries its next candidate (RFC 5227's rule), and the one that probed
// first hears the other's probe (both do when both listen before either
// sends), so at most the later one keeps the address; only probes lost on the
// underlay, or a host whose guard is down (its plugin stopped) while an
// address it leased is not yet on an interface, can still give an address
// twice. An address handed out here that another host later answers for
// is a [Conflict]: the allocator records it (status shows it) and the
// front end logs both MACs; the address is not taken back from the
// container that has it.
package ipam
