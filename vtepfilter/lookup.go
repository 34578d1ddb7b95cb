package vtepfilter

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Attributes the nftables library and golang.org/x/sys/unix do not name.
const (
	nftaSetHandle = 0x10 // NFTA_SET_HANDLE, u64
)

// get asks the kernel for one object of the inet family: a request of
// message type typ (NFT_MSG_GETTABLE, GETSET or GETRULE) without the dump
// flag, which the kernel answers with the one object or an error, and
// returns the object's attributes. An object that does not exist (nor its
// table or chain) is ok false. f.mu is held: the socket is f.single.
func (f *Filter) get(typ int, attrs []netlink.Attribute) (ad *netlink.AttributeDecoder, ok bool, err error) {
	data, err := netlink.MarshalAttributes(attrs)
	if err != nil {
		return nil, false, err
	}
	// nfgenmsg: family, version, resource ID (big endian).
	hdr := []byte{unix.NFPROTO_INET, unix.NFNETLINK_V0, 0, 0}
	msgs, err := f.single.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | typ), Flags: netlink.Request},
		Data:   append(hdr, data...),
	})
	if errors.Is(err, unix.ENOENT) {
		return nil, false, nil
	}
	if err == nil && (len(msgs) != 1 || len(msgs[0].Data) < len(hdr)) {
		err = fmt.Errorf("%d messages in answer, want 1", len(msgs))
	}
	if err != nil {
		f.renewSingle()
		return nil, false, classify(err)
	}
	ad, err = netlink.NewAttributeDecoder(msgs[0].Data[len(hdr):])
	if err != nil {
		return nil, false, err
	}
	ad.ByteOrder = binary.BigEndian
	return ad, true, nil
}

// renewSingle replaces f.single after an error, which may leave on it an
// answer the next read would take for its own (Execute would then refuse
// every later answer as another request's). Should the socket not open,
// the closed one stays: each read fails, and tries again. f.mu is held.
func (f *Filter) renewSingle() {
	_ = f.single.Close()
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: f.netns})
	if err == nil {
		f.single = c
	}
	f.renewals++
}

// tableUse reads how many chains and sets (and other objects) the table
// holds, the kernel's NFTA_TABLE_USE, or -1 if the kernel does not say; ok
// is false when the table does not exist. f.mu is held.
func (f *Filter) tableUse() (use int64, ok bool, err error) {
	ad, ok, err := f.get(unix.NFT_MSG_GETTABLE, []netlink.Attribute{
		{Type: unix.NFTA_TABLE_NAME, Data: []byte(TableName + "\x00")},
	})
	if err != nil || !ok {
		return 0, ok, wrapGet(err, "table inet "+TableName)
	}
	use = -1
	for ad.Next() {
		if ad.Type() == unix.NFTA_TABLE_USE {
			use = int64(ad.Uint32())
		}
	}
	return use, true, wrapGet(ad.Err(), "table inet "+TableName)
}

// setHandle reads the handle of the table's set called name; ok is false
// when the set does not exist, handle 0 when the kernel does not tell set
// handles (before Linux 4.16). f.mu is held.
func (f *Filter) setHandle(name string) (handle uint64, ok bool, err error) {
	ad, ok, err := f.get(unix.NFT_MSG_GETSET, []netlink.Attribute{
		{Type: unix.NFTA_SET_TABLE, Data: []byte(TableName + "\x00")},
		{Type: unix.NFTA_SET_NAME, Data: []byte(name + "\x00")},
	})
	what := fmt.Sprintf("set %s of inet %s", name, TableName)
	if err != nil || !ok {
		return 0, ok, wrapGet(err, what)
	}
	for ad.Next() {
		if ad.Type() == nftaSetHandle {
			handle = ad.Uint64()
		}
	}
	return handle, true, wrapGet(ad.Err(), what)
}

