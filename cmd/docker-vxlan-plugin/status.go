package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/docker"
	"github.com/TrilliumIT/docker-vxlan-plugin/ipam"
	"github.com/TrilliumIT/docker-vxlan-plugin/linuxhost"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

// Exit codes of the status command.
const (
	statusClean = 0 // everything as the state says
	statusDrift = 1 // something differs; the report names it
	statusError = 2 // no report: bad flags, or neither plugin nor store could be read
	// statusNoPlugin: no plugin answered on the socket; the report, if
	// any, is the state store's, read by status itself.
	statusNoPlugin = 3
)

// runStatus is `docker-vxlan-plugin status`: it asks the running plugin
// over its socket (the plugin-private call docker.StatusCall) and, when no
// plugin answers, reads the state store itself (free then: the running
// plugin holds it locked) and checks the kernel from this process. It
// prints a table, or JSON with -json, and returns the exit code.
func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("docker-vxlan-plugin status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(
			fs.Output(),
			"Usage: docker-vxlan-plugin status [flags]\n\nNetworks, endpoints and swarm nodes the plugin holds, each "+
				"checked against the kernel.\nExit code 0: as the state says; 1: drift (named in the report); 2: no "+
				"report; 3: no plugin answered on the socket (the report, if any, is read from the state directory).\nFlags:\n",
		)
		fs.PrintDefaults()
	}
	asJSON := fs.Bool("json", false, "print the report as JSON (docker.StatusReport) instead of a table")
	name := fs.String("name", "vxlan", "driver name; the socket is /run/docker/plugins/NAME.sock")
	socket := fs.String("socket", "", "the plugin's socket (default /run/docker/plugins/NAME.sock)")
	stateDir := fs.String("state-dir", "/var/lib/docker-vxlan-plugin", "the plugin's state directory, read when no plugin answers")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the plugin's answer before reading the store instead")
	vtepFilter := fs.Bool("vtep-filter", true, "the plugin's -vtep-filter, when no plugin answers: which networks the store's reading expects filtered")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return statusClean
		}
		return statusError
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "docker-vxlan-plugin status: unexpected argument %q; it takes only flags\n", fs.Arg(0))
		fs.Usage()
		return statusError
	}
	if *socket == "" {
		*socket = filepath.Join("/run/docker/plugins", *name+".sock")
	}
	code := statusClean
	rep, err := askPlugin(*socket, *timeout)
	if err != nil {
		// Monitoring must not stay green while the host has no plugin: the
		// store's report is printed, but the exit code says no plugin runs.
		code = statusNoPlugin
		var serr error
		rep, serr = statusFromStore(*stateDir, *vtepFilter)
		switch _, sterr := os.Stat(filepath.Join(*stateDir, docker.StateFileName)); {
		case serr != nil:
			fmt.Fprintf(stderr, "docker-vxlan-plugin status: no plugin answered on %s (%v), and the state directory %s could not be read: %v\n",
				*socket, err, *stateDir, serr)
			return statusError
		case sterr != nil:
			fmt.Fprintf(stderr, "docker-vxlan-plugin status: no plugin answered on %s (%v), and the state directory %s holds no state store "+
				"(%s): is the plugin running, and is -state-dir its state directory?\n", *socket, err, *stateDir, docker.StateFileName)
		default:
			fmt.Fprintf(stderr, "docker-vxlan-plugin status: no plugin answered on %s (%v); the report is read from the state store in %s\n",
				*socket, err, *stateDir)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(stderr, "docker-vxlan-plugin status:", err)
			return statusError
		}
	} else {
		writeStatusTable(stdout, rep)
	}
	if code == statusClean && rep.Drifted() {
		code = statusDrift
	}
	return code
}

// askPlugin makes the plugin-private status call on the plugin's socket.
func askPlugin(socket string, timeout time.Duration) (*docker.StatusReport, error) {
	client := &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}}
	resp, err := client.Post("http://plugin/"+docker.StatusCall, docker.MediaType, bytes.NewReader(nil))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s: %s", docker.StatusCall, resp.Status, strings.TrimSpace(string(b)))
	}
	var answer struct {
		docker.StatusReport
		Err string
	}
	if err := json.Unmarshal(b, &answer); err != nil {
		return nil, fmt.Errorf("%s: reading the answer: %w", docker.StatusCall, err)
	}
	if answer.Err != "" {
		return nil, fmt.Errorf("%s: %s", docker.StatusCall, answer.Err)
	}
	return &answer.StatusReport, nil
}

