package rtlink

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

func TestWalkAttributes(t *testing.T) {
	cases := []struct {
		name, in, want, err string
	}{
		{"Empty", "", "", ""},
		// A 5-byte attribute padded to 8, then a nested one (flag cleared).
		{"PaddedThenNested", "05000300 41000000 08001280 01020304", "3=41 18=01020304", ""},
		// The last attribute's padding may be missing.
		{"LastUnpadded", "05000300 41", "3=41", ""},
		{"ShortHeader", "0500", "", "attribute header: 2 bytes left"},
		{"LengthBelowHeader", "02000300", "", "length 2 with 4 bytes left"},
		{"LengthPastEnd", "09000300 41424344", "", "length 9 with 8 bytes left"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := hex.DecodeString(strings.ReplaceAll(c.in, " ", ""))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			err = walkAttributes(b, func(typ uint16, data []byte) error {
				got = append(got, fmt.Sprintf("%d=%x", typ, data))
				return nil
			})
			if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
				t.Fatalf("error %v, want %q", err, c.err)
			}
			if c.err == "" && strings.Join(got, " ") != c.want {
				t.Fatalf("walked %q, want %q", strings.Join(got, " "), c.want)
			}
		})
	}
}

// A link message whose fixed-size attribute has the wrong size is refused
// with the attribute named, as netlink.AttributeDecoder refuses it.
func TestDecodeLinkWrongSize(t *testing.T) {
	msg := make([]byte, 16)                                           // ifinfomsg
	msg = append(msg, 0x06, 0x00, 0x04, 0x00, 0xdc, 0x05, 0x00, 0x00) // IFLA_MTU with 2 bytes
	if _, err := decodeLink(msg); err == nil || !strings.Contains(err.Error(), "attribute 4 is not a uint32; length: 2") {
		t.Fatalf("got %v", err)
	}
}
