package vtepfilter

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// The table, its base chain and the chain's priority.
const (
	// TableName is the name of the plugin's table, family inet.
	TableName = "docker_vxlan_plugin"
	// ChainName is the table's one base chain, on the input hook.
	ChainName = "vtep_input"
	// ChainPriority is the base chain's priority: before the filter
	// tables of the host (0), after conntrack (-200).
	ChainPriority = -10
)

// vniOffset is where the VNI starts in the transport header of a VXLAN
// packet: after the 8-byte UDP header and the 4 bytes of VXLAN flags and
// reserved bits; it is 3 bytes long.
const vniOffset, vniLen = 8 + 4, 3

// commentPrefix starts the comment of every rule of the table.
const commentPrefix = "dvp "

// Network is one network's filter: packets to Port carrying VNI are
// admitted only from the sources in Allowed.
type Network struct {
	// Name keys the network in the table: 1 to 28 letters, digits, '_'
	// or '-'. The caller chooses it (the plugin: the network's short ID).
	Name string
	// Port is the UDP destination port of the network's VXLAN packets.
	Port uint16
	// VNI is the network's VXLAN network identifier (24 bits).
	VNI uint32
	// Allowed are the sources admitted: addresses as /32 or /128 prefixes,
	// and prefixes; IPv4 and IPv6 may be mixed.
	Allowed []netip.Prefix
}

// maxNameLen keeps a set's name ("name_v4") within the 32 bytes older
// kernels allow (NFT_SET_MAXNAMELEN, with its NUL).
const maxNameLen = 28

// Validate checks the network's name, port and VNI, and that every allowed
// prefix is valid.
func (n *Network) Validate() error {
	if n.Name == "" || len(n.Name) > maxNameLen || strings.IndexFunc(n.Name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}) >= 0 {
		return fmt.Errorf("network name %q: accepted: 1 to %d letters, digits, '_' or '-'", n.Name, maxNameLen)
	}
	if n.Port == 0 {
		return fmt.Errorf("network %s: port 0: accepted: 1..65535", n.Name)
	}
	if n.VNI >= 1<<24 {
		return fmt.Errorf("network %s: VNI %d: accepted: 0..16777215", n.Name, n.VNI)
	}
	for _, p := range n.Allowed {
		if !p.IsValid() {
			return fmt.Errorf("network %s: allowed prefix %v is not valid", n.Name, p)
		}
	}
	return nil
}

// comment is the comment the network's rules carry.
func (n *Network) comment() string {
	return fmt.Sprintf("%s%s port %d vni %d", commentPrefix, n.Name, n.Port, n.VNI)
}

// parseComment reads a rule's comment back: the network's name, port and
// VNI, and whether it is one of this package's.
func parseComment(c string) (Network, bool) {
	var n Network
	f := strings.Fields(strings.TrimPrefix(c, commentPrefix))
	if !strings.HasPrefix(c, commentPrefix) || len(f) != 5 || f[1] != "port" || f[3] != "vni" {
		return n, false
	}
	port, err1 := strconv.ParseUint(f[2], 10, 16)
	vni, err2 := strconv.ParseUint(f[4], 10, 24)
	if err1 != nil || err2 != nil {
		return n, false
	}
	n.Name, n.Port, n.VNI = f[0], uint16(port), uint32(vni)
	return n, true
}

// ruleComment returns a rule's comment, or "".
func ruleComment(r *nftables.Rule) string {
	s, _ := userdata.GetString(r.UserData, userdata.TypeComment)
	return strings.TrimRight(s, "\x00")
}

// family is one address family of the table's rules and sets.
type family struct {
	suffix  string // of the set's name
	nfproto byte
	keyType nftables.SetDatatype
	// saddr is where the source address lies in the network header.
	saddrOffset, saddrLen uint32
}

var families = [2]family{
	{suffix: "_v4", nfproto: unix.NFPROTO_IPV4, keyType: nftables.TypeIPAddr, saddrOffset: 12, saddrLen: 4},
	{suffix: "_v6", nfproto: unix.NFPROTO_IPV6, keyType: nftables.TypeIP6Addr, saddrOffset: 8, saddrLen: 16},
}

// familyOf returns the family of an address.
func familyOf(a netip.Addr) family {
	if a.Is4() {
		return families[0]
	}
	return families[1]
}

// setFor is the network's set of allowed sources of family fam.
func setFor(t *nftables.Table, name string, fam family) *nftables.Set {
	return &nftables.Set{Table: t, Name: name + fam.suffix, KeyType: fam.keyType, Interval: true}
}