// statusFromStore reads the state store of dir, with no plugin running,
// and checks it against the kernel from this process (docker.ReadStatus).
func statusFromStore(dir string, vtepFilter bool) (*docker.StatusReport, error) {
	conn, err := rtlink.Dial()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	host := linuxhost.New(conn, linuxhost.WithVTEPFilter(vtepFilter))
	defer host.Close()
	return docker.ReadStatus(context.Background(), dir, host)
}

// writeStatusTable prints the report for a person: one row per checked
// item, "ok" or what drifted, then a summary line.
func writeStatusTable(w io.Writer, rep *docker.StatusReport) {
	source := "the running plugin"
	if rep.Source == "store" {
		source = "the state store in " + rep.StateDir + " (no plugin answered)"
	}
	fmt.Fprintf(w, "read from %s\n", source)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NETWORK\tKIND\tVNI\tITEM\tNAME\tSTATE")
	endpoints := 0
	for _, n := range rep.Networks {
		vni := "-"
		if n.VNI != 0 {
			vni = fmt.Sprint(n.VNI)
		}
		first := true
		row := func(it linuxhost.ItemStatus, item, name string) {
			id, kind, v := "", "", ""
			if first {
				id, kind, v = shortNetworkID(n.ID), string(n.Kind), vni
				first = false
			}
			state := "ok"
			if len(it.Drift) > 0 {
				state = "DRIFT: " + strings.Join(it.Drift, "; ")
			} else if it.Note != "" {
				state = "ok (" + it.Note + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", id, kind, v, item, name, state)
		}
		for _, it := range n.Links {
			row(it, it.Role, it.Name)
		}
		if f := n.Filter; f != nil {
			row(linuxhost.ItemStatus{Drift: f.Drift, Note: filterNote(f)}, linuxhost.FilterRole, allowedText(f))
		}
		for _, it := range n.Peers {
			row(it, it.Role, it.Name)
		}
		for _, it := range n.Endpoints {
			row(it, "endpoint", shortNetworkID(it.Name)+" ("+it.Role+")")
			endpoints++
		}
	}
	tw.Flush()
	if len(rep.Nodes) > 0 {
		var nodes []string
		for _, n := range rep.Nodes {
			s := n.Address
			if n.Self {
				s += " (self)"
			}
			nodes = append(nodes, s)
		}
		fmt.Fprintf(w, "swarm nodes: %s\n", strings.Join(nodes, ", "))
	}
	if len(rep.Members) > 0 {
		var members []string
		for _, m := range rep.Members {
			s := m.Advertise + " (data path " + m.DataPath + ")"
			if m.Departed {
				s += " departed"
			}
			members = append(members, s)
		}
		fmt.Fprintf(w, "membership: %s\n", strings.Join(members, ", "))
	}
	for _, p := range rep.Pools {
		host := ""
		for _, l := range p.Leases {
			if l.Use == ipam.UseHost {
				host += ", host address " + l.Addr.String()
			}
		}
		fmt.Fprintf(w, "address pool %s: %d leased, %d ready, %d conflicts%s\n", p.ID, len(p.Leases), p.Ready, len(p.Conflicts), host)
		for _, c := range p.Conflicts {
			fmt.Fprintf(w, "  conflict: %s handed out here to %s is answered for by %s\n", c.Addr, c.Ours, c.Theirs)
		}
	}
	fmt.Fprintf(w, "%d networks, %d endpoints, %d swarm nodes; %d drifted\n", len(rep.Networks), endpoints, len(rep.Nodes), rep.DriftCount())
}

// shortNetworkID is the first 12 characters of an ID, as docker shows them.
func shortNetworkID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// filterNote says what a network's VTEP filter does.
func filterNote(f *linuxhost.FilterStatus) string {
	switch f.State {
	case linuxhost.FilterOn:
		return fmt.Sprintf("filtered, %d packets dropped", f.Dropped.Packets)
	case linuxhost.FilterOff:
		return "off: every source admitted"
	}
	return "unfiltered: every source admitted: " + f.Note
}

// allowedText lists a VTEP filter's allow-list.
func allowedText(f *linuxhost.FilterStatus) string {
	if f.State != linuxhost.FilterOn {
		return "-"
	}
	if len(f.Allowed) == 0 {
		return "allow none"
	}
	parts := make([]string, len(f.Allowed))
	for i, p := range f.Allowed {
		parts[i] = p.String()
		if p.IsSingleIP() {
			parts[i] = p.Addr().String()
		}
	}
	return "allow " + strings.Join(parts, ",")
}
