// Package rtlink is the rtnetlink plumbing of docker-vxlan-plugin: links
// (bridge, veth, macvlan, 802.1Q vlan, vxlan), addresses, routes, bridge FDB
// and neighbour entries, and network namespaces, spoken directly over a
// NETLINK_ROUTE socket.
//
// It is the only package of the module that imports github.com/mdlayher/netlink
// and github.com/jsimonetti/rtnetlink/v2, and it exposes none of their types.
// Attributes whose wire format other libraries get wrong are encoded here by
// hand and proven against the running kernel by the integration tests:
// IFLA_VXLAN_GBP, GPE, TTL_INHERIT and REMCSUM_NOPARTIAL are NLA_FLAG
// attributes, IFLA_VXLAN_LABEL and IFLA_VXLAN_PORT are big-endian.
//
// A [Conn] is bound to one network namespace for its whole life. Dialing into
// another namespace never moves the calling goroutine's thread: the socket is
// created in the target namespace and used from anywhere.
//
// Every error returned by this package is an [*OpError] naming the operation
// and the interface. It matches the kernel's errno with errors.Is (for example
// unix.EEXIST) as well as the sentinels [ErrNotFound], [ErrExists],
// [ErrPermission], [ErrNotSupported] and [ErrInvalid]; a link of another
// kind than expected is reported by [CheckKind], matching [ErrWrongKind].
package rtlink
