package main

import (
	"flag"
	"fmt"
	"strings"
	"testing"
)

// A managed plugin's settings arrive as environment variables: each sets
// its flag unless the command line did, and a bad value names both.
func TestApplyEnv(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	scope := fs.String("scope", "local", "")
	vtep := fs.String("vtepdev", "", "")
	debug := fs.Bool("d", false, "")
	sw := addSwarmFlags(fs)
	t.Setenv("SCOPE", "global")
	t.Setenv("VTEPDEV", "eth1")
	t.Setenv("DEBUG", "true")
	t.Setenv("PEERS", "198.18.0.1, 198.18.0.2")
	t.Setenv("VNI_RANGE", "")
	if err := fs.Parse([]string{"-vtepdev", "eth0"}); err != nil {
		t.Fatal(err)
	}
	if err := applyEnv(fs); err != nil {
		t.Fatal(err)
	}
	peers, vnis, err := sw.config()
	if err != nil {
		t.Fatal(err)
	}
	if *scope != "global" || *vtep != "eth0" || !*debug || fmt.Sprint(peers) != "[198.18.0.1 198.18.0.2]" || vnis.String() != "1000-3999" {
		t.Fatalf("scope %s vtepdev %s debug %v peers %v vnis %v", *scope, *vtep, *debug, peers, vnis)
	}

	t.Setenv("DEBUG", "sometimes")
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Bool("d", false, "")
	if err := applyEnv(fs); err == nil || !strings.Contains(err.Error(), "DEBUG=sometimes (flag -d)") {
		t.Fatalf("bad DEBUG: %v", err)
	}
	t.Setenv("DEBUG", "")
	for env, says := range map[string]string{"PEERS": "-peers (PEERS)", "VNI_RANGE": "-vni-range (VNI_RANGE)"} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		sw := addSwarmFlags(fs)
		t.Setenv(env, "9-1,x")
		if err := applyEnv(fs); err != nil {
			t.Fatal(err)
		}
		if _, _, err := sw.config(); err == nil || !strings.Contains(err.Error(), says) || !strings.Contains(err.Error(), "accepted: ") {
			t.Fatalf("%s: %v", env, err)
		}
		t.Setenv(env, "")
	}
}
