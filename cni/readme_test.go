package cni

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/containernetworking/cni/libcni"
)

// The conflists of docs/cni.md are ones libcni loads and the plugin accepts.
func TestREADMEConflists(t *testing.T) {
	b, err := os.ReadFile("../docs/cni.md")
	if err != nil {
		t.Fatal(err)
	}
	const marker = "<!-- cni-conflist -->\n```json\n"
	blocks := strings.Split(string(b), marker)[1:]
	if len(blocks) != 2 {
		t.Fatalf("docs/cni.md has %d conflists after %q markers, want 2 (Podman, Kubernetes)", len(blocks), strings.TrimSpace(marker))
	}
	for _, blk := range blocks {
		text := blk[:strings.Index(blk, "```")]
		list, err := libcni.ConfListFromBytes([]byte(text))
		if err != nil {
			t.Fatalf("libcni refuses a conflist of docs/cni.md: %v\n%s", err, text)
		}
		if list.Plugins[0].Network.Type != "vxlan" {
			t.Errorf("%s: first plugin is %q, not vxlan", list.Name, list.Plugins[0].Network.Type)
		}
		// The plugin's configuration as libcni hands it over: name and
		// version added to the plugin's own keys.
		var p map[string]any
		if err := json.Unmarshal(list.Plugins[0].Bytes, &p); err != nil {
			t.Fatal(err)
		}
		p["name"], p["cniVersion"] = list.Name, list.CNIVersion
		stdin, _ := json.Marshal(p)
		conf, err := parseConfig(stdin)
		if err != nil {
			t.Fatalf("%s: %v", list.Name, err)
		}
		if err := checkKind(conf); err != nil {
			t.Errorf("%s: %v", list.Name, err)
		}
		if _, err := fabric.ParseOptions(conf.Options); err != nil {
			t.Errorf("%s: %v", list.Name, err)
		}
	}
}

// The conflist of docs/ipam.md is one libcni loads and both the vxlan
// plugin and vxlan-ipam accept.
func TestIPAMDocConflist(t *testing.T) {
	b, err := os.ReadFile("../docs/ipam.md")
	if err != nil {
		t.Fatal(err)
	}
	const marker = "<!-- cni-ipam-conflist -->\n```json\n"
	_, blk, ok := strings.Cut(string(b), marker)
	if !ok {
		t.Fatalf("docs/ipam.md has no conflist after %q", strings.TrimSpace(marker))
	}
	text := blk[:strings.Index(blk, "```")]
	list, err := libcni.ConfListFromBytes([]byte(text))
	if err != nil {
		t.Fatalf("libcni refuses the conflist: %v\n%s", err, text)
	}
	var p map[string]any
	if err := json.Unmarshal(list.Plugins[0].Bytes, &p); err != nil {
		t.Fatal(err)
	}
	p["name"], p["cniVersion"] = list.Name, list.CNIVersion
	stdin, _ := json.Marshal(p)
	if _, err := parseConfig(stdin); err != nil {
		t.Errorf("the vxlan plugin: %v", err)
	}
	c, err := parseIPAMConfig(stdin, "")
	if err != nil {
		t.Fatalf("vxlan-ipam: %v", err)
	}
	if len(c.Ranges) != 2 || !c.Derive || c.Ranges[1].Gateway.String() != "fd00:70::1" {
		t.Errorf("vxlan-ipam reads %+v", *c)
	}
}
