// Command fabric builds a VXLAN fabric between N hosts on this machine with
// package vxlan and proves every host reaches every other over it.
//
// The hosts are network namespaces on an underlay bridge. Each gets a vxlan
// link and an overlay address; by default every host's FDB lists every
// other host's VTEP (unicast head-end replication, no multicast needed),
// or, with -multicast, the hosts join a multicast group instead. A UDP echo
// between every pair of hosts is the proof. Everything is removed at the
// end, also on Ctrl-C or failure.
//
//	sudo go run ./examples/fabric -n 5
//	sudo go run ./examples/fabric -n 3 -multicast -ipv6 -add -keep
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"
)

type options struct {
	hosts     int
	vni       uint32
	multicast bool
	group     string
	ipv6      bool
	keep      bool
	add       bool
	prefix    string
}

func main() {
	var o options
	var vni uint
	flag.IntVar(&o.hosts, "n", 3, "number of hosts, 2 to 250")
	flag.UintVar(&vni, "vni", 4242, "VXLAN network identifier")
	flag.BoolVar(&o.multicast, "multicast", false, "join a multicast group instead of listing every peer in the FDB")
	flag.StringVar(&o.group, "group", "", "multicast group (default 239.1.1.1, or ff05::101 with -ipv6)")
	flag.BoolVar(&o.ipv6, "ipv6", false, "IPv6 underlay")
	flag.BoolVar(&o.keep, "keep", false, "keep the fabric up for inspection until Ctrl-C")
	flag.BoolVar(&o.add, "add", false, "then add one more host to the running fabric, touching only the others' FDB")
	flag.StringVar(&o.prefix, "prefix", fmt.Sprintf("fab%d", os.Getpid()), "prefix of the namespaces' names")
	flag.Parse()
	o.vni = uint32(vni)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fabric:", err)
		os.Exit(1)
	}
}

// result is what one run measured.
type result struct {
	hosts           int
	mode, underlay  string
	ok, total       int
	setup, teardown time.Duration
	addOK, addTotal int
	addTook         time.Duration
	othersUntouched bool
}

func run(ctx context.Context, o options, out io.Writer) (err error) {
	if err := requireRoot(); err != nil {
		return err
	}
	f, res, err := newFabric(o)
	if err != nil {
		return err
	}
	start := time.Now()
	l, err := newLab(ctx, o.prefix, o.ipv6)
	if err != nil {
		return err // newLab removed what it made
	}
	r := &runner{ctx: ctx, lab: l, fabric: f}
	defer func() {
		r.stopEchoes()
		t := time.Now()
		if cerr := l.close(); cerr != nil && err == nil {
			err = cerr
		}
		res.teardown = time.Since(t)
		if err == nil {
			report(out, o, *res)
		}
	}()
	for i := 1; i <= o.hosts; i++ {
		if _, err := r.addHost(i); err != nil {
			return err
		}
	}
	res.setup = time.Since(start)
	res.ok, res.total = reachable(f.hosts, nil)
	if res.ok != res.total {
		report(out, o, *res)
		return fmt.Errorf("only %d of %d host pairs reach each other", res.ok, res.total)
	}
	if o.add {
		if err := r.addOneMore(o.hosts+1, res); err != nil {
			return err
		}
	}
	if o.keep {
		fmt.Fprintf(
			out,
			"fabric up: namespaces %s-h1 .. %s-h%d, underlay %s-ul; try `ip netns exec %s-h1 bridge fdb show dev vx0`; Ctrl-C removes it\n",
			o.prefix,
			o.prefix,
			len(f.hosts),
			o.prefix,
			o.prefix,
		)
		<-ctx.Done()
	}
	if ctx.Err() != nil && !o.keep {
		return errors.New("interrupted")
	}
	return nil
}

// newFabric checks the options and returns the fabric they describe, with
// the result's description filled in.
func newFabric(o options) (*fabric, *result, error) {
	if o.hosts < 2 || o.hosts > 250 {
		return nil, nil, fmt.Errorf("-n %d: accepted 2 to 250", o.hosts)
	}
	f := &fabric{vni: o.vni}
	res := &result{hosts: o.hosts, mode: "unicast", underlay: "IPv4"}
	if o.multicast {
		g := o.group
		if g == "" {
			g = map[bool]string{false: "239.1.1.1", true: "ff05::101"}[o.ipv6]
		}
		var err error
		if f.group, err = netip.ParseAddr(g); err != nil || !f.group.IsMulticast() || f.group.Is6() != o.ipv6 {
			return nil, nil, fmt.Errorf("-group %q: accepted a multicast address of the underlay's family", g)
		}
		res.mode = "multicast " + f.group.String()
	}
	if o.ipv6 {
		res.underlay = "IPv6"
	}
	return f, res, nil
}

// runner adds hosts to a lab and its fabric, each with an echo server.
type runner struct {
	ctx    context.Context
	lab    *lab
	fabric *fabric
	echoes []func()
}

// addHost makes host i, joins it to the fabric and starts its echo server.
func (r *runner) addHost(i int) (*host, error) {
	h, err := r.lab.addHost(r.ctx, i)
	if err != nil {
		return nil, err
	}
	if err := r.fabric.join(r.ctx, h); err != nil {
		return nil, err
	}
	stop, err := startEcho(h)
	if err != nil {
		return nil, err
	}
	r.echoes = append(r.echoes, stop)
	return h, r.ctx.Err()
}

func (r *runner) stopEchoes() {
	for _, stop := range r.echoes {
		stop()
	}
}

// addOneMore adds host i to a running fabric and checks that it reaches
// every other host and that no other host's links changed.
func (r *runner) addOneMore(i int, res *result) error {
	before, err := r.fabric.linkIndexes(r.ctx)
	if err != nil {
		return err
	}
	t := time.Now()
	h, err := r.addHost(i)
	if err != nil {
		return err
	}
	res.addTook = time.Since(t)
	after, err := r.fabric.linkIndexes(r.ctx)
	if err != nil {
		return err
	}
	res.othersUntouched = true
	for name, idx := range before {
		res.othersUntouched = res.othersUntouched && after[name] == idx
	}
	res.addOK, res.addTotal = reachable(r.fabric.hosts, map[*host]bool{h: true})
	if res.addOK != res.addTotal || !res.othersUntouched {
		return fmt.Errorf(
			"after adding %s: %d of %d pairs reach each other, other links untouched: %v",
			h.Name,
			res.addOK,
			res.addTotal,
			res.othersUntouched,
		)
	}
	return nil
}

func report(out io.Writer, o options, r result) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "hosts\tVNI\tmode\tunderlay\tpairs reachable\tsetup\tteardown")
	fmt.Fprintf(
		w,
		"%d\t%d\t%s\t%s\t%d/%d\t%s\t%s\n",
		r.hosts,
		o.vni,
		r.mode,
		r.underlay,
		r.ok,
		r.total,
		r.setup.Round(time.Millisecond),
		r.teardown.Round(time.Millisecond),
	)
	w.Flush()
	if o.add && r.addTotal > 0 {
		fmt.Fprintf(out, "added host %d in %s: pairs with it reachable %d/%d, other hosts' links untouched: %v\n",
			r.hosts+1, r.addTook.Round(time.Millisecond), r.addOK, r.addTotal, r.othersUntouched)
	}
}
