// Package vtepfilter admits VXLAN packets only from a network's own VTEPs:
// an nftables table, made and read over netlink with
// github.com/google/nftables (no nft executable), that drops and counts the
// packets to a network's UDP port and carrying its VNI whose source is not
// in the network's allow-list.
//
// # The table
//
// One table, family inet, named [TableName], that this package owns: it
// never reads, changes or deletes any other table. Its one base chain,
// [ChainName], hooks the input path (locally delivered packets, IPv4 and
// IPv6 alike) at priority [ChainPriority], with policy accept: a packet
// the table does not drop goes on to the host's other tables as if the
// table were not there, so nothing here can admit what another table
// drops. Per network ("name" below, a short key the caller chooses):
//
//   - two sets of allowed sources, name_v4 (ipv4_addr) and name_v6
//     (ipv6_addr), with the interval flag so that they hold prefixes as
//     well as addresses;
//
//   - two rules, one per address family:
//
//     meta nfproto ipv4 meta l4proto udp udp dport PORT @th,96,24 VNI ip saddr != @name_v4 counter drop
//     meta nfproto ipv6 meta l4proto udp udp dport PORT @th,96,24 VNI ip6 saddr != @name_v6 counter drop
//
//     where @th,96,24 is the 24-bit VNI of the VXLAN header: 8 bytes of
//     UDP header, then 4 bytes of VXLAN flags and reserved bits, then the
//     VNI. The rules carry the comment "dvp name port PORT vni VNI", by
//     which they are found again.
//
// Why inet and input, not netdev and ingress: a netdev chain is bound to
// one device, and a network's VTEP device is chosen per host from a list,
// may be an address rather than a device, and may change under the
// network; the input hook sees every VXLAN packet the host's vxlan sockets
// receive, whatever device it came in on, and only those (packets routed
// through the host to another VTEP are not touched). The price is that the
// packets are dropped after routing rather than before it, which the
// benchmark measures.
//
// A packet of the network's family whose source is not in the set is
// dropped; a packet of the other family carrying the network's VNI is
// dropped too, as its set stays empty.
//
// # Changing one network
//
// Install, Remove and Dropped read only the network's own sets and rules,
// so that they cost about the same beside one network or thousands: the
// kernel numbers a table's chains, sets and rules with one counter, and
// each rule is made in the transaction that makes its set, right after
// it, so that its handle is the set's plus one. They read the network's
// two sets by name and the rules at those handles, and take a rule only
// if it is the network's for that set (its comment, the set it looks up).
// Only a rule not found there (made again later, for another port or VNI,
// or removed or added by someone else) has them list the chain's rules, as
// Sync, Read and DroppedAll always do. Remove deletes the table with the
// last network by the kernel's count of the table's chains and sets: the
// base chain and two sets per network.
//
// # Rebuilding the table
//
// [Filter.Sync] rebuilds the table at the plugin's start from its state.
// It lists the table once, then makes and removes networks in
// transactions of a few networks each: the kernel answers every message
// of a transaction, all at once after the whole batch, and a batch of
// more than about 28 networks has answers that overflow a netlink
// socket's receive buffer (ENOBUFS, the transaction applied though
// reported failed), one of about 150 networks is longer than its send
// buffer (EMSGSIZE, nothing applied). A network is made or removed whole
// in one transaction, rules with their sets; only the rebuild as a whole
// is not atomic, and a rebuild cut short leaves each network either as it
// was or as it is to be, until the next start's rebuild.
//
// The transactions go through one lasting netlink socket, which is
// replaced after any error: the nftables library leaves a failed
// transaction's remaining answers on the socket, where the next
// transaction would take them for its own.
//
// # Kernels without nf_tables
//
// [Filter.Probe] asks the kernel, with a transaction that makes a probe
// table and base chain and deletes them again; where nf_tables (or its
// inet family) is missing, the error matches [ErrUnsupported], and the
// caller goes on unfiltered.
package vtepfilter