// ruleExprs are the expressions of the network's rule for family fam,
// looking up the set set (its ID is the one AddSet gave it in the same
// batch, or 0 for a set that exists):
//
//	meta nfproto FAM meta l4proto udp udp dport PORT @th,96,24 VNI SADDR != @set counter drop
func ruleExprs(n *Network, fam family, set *nftables.Set) []expr.Any {
	port := make([]byte, 2)
	binary.BigEndian.PutUint16(port, n.Port)
	vni := []byte{byte(n.VNI >> 16), byte(n.VNI >> 8), byte(n.VNI)}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{fam.nfproto}},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_UDP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: port},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: vniOffset, Len: vniLen},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: vni},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: fam.saddrOffset, Len: fam.saddrLen},
		&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID, Invert: true},
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}

// rule is the network's rule for family fam.
func rule(c *nftables.Chain, n *Network, fam family, set *nftables.Set) *nftables.Rule {
	return &nftables.Rule{
		Table:    c.Table,
		Chain:    c,
		Exprs:    ruleExprs(n, fam, set),
		UserData: userdata.AppendString(nil, userdata.TypeComment, n.comment()),
	}
}

// addrRange is an inclusive range of addresses of one family.
type addrRange struct{ lo, hi netip.Addr }

// lastAddr returns the last address of prefix p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// mergeRanges turns prefixes of one family into sorted ranges that neither
// overlap nor touch, as an interval set needs its elements.
func mergeRanges(prefixes []netip.Prefix) []addrRange {
	rs := make([]addrRange, 0, len(prefixes))
	for _, p := range prefixes {
		p = p.Masked()
		rs = append(rs, addrRange{p.Addr(), lastAddr(p)})
	}
	slices.SortFunc(rs, func(a, b addrRange) int { return a.lo.Compare(b.lo) })
	var out []addrRange
	for _, r := range rs {
		if k := len(out) - 1; k >= 0 && (r.lo.Compare(out[k].hi) <= 0 || (out[k].hi.Next().IsValid() && r.lo == out[k].hi.Next())) {
			if r.hi.Compare(out[k].hi) > 0 {
				out[k].hi = r.hi
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// elements are the interval set's elements of prefixes of one family: each
// range's first address, and the address after its last, flagged as the
// interval's end (none for a range that ends at the family's last address).
func elements(prefixes []netip.Prefix) []nftables.SetElement {
	var out []nftables.SetElement
	for _, r := range mergeRanges(prefixes) {
		out = append(out, nftables.SetElement{Key: r.lo.AsSlice()})
		if end := r.hi.Next(); end.IsValid() {
			out = append(out, nftables.SetElement{Key: end.AsSlice(), IntervalEnd: true})
		}
	}
	return out
}

// prefixesOf reads an interval set's elements back as the fewest prefixes
// that cover exactly its ranges.
func prefixesOf(els []nftables.SetElement) []netip.Prefix {
	type point struct {
		a   netip.Addr
		end bool
	}
	pts := make([]point, 0, len(els))
	for _, e := range els {
		a, ok := netip.AddrFromSlice(e.Key)
		if !ok {
			continue
		}
		pts = append(pts, point{a, e.IntervalEnd})
	}
	slices.SortFunc(pts, func(x, y point) int { return x.a.Compare(y.a) })
	var out []netip.Prefix
	for i := 0; i < len(pts); i++ {
		if pts[i].end {
			continue
		}
		lo := pts[i].a
		var hi netip.Addr
		if i+1 < len(pts) && pts[i+1].end {
			hi = pts[i+1].a.Prev()
			i++
		} else {
			hi = lastAddr(netip.PrefixFrom(lo, 0))
		}
		out = append(out, rangePrefixes(lo, hi)...)
	}
	return out
}

// rangePrefixes splits the range lo..hi into the fewest prefixes.
func rangePrefixes(lo, hi netip.Addr) []netip.Prefix {
	var out []netip.Prefix
	for lo.Compare(hi) <= 0 {
		p := netip.PrefixFrom(lo, lo.BitLen())
		for bits := 0; bits <= lo.BitLen(); bits++ {
			c := netip.PrefixFrom(lo, bits).Masked()
			if c.Addr() == lo && lastAddr(c).Compare(hi) <= 0 {
				p = c
				break
			}
		}
		out = append(out, p)
		next := lastAddr(p).Next()
		if !next.IsValid() {
			break
		}
		lo = next
	}
	return out
}

// splitFamilies splits prefixes by family, IPv4-mapped IPv6 addresses
// taken as IPv4.
func splitFamilies(prefixes []netip.Prefix) (v4, v6 []netip.Prefix) {
	for _, p := range prefixes {
		if p.Addr().Is4In6() {
			bits := p.Bits() - 96
			if bits < 0 {
				bits = 0
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), bits)
		}
		if p.Addr().Is4() {
			v4 = append(v4, p)
		} else {
			v6 = append(v6, p)
		}
	}
	return v4, v6
}
