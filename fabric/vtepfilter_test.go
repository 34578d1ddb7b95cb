package fabric

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// VtepFilter and VtepAllow are read into the spec; a bad prefix is refused
// with the option named, as every other option, and so is an allow-list
// with the filter off.
func TestVTEPFilterOptions(t *testing.T) {
	s, err := ParseOptions(map[string]string{"VxlanId": "7", "vtepallow": " 198.18.0.0/15, fd00::1 ,198.18.0.9,::ffff:198.18.1.0/120,"})
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("fd00::1/128"), netip.MustParsePrefix("198.18.0.9/32"),
		netip.MustParsePrefix("198.18.1.0/24")}
	if !slices.Equal(s.VTEPAllow, want) || s.VTEPFilter != nil {
		t.Fatalf("VTEPAllow %v VTEPFilter %v, want %v and nil (the daemon's default)", s.VTEPAllow, s.VTEPFilter, want)
	}
	if s, err := ParseOptions(map[string]string{"VxlanId": "7", "VtepFilter": "false"}); err != nil || s.VTEPFilter == nil || *s.VTEPFilter {
		t.Fatalf("VtepFilter=false: %+v %v", s, err)
	}
	for _, tc := range []struct {
		opts         map[string]string
		option, says string
	}{
		{map[string]string{"VxlanId": "7", "VtepAllow": "198.18.0.0/33"}, "VtepAllow", `option VtepAllow=198.18.0.0/33: "198.18.0.0/33" is not an IP prefix`},
		{map[string]string{"VxlanId": "7", "VtepAllow": "198.18.0.0/15,host1"}, "VtepAllow", `"host1" is not an IP address or prefix`},
		{map[string]string{"VxlanId": "7", "VtepAllow": "fe80::1%eth0"}, "VtepAllow", "is not an IP address or prefix"},
		{map[string]string{"VxlanId": "7", "VtepAllow": ","}, "VtepAllow", "no address or prefix"},
		{map[string]string{"VxlanId": "7", "VtepFilter": "sometimes"}, "VtepFilter", "option VtepFilter=sometimes: not a boolean; accepted: true or false"},
		{map[string]string{"VxlanId": "7", "VtepFilter": "off", "vtepAllow": "198.18.0.1"}, "vtepAllow", "given with VtepFilter=false"},
		{map[string]string{"parent": "eth0", "VtepFilter": "true"}, "VtepFilter", "not for a network of kind parent"},
	} {
		_, err := ParseOptions(tc.opts)
		var oe *OptionError
		if !errors.As(err, &oe) || oe.Option != tc.option || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%v: %v; want option %s saying %q", tc.opts, err, tc.option, tc.says)
		}
	}
}