// ruleAt reads the base chain's rule of handle h: its handle, comment,
// and of its expressions the lookup and the counter, all this package
// reads of a rule; ok is false when the chain holds no rule of that
// handle. f.mu is held.
func (f *Filter) ruleAt(h uint64) (r *nftables.Rule, ok bool, err error) {
	ad, ok, err := f.get(unix.NFT_MSG_GETRULE, []netlink.Attribute{
		{Type: unix.NFTA_RULE_TABLE, Data: []byte(TableName + "\x00")},
		{Type: unix.NFTA_RULE_CHAIN, Data: []byte(ChainName + "\x00")},
		{Type: unix.NFTA_RULE_HANDLE, Data: binary.BigEndian.AppendUint64(nil, h)},
	})
	what := fmt.Sprintf("rule %d of inet %s %s", h, TableName, ChainName)
	if err != nil || !ok {
		return nil, ok, wrapGet(err, what)
	}
	r = &nftables.Rule{Table: f.table, Chain: f.chain}
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_RULE_HANDLE:
			r.Handle = ad.Uint64()
		case unix.NFTA_RULE_USERDATA:
			r.UserData = ad.Bytes()
		case unix.NFTA_RULE_EXPRESSIONS:
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				for nad.Next() {
					if nad.Type() == unix.NFTA_LIST_ELEM {
						nad.Nested(func(ead *netlink.AttributeDecoder) error {
							e, err := decodeExpr(ead)
							if e != nil {
								r.Exprs = append(r.Exprs, e)
							}
							return err
						})
					}
				}
				return nil
			})
		}
	}
	return r, true, wrapGet(ad.Err(), what)
}

// decodeExpr decodes one expression of a rule if it is a lookup or a
// counter, and returns nil for any other.
func decodeExpr(ad *netlink.AttributeDecoder) (expr.Any, error) {
	var e expr.Any
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_EXPR_NAME:
			switch ad.String() {
			case "lookup":
				e = &expr.Lookup{}
			case "counter":
				e = &expr.Counter{}
			}
		case unix.NFTA_EXPR_DATA:
			if e != nil {
				if err := expr.Unmarshal(unix.NFPROTO_INET, ad.Bytes(), e); err != nil {
					return nil, err
				}
			}
		}
	}
	return e, ad.Err()
}

// wrapGet wraps an error of reading what, or returns nil.
func wrapGet(err error, what string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("vtepfilter: read %s: %w", what, err)
}

// lookupSet returns the name of the set a rule looks its source up in,
// or "".
func lookupSet(r *nftables.Rule) string {
	for _, e := range r.Exprs {
		if l, ok := e.(*expr.Lookup); ok {
			return l.SetName
		}
	}
	return ""
}

// found is what the table holds of one network.
type found struct {
	// rules are the network's rules, with their handles and counters.
	rules []*nftables.Rule
	// sets says which of the network's sets exist, by family.
	sets [len(families)]bool
	// listed says whether the chain was listed to find the rules.
	listed bool
}

// setCount counts the network's sets that exist.
func (fd *found) setCount() int64 {
	var n int64
	for _, ok := range fd.sets {
		if ok {
			n++
		}
	}
	return n
}

// find finds one network's sets and rules without listing the table when
// it can: a rule made with its set, in one transaction, has the handle
// after the set's (the kernel numbers a table's chains, sets and rules
// with one counter, and this package adds a network's rule right after
// its set), so it reads each set of the network and the rule at the next
// handle, and keeps the rule if it is the network's rule for that set.
// When a set has no such rule (its rule made again in a later
// transaction, for another port or VNI, or removed by someone else), or
// with list, it lists the chain's rules and takes the network's. A table
// that does not exist holds nothing. f.mu is held.
func (f *Filter) find(name string, list bool) (found, error) {
	var out found
	for i, fam := range families {
		set := name + fam.suffix
		h, ok, err := f.setHandle(set)
		if err != nil {
			return found{}, err
		}
		if !ok {
			continue
		}
		out.sets[i] = true
		if list || h == 0 {
			list = true
			continue
		}
		r, ok, err := f.ruleAt(h + 1)
		if err != nil {
			return found{}, err
		}
		if !ok {
			list = true
			continue
		}
		if n, mine := parseComment(ruleComment(r)); !mine || n.Name != name || lookupSet(r) != set {
			list = true
			continue
		}
		out.rules = append(out.rules, r)
	}
	if list && out.setCount() > 0 {
		have, err := f.ours()
		if err != nil {
			return found{}, err
		}
		out.rules, out.listed = have[name], true
	}
	return out, nil
}
