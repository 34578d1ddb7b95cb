package main

import (
	"flag"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

func TestCheckMetricsAddr(t *testing.T) {
	for _, ok := range []string{"", "127.0.0.1:9473", "[::1]:9473", "0.0.0.0:9473", "198.18.0.1:1"} {
		if err := checkMetricsAddr(ok, "DVP_METRICS_ADDR"); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{":9473", "127.0.0.1", "127.0.0.1:", "localhost"} {
		err := checkMetricsAddr(bad, "DVP_METRICS_ADDR")
		if err == nil || !strings.Contains(err.Error(), "-metrics-addr (DVP_METRICS_ADDR)") || !strings.Contains(err.Error(), "accepted: HOST:PORT") {
			t.Errorf("%q: %v, want a refusal naming the flag and what it accepts", bad, err)
		}
	}
}

// The metrics flag is off by default and set by DVP_METRICS_ADDR, or by
// the managed plugin's METRICS_ADDR setting.
func TestMetricsFlagFromEnv(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	addr := addMetricsFlag(fs)
	if err := fs.Parse(nil); err != nil || *addr != "" {
		t.Fatalf("default %q, %v; want empty", *addr, err)
	}
	t.Setenv("DVP_METRICS_ADDR", "127.0.0.1:9473")
	if err := applyEnv(fs, false); err != nil || *addr != "127.0.0.1:9473" {
		t.Fatalf("after DVP_METRICS_ADDR: %q, %v", *addr, err)
	}
	t.Setenv("METRICS_ADDR", "127.0.0.1:9474")
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	addr = addMetricsFlag(fs)
	if err := applyEnv(fs, true); err != nil || *addr != "127.0.0.1:9474" {
		t.Fatalf("managed, after METRICS_ADDR: %q, %v", *addr, err)
	}
}

// serveMetrics with no address serves nothing; an address it cannot bind
// is an error naming the flag.
func TestServeMetricsBindError(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	stop, err := serveMetrics("", http.NotFoundHandler(), log)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if _, err := serveMetrics("198.19.255.254:9473", http.NotFoundHandler(), log); err == nil || !strings.Contains(err.Error(), "-metrics-addr 198.19.255.254:9473") {
		t.Fatalf("binding an address the host does not have: %v", err)
	}
}
