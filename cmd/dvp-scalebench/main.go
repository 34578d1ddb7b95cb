// Command dvp-scalebench measures docker-vxlan-plugin with many networks on
// one host, as root: for each count of networks it runs the plugin binary in
// a network namespace of its own, calls it over its socket as dockerd does,
// and prints the per-container cost, the network calls, the teardown, the
// plugin's memory and its restart time as a table.
//
//	go run ./cmd/dvp-scalebench -networks 1,1000,4096 -ipv6off 1000
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/scalebench"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "dvp-scalebench:", err)
		os.Exit(1)
	}
}

func run() error {
	networks := flag.String("networks", "1,1000,4096", "comma-separated counts of networks to measure with IPv6 on")
	ipv6off := flag.String("ipv6off", "1000", "comma-separated counts of networks to measure with IPv6 off in the namespace (empty for none)")
	containers := flag.Int("containers", 200, "container start and stop cycles timed per count")
	settle := flag.Duration("settle", 5*time.Second, "wait after making the networks, before timing")
	plugin := flag.String("plugin", "", "plugin binary (default: built from this module)")
	dualStack := flag.Bool(
		"dualstack",
		false,
		"give every network an IPv6 pool too, so that every bridge holds an IPv6 gateway (the kernel's IPv6 cost then grows with the networks)",
	)
	verbose := flag.Bool("v", false, "print progress")
	maxRatio := flag.Float64(
		"max-ratio",
		0,
		"if set, fail unless the container p50 and the mean CreateNetwork with the most networks are at most this many "+
			"times those with the fewest, and no link is left (what CI checks)",
	)
	flag.Parse()
	if os.Geteuid() != 0 {
		return errors.New("needs root: it makes a network namespace and links")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *plugin == "" {
		dir, err := os.MkdirTemp("", "dvp-scalebench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		*plugin = filepath.Join(dir, "docker-vxlan-plugin")
		build := exec.Command("go", "build", "-o", *plugin, "github.com/TrilliumIT/docker-vxlan-plugin/cmd/docker-vxlan-plugin")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building the plugin: %w", err)
		}
	}
	type runSpec struct {
		n    int
		ipv6 bool
	}
	var runs []runSpec
	for _, list := range []struct {
		s    string
		ipv6 bool
	}{{*networks, true}, {*ipv6off, false}} {
		for _, f := range strings.Split(list.s, ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			n, err := strconv.Atoi(f)
			if err != nil || n < 1 {
				return fmt.Errorf("network count %q: want a positive number", f)
			}
			runs = append(runs, runSpec{n, list.ipv6})
		}
	}
	var results []*scalebench.Result
	for _, r := range runs {
		cfg := scalebench.Config{
			Plugin:     *plugin,
			Networks:   r.n,
			IPv6:       r.ipv6,
			DualStack:  *dualStack && r.ipv6,
			Containers: *containers,
			Settle:     *settle,
		}
		if *verbose {
			cfg.Log = os.Stderr
		}
		res, err := scalebench.Run(ctx, cfg)
		if err != nil {
			return fmt.Errorf("%d networks: %w", r.n, err)
		}
		results = append(results, res)
	}
	if err := print(results); err != nil {
		return err
	}
	if *maxRatio > 0 {
		return checkFlat(results, *maxRatio)
	}
	return nil
}

// checkFlat compares the run with the most networks with the one with the
// fewest (IPv6 on in both).
func checkFlat(results []*scalebench.Result, maxRatio float64) error {
	var lo, hi *scalebench.Result
	for _, r := range results {
		if r.LinksLeft != 0 {
			return fmt.Errorf("%d networks: %d links left after the teardown", r.Networks, r.LinksLeft)
		}
		if !r.IPv6 {
			continue
		}
		if lo == nil || r.Networks < lo.Networks {
			lo = r
		}
		if hi == nil || r.Networks > hi.Networks {
			hi = r
		}
	}
	if lo == nil || lo == hi {
		return errors.New("-max-ratio needs two counts of networks with IPv6 on")
	}
	var errs []error
	for _, m := range []struct {
		what   string
		lo, hi time.Duration
	}{
		{"container start+stop p50", lo.ContainerP50, hi.ContainerP50},
		{"CreateNetwork mean", lo.CreateNetwork, hi.CreateNetwork},
	} {
		ratio := float64(m.hi) / float64(m.lo)
		fmt.Printf("%s: %.2f× with %d networks against %d (limit %.2f×)\n", m.what, ratio, hi.Networks, lo.Networks, maxRatio)
		if ratio > maxRatio {
			errs = append(
				errs,
				fmt.Errorf("%s grows %.2f× from %d to %d networks, more than %.2f×", m.what, ratio, lo.Networks, hi.Networks, maxRatio),
			)
		}
	}
	return errors.Join(errs...)
}

func print(results []*scalebench.Result) error {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := "networks on the host\t"
	for _, r := range results {
		header += strconv.Itoa(r.Networks)
		switch {
		case !r.IPv6:
			header += " (IPv6 off)"
		case r.DualStack:
			header += " (dual stack)"
		}
		header += "\t"
	}
	fmt.Fprintln(w, header)
	rows := []struct {
		name string
		f    func(*scalebench.Result) string
	}{
		{"container start+stop, p50", func(r *scalebench.Result) string { return ms(r.ContainerP50) }},
		{"container start+stop, p99", func(r *scalebench.Result) string { return ms(r.ContainerP99) }},
		{"CreateNetwork, mean", func(r *scalebench.Result) string { return ms(r.CreateNetwork) }},
		{"DeleteNetwork, mean", func(r *scalebench.Result) string { return ms(r.DeleteNetwork) }},
		{"all networks torn down", func(r *scalebench.Result) string { return r.Teardown.Round(time.Millisecond).String() }},
		{"container start+stop meanwhile, p50", func(r *scalebench.Result) string { return duringTeardown(r, r.TeardownContainerP50) }},
		{"container start+stop meanwhile, max", func(r *scalebench.Result) string { return duringTeardown(r, r.TeardownContainerMax) }},
		{"links left after teardown", func(r *scalebench.Result) string { return strconv.Itoa(r.LinksLeft) }},
		{"plugin RSS", func(r *scalebench.Result) string { return fmt.Sprintf("%.1f MB", float64(r.RSS)/1e6) }},
		{"restart until the socket answers", func(r *scalebench.Result) string { return ms(r.RestartToAnswer) }},
	}
	for _, row := range rows {
		line := row.name + "\t"
		for _, r := range results {
			line += row.f(r) + "\t"
		}
		fmt.Fprintln(w, line)
	}
	return w.Flush()
}

// duringTeardown shows a figure of the container cycles timed during the
// teardown, "-" for a run with one network, where none runs.
func duringTeardown(r *scalebench.Result, d time.Duration) string {
	if r.TeardownContainers == 0 {
		return "-"
	}
	return ms(d)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
