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
		if err := checkMetricsAddr(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{":9473", "127.0.0.1", "127.0.0.1:", "localhost"} {
		err := checkMetricsAddr(bad)
		if err == nil || !strings.Contains(err.Error(), "-metrics-addr (METRICS_ADDR)") || !strings.Contains(err.Error(), "accepted: HOST:PORT") {
			t.Errorf("%q: %v, want a refusal naming the flag and what it accepts", bad, err)
		}
	}
}

// The metrics flag is off by default and set by METRICS_ADDR.
func TestMetricsFlagFromEnv(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	addr := addMetricsFlag(fs)
	if err := fs.Parse(nil); err != nil || *addr != "" {
		t.Fatalf("default %q, %v; want empty", *addr, err)
	}
	t.Setenv("METRICS_ADDR", "127.0.0.1:9473")
	if err := applyEnv(fs); err != nil || *addr != "127.0.0.1:9473" {
		t.Fatalf("after METRICS_ADDR: %q, %v", *addr, err)
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
