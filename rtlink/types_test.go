package rtlink

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestPortRangeText(t *testing.T) {
	for in, want := range map[string]PortRange{"5000-6000": {Low: 5000, High: 6000}, "7": {Low: 7, High: 7}, "0-0": {}} {
		var r PortRange
		if err := r.UnmarshalText([]byte(in)); err != nil || r != want {
			t.Errorf("%q: %v %v", in, r, err)
		}
	}
	for _, bad := range []string{"", "9-1", "a-b", "70000", "1-2-3"} {
		var r PortRange
		err := r.UnmarshalText([]byte(bad))
		var op *OpError
		if !errors.Is(err, ErrInvalid) || !errors.As(err, &op) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if b, _ := json.Marshal(PortRange{Low: 1, High: 2}); string(b) != `"1-2"` {
		t.Errorf("JSON %s", b)
	}
}

func TestMacvlanModeText(t *testing.T) {
	for _, m := range []MacvlanMode{MacvlanModePrivate, MacvlanModeVEPA, MacvlanModeBridge, MacvlanModePassthru, MacvlanModeSource} {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var back MacvlanMode
		if err := json.Unmarshal(b, &back); err != nil || back != m {
			t.Errorf("%v: %s -> %v %v", m, b, back, err)
		}
	}
	_, err := ParseMacvlanMode("nope")
	var op *OpError
	if !errors.As(err, &op) || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "passthru") {
		t.Errorf("ParseMacvlanMode: %v", err)
	}
	if _, err := json.Marshal(MacvlanMode(3)); err == nil {
		t.Error("an unknown mode marshals")
	}
}

func TestCheckKind(t *testing.T) {
	if err := CheckKind("x", &Link{Name: "vx0", Kind: "vxlan"}, "vxlan"); err != nil {
		t.Fatal(err)
	}
	err := CheckKind("ensure", &Link{Name: "lo"}, "vxlan")
	var op *OpError
	if !errors.Is(err, ErrWrongKind) || !errors.As(err, &op) || op.Link != "lo" ||
		!strings.HasPrefix(err.Error(), "rtlink: ensure lo: it is a device without a kind (physical or loopback), not a vxlan") {
		t.Fatalf("%v", err)
	}
}

// IFLA_LINK_NETNSID is encoded on create and decoded back.
func TestLinkNetNSIDRoundTrip(t *testing.T) {
	b, err := encodeLink(&Link{Name: "vx0", LinkNetNSID: Ptr(int32(3)), Data: &VXLAN{ID: Ptr(uint32(1)), Link: Ptr(uint32(2))}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := decodeLink(b)
	if err != nil {
		t.Fatal(err)
	}
	if l.LinkNetNSID == nil || *l.LinkNetNSID != 3 || *l.Data.(*VXLAN).Link != 2 {
		t.Fatalf("decoded %+v", l)
	}
}
