package vxlan

import (
	"errors"
	"strings"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
	"golang.org/x/sys/unix"
)

// A kernel that does not offer a setting answers EOPNOTSUPP; this kernel
// offers every setting, so the refusal is built as such a kernel sends it
// (seen on a CI machine for IFLA_VXLAN_REMCSUM_NOPARTIAL).
func TestExplainNotSupported(t *testing.T) {
	kernel := &rtlink.OpError{Op: "create link", Link: "vx0", Err: unix.EOPNOTSUPP, Message: "remcsum nopartial is not offered"}
	cfg := &Config{Name: "vx0", VNI: 1, RemoteChecksumRX: true, RemoteChecksumNoPartial: true}
	err := explainNotSupported(cfg, kernel)
	var fe *FeatureError
	if !errors.As(err, &fe) || !errors.Is(err, ErrNotSupported) || !errors.Is(err, unix.EOPNOTSUPP) {
		t.Fatalf("got %v", err)
	}
	want := "vxlan: vx0: this kernel does not offer one of RemoteChecksumRX, RemoteChecksumNoPartial: rtlink: create link vx0: operation not supported (kernel: remcsum nopartial is not offered)"
	if err.Error() != want {
		t.Errorf("got  %q\nwant %q", err, want)
	}
	cfg.RemoteChecksumRX = false
	if err := explainNotSupported(cfg, kernel); !strings.Contains(err.Error(), "does not offer RemoteChecksumNoPartial: ") {
		t.Errorf("one setting: %v", err)
	}
	// The kernel pointed at the attribute: that setting alone is named.
	cfg.RemoteChecksumRX = true
	pointed := *kernel
	pointed.Attr = []uint16{unix.IFLA_LINKINFO, unix.IFLA_INFO_DATA, unix.IFLA_VXLAN_REMCSUM_NOPARTIAL}
	if err := explainNotSupported(cfg, &pointed); !strings.Contains(err.Error(), "does not offer RemoteChecksumNoPartial: ") {
		t.Errorf("attribute pointed at: %v", err)
	}
	// Nothing optional asked for: the kernel's error as it is.
	if err := explainNotSupported(&Config{Name: "vx0", VNI: 1}, kernel); err != error(kernel) {
		t.Errorf("no optional setting: %v", err)
	}
	// Other errors pass through.
	inval := &rtlink.OpError{Op: "create link", Link: "vx0", Err: unix.EINVAL}
	if err := explainNotSupported(cfg, inval); err != error(inval) {
		t.Errorf("EINVAL: %v", err)
	}
}
