package vtepfilter

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
)

// capture returns a Filter whose transactions go nowhere, and a function
// that sends its queued batch there and returns the batch's messages
// (without the batch's begin and end).
func capture(t *testing.T) (*Filter, func() []netlink.Message) {
	t.Helper()
	var got []netlink.Message
	errCaptured := errors.New("captured")
	conn, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		if req != nil && got == nil {
			got = req
		}
		return nil, errCaptured
	}))
	if err != nil {
		t.Fatal(err)
	}
	tbl := &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}
	f := &Filter{conn: conn, table: tbl, chain: baseChain(tbl, ChainName)}
	return f, func() []netlink.Message {
		got = nil
		if err := f.conn.Flush(); !errors.Is(err, errCaptured) {
			t.Fatalf("Flush: %v", err)
		}
		return got[1 : len(got)-1]
	}
}

// size is the bytes messages take in a batch.
func size(msgs []netlink.Message) int {
	n := 0
	for _, m := range msgs {
		n += (16 + len(m.Data) + 3) &^ 3
	}
	return n
}

// The counts of messages that Sync's transactions are cut by are exact,
// and the estimates of their sizes bound them: for networks of the
// longest name, with and without rules to make, sets to empty first, and
// up to thousands of prefixes; and for a removal.
func TestBatchSizeEstimate(t *testing.T) {
	f, batch := capture(t)
	f.conn.AddTable(f.table)
	f.conn.AddChain(f.chain)
	if got := size(batch()); got > sizeTableChain {
		t.Errorf("table and chain: %d bytes, estimated %d", got, sizeTableChain)
	}
	name := strings.Repeat("n", maxNameLen)
	old := []*nftables.Rule{{Table: f.table, Chain: f.chain, Handle: 7}, {Table: f.table, Chain: f.chain, Handle: 9}}
	for _, prefixes := range []int{0, 1, 2, 100, 1000, 1500} {
		var allowed []netip.Prefix
		for i := range prefixes {
			// Every other address: a range each, two elements.
			allowed = append(allowed, netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 7), byte(i << 1)}), 32),
				netip.PrefixFrom(netip.AddrFrom16([16]byte{0: 0xfd, 14: byte(i >> 7), 15: byte(i << 1)}), 128))
		}
		n := Network{Name: name, Port: 65535, VNI: 1<<24 - 1, Allowed: allowed}
		for _, tc := range []struct {
			have   []*nftables.Rule
			exists [2]bool
		}{{nil, [2]bool{}}, {old, [2]bool{true, true}}, {old[:1], [2]bool{true, false}}} {
			c := planNetwork(&n, tc.have, tc.exists)
			if tc.have != nil {
				// The rules read are another VNI's: deleted, made anew.
				n.VNI--
				c = planNetwork(&n, tc.have, tc.exists)
				n.VNI++
			}
			if err := f.queue(&c); err != nil {
				t.Fatal(err)
			}
			msgs := batch()
			what := fmt.Sprintf("%d prefixes per family, %d rules read, sets %v", prefixes, len(tc.have), tc.exists)
			for _, m := range msgs {
				if len(m.Data) > 0xffff {
					t.Errorf("%s: a message of %d bytes: its attributes overflow their 16-bit length", what, len(m.Data))
				}
			}
			if len(msgs) != c.msgs {
				t.Errorf("%s: %d messages, counted %d", what, len(msgs), c.msgs)
			}
			if got := size(msgs); got > c.size {
				t.Errorf("%s: %d bytes, estimated %d", what, got, c.size)
			} else {
				t.Logf("%s: %d messages, %d bytes, estimated %d", what, len(msgs), got, c.size)
			}
		}
	}
	rm := planRemoval(name, old, []*nftables.Set{setFor(f.table, name, families[0]), setFor(f.table, name, families[1])})
	if err := f.queue(&rm); err != nil {
		t.Fatal(err)
	}
	if msgs := batch(); len(msgs) != rm.msgs || size(msgs) > rm.size {
		t.Errorf("removal: %d messages, %d bytes; counted %d, estimated %d", len(msgs), size(msgs), rm.msgs, rm.size)
	}
}
