package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// addMetricsFlag registers -metrics-addr on fs.
func addMetricsFlag(fs *flag.FlagSet) *string {
	return fs.String(
		"metrics-addr",
		"",
		"serve Prometheus metrics on /metrics at this address, HOST:PORT (such as 127.0.0.1:9473; 0.0.0.0:9473 for every IPv4 address); "+
			"empty (the default) serves none",
	)
}

// checkMetricsAddr refuses an address that is not HOST:PORT with both
// given: the endpoint listens only where it is told, never on every
// address by omission.
func checkMetricsAddr(addr, env string) error {
	if addr == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf(
			"-metrics-addr (%s) %q: accepted: HOST:PORT with both given, such as 127.0.0.1:9473, [::1]:9473, or 0.0.0.0:9473 for every IPv4 address",
			env, addr,
		)
	}
	return nil
}

// serveMetrics serves h on /metrics at addr until stop is called; an empty
// addr serves nothing. The listener is bound before it returns, so an
// address in use fails the start.
func serveMetrics(addr string, h http.Handler, log *slog.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-metrics-addr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics endpoint stopped", "address", l.Addr().String(), "error", err)
		}
	}()
	log.Info("serving metrics", "address", l.Addr().String(), "path", "/metrics")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
