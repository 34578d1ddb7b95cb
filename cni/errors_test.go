package cni

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

// The plugin's errors carry the codes of the CNI specification, as a
// runtime reads them through libcni from the built plugin: 7 for a
// configuration it refuses, 11 for a VTEP device not (yet) on the host, 5
// for a state directory it cannot write, and skel's 1 for a CNI version
// it does not speak. No root needed: each call fails before it touches
// the kernel or the container's namespace.
func TestErrorCodesThroughLibcni(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(envStateDir, filepath.Join(dir, "state"))
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cni := libcni.NewCNIConfigWithCacheDir([]string{pluginDir(t)}, filepath.Join(dir, "cache"), nil)
	rt := &libcni.RuntimeConf{ContainerID: "dvp-errors", NetNS: "/nonexistent/netns", IfName: "eth0"}
	ipam := map[string]any{"type": "dvp-no-such-ipam"}
	for _, c := range []struct {
		name     string
		version  string
		keys     map[string]any
		stateDir string
		code     uint
	}{
		{name: "bad VxlanId", keys: map[string]any{"VxlanId": "bogus", "ipam": ipam}, code: types.ErrInvalidNetworkConfig},
		{name: "unknown option", keys: map[string]any{"VxlanId": 70, "Bogus": "1", "ipam": ipam}, code: types.ErrInvalidNetworkConfig},
		{name: "object as option", keys: map[string]any{"VxlanId": 70, "Peers": map[string]any{}, "ipam": ipam}, code: types.ErrInvalidNetworkConfig},
		{name: "no VxlanId", keys: map[string]any{"ipam": ipam}, code: types.ErrInvalidNetworkConfig},
		{name: "no IPAM", keys: map[string]any{"VxlanId": 70}, code: types.ErrInvalidNetworkConfig},
		{name: "VTEP device absent", keys: map[string]any{"VxlanId": 70, "VtepDev": "dvpabsent0", "ipam": ipam}, code: types.ErrTryAgainLater},
		{name: "state directory unwritable", keys: map[string]any{"VxlanId": 70, "VtepDev": "dvpabsent0", "ipam": ipam},
			stateDir: filepath.Join(notDir, "state"), code: types.ErrIOFailure},
		{name: "CNI version", version: "0.2.0", keys: map[string]any{"VxlanId": 70, "ipam": ipam}, code: types.ErrIncompatibleCNIVersion},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.stateDir != "" {
				t.Setenv(envStateDir, c.stateDir)
			}
			version := c.version
			if version == "" {
				version = "1.0.0"
			}
			p := map[string]any{"type": "vxlan"}
			for k, v := range c.keys {
				p[k] = v
			}
			b, err := json.Marshal(map[string]any{"cniVersion": version, "name": "dvp-errors", "plugins": []any{p}})
			if err != nil {
				t.Fatal(err)
			}
			list, err := libcni.ConfListFromBytes(b)
			if err != nil {
				t.Fatal(err)
			}
			_, err = cni.AddNetworkList(context.Background(), list, rt)
			var te *types.Error
			if !errors.As(err, &te) || te.Code != c.code {
				t.Fatalf("ADD: %#v (%v), want code %d", err, err, c.code)
			}
			t.Logf("ADD: code %d: %s", te.Code, te.Msg)
		})
	}
}
