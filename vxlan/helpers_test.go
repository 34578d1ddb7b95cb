package vxlan_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// requireOffered asks the kernel whether it offers a vxlan link with the
// settings of cfg, by making one (named vx-probe) in c's namespace and
// deleting it again. Where the kernel refuses a setting it does not offer
// (a *vxlan.FeatureError), the test skips quoting the kernel's words, the
// feature named by the Config field; any other refusal fails the test.
func requireOffered(t *testing.T, c *vxlan.Client, cfg vxlan.Config) {
	t.Helper()
	cfg.Name = "vx-probe"
	err := c.Create(ctx, cfg)
	var fe *vxlan.FeatureError
	if errors.As(err, &fe) {
		testns.SkipMissingFeature(t, fe.Fields[0], err)
	}
	if err != nil {
		t.Fatalf("asking the kernel for %+v: %v", cfg, err)
	}
	if err := c.Delete(ctx, cfg.Name); err != nil {
		t.Fatal(err)
	}
}
