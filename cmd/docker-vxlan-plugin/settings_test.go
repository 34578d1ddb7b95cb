package main

import (
	"flag"
	"fmt"
	"strings"
	"testing"
)

// The legacy daemon's settings arrive as DVP_* environment variables, a
// managed plugin's under its settings' names: each sets its flag unless the
// command line did, a variable without the prefix is not read by the
// legacy daemon, and a bad value names both the variable and the flag.
func TestApplyEnv(t *testing.T) {
	for _, managed := range []bool{false, true} {
		env := func(name string) string {
			s, ok := settingOf(name)
			if !ok {
				t.Fatalf("no setting %s", name)
			}
			if managed {
				return s.Managed
			}
			return s.Env
		}
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		scope := fs.String("scope", "local", "")
		vtep := fs.String("vtepdev", "", "")
		debug := fs.Bool("d", false, "")
		sw := addSwarmFlags(fs)
		t.Setenv(env("scope"), "global")
		t.Setenv(env("vtepdev"), "eth1")
		t.Setenv(env("d"), "true")
		t.Setenv(env("peers"), "198.18.0.1, 198.18.0.2")
		t.Setenv(env("vni-range"), "")
		if err := fs.Parse([]string{"-vtepdev", "eth0"}); err != nil {
			t.Fatal(err)
		}
		if err := applyEnv(fs, managed); err != nil {
			t.Fatal(err)
		}
		peers, vnis, err := sw.config(managed)
		if err != nil {
			t.Fatal(err)
		}
		if *scope != "global" || *vtep != "eth0" || !*debug || fmt.Sprint(peers) != "[198.18.0.1 198.18.0.2]" || vnis.String() != "1000-3999" {
			t.Fatalf("managed %v: scope %s vtepdev %s debug %v peers %v vnis %v", managed, *scope, *vtep, *debug, peers, vnis)
		}

		t.Setenv(env("d"), "sometimes")
		fs = flag.NewFlagSet("t", flag.ContinueOnError)
		fs.Bool("d", false, "")
		if err := applyEnv(fs, managed); err == nil || !strings.Contains(err.Error(), env("d")+"=sometimes (flag -d)") {
			t.Fatalf("managed %v, bad debug: %v", managed, err)
		}
		t.Setenv(env("d"), "")
		for _, name := range []string{"peers", "vni-range"} {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			sw := addSwarmFlags(fs)
			t.Setenv(env(name), "9-1,x")
			if err := applyEnv(fs, managed); err != nil {
				t.Fatal(err)
			}
			says := fmt.Sprintf("-%s (%s)", name, env(name))
			if _, _, err := sw.config(managed); err == nil || !strings.Contains(err.Error(), says) || !strings.Contains(err.Error(), "accepted: ") {
				t.Fatalf("%s: %v", env(name), err)
			}
			t.Setenv(env(name), "")
		}
	}

	// An operator's shell variable without the prefix changes nothing.
	for _, s := range settings {
		if s.Env != "" {
			t.Setenv(s.Env, "")
		}
	}
	t.Setenv("DEBUG", "yes")
	t.Setenv("SCOPE", "bogus")
	d := newDaemonFlags(&strings.Builder{})
	if err := d.fs.Parse([]string{"-socket", "/nonexistent/x.sock"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := d.config()
	if err != nil || cfg.driver.Scope != "local" {
		t.Fatalf("DEBUG=yes SCOPE=bogus in the environment: %v, scope %q", err, cfg.driver.Scope)
	}
}

// Every flag of the daemon has exactly one row in the settings table, and
// every row names a flag; environment variables carry the prefix.
func TestSettingsTableCoversFlags(t *testing.T) {
	d := newDaemonFlags(&strings.Builder{})
	rows := map[string]int{}
	for _, s := range settings {
		rows[s.Flag]++
		if d.fs.Lookup(s.Flag) == nil {
			t.Errorf("settings row %q names no flag", s.Flag)
		}
		if s.Env != "" && !strings.HasPrefix(s.Env, envPrefix) {
			t.Errorf("-%s: environment variable %s lacks the prefix %s", s.Flag, s.Env, envPrefix)
		}
	}
	d.fs.VisitAll(func(f *flag.Flag) {
		if rows[f.Name] != 1 {
			t.Errorf("flag -%s has %d rows in settings, want 1", f.Name, rows[f.Name])
		}
	})
}
