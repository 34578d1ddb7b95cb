package main

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
)

// The VNIs of VNI filtering links made by iproute2 come out of inspect as
// `bridge vni show` lists them, in the table and in JSON; a namespace
// without such links prints nothing more.
func TestIntegrationInspectVNIs(t *testing.T) {
	ns := testns.New(t)
	ns.IP("link", "add", "ul0", "type", "veth", "peer", "name", "ul1")
	ns.IP("link", "add", "vx-plain", "type", "vxlan", "id", "5", "dstport", "4790")

	var out bytes.Buffer
	if err := printVNIs(t.Context(), ns.Name, false, &out); err != nil || out.Len() != 0 {
		t.Fatalf("without vnifilter links: %v, %q", err, out.String())
	}

	if _, err := ns.TryIP("link", "add", "vf0", "type", "vxlan", "dstport", "4789", "external", "vnifilter", "dev", "ul0"); err != nil {
		testns.SkipMissingFeature(t, "vnifilter", err)
	}
	ns.IP("link", "add", "vf1", "type", "vxlan", "dstport", "4791", "external", "vnifilter")
	for _, args := range [][]string{
		{"vni", "add", "dev", "vf0", "vni", "10"},
		{"vni", "add", "dev", "vf0", "vni", "20-29"},
		{"vni", "add", "dev", "vf0", "vni", "30", "group", "239.1.1.30"},
		{"vni", "add", "dev", "vf0", "vni", "40", "remote", "fd00:1::2"},
	} {
		if _, err := ns.Exec("bridge", args...); err != nil {
			t.Fatal(err)
		}
	}

	out.Reset()
	if err := printVNIs(t.Context(), ns.Path(), false, &out); err != nil {
		t.Fatal(err)
	}
	want := "\nvf0 vnifilter\n  vni 10\n  vni 20-29\n  vni 30 group 239.1.1.30\n  vni 40 remote fd00:1::2\n" +
		"\nvf1 vnifilter\n  vni (none)\n"
	if out.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", out.String(), want)
	}

	out.Reset()
	if err := printVNIs(t.Context(), ns.Name, true, &out); err != nil {
		t.Fatal(err)
	}
	var doc map[string][]VNIFilterLink
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	wantJSON := []VNIFilterLink{
		{Name: "vf0", VNIs: []VNIEntry{{First: 10, Last: 10}, {First: 20, Last: 29}, {First: 30, Last: 30, Group: "239.1.1.30"}, {First: 40, Last: 40, Group: "fd00:1::2"}}},
		{Name: "vf1", VNIs: []VNIEntry{}},
	}
	if !reflect.DeepEqual(doc["vnifilter"], wantJSON) || len(doc) != 1 {
		t.Errorf("JSON: %s", out.String())
	}
	if !strings.Contains(out.String(), `"first": 20`) || !strings.Contains(out.String(), `"last": 29`) {
		t.Errorf("JSON field names: %s", out.String())
	}
}
