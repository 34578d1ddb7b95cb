package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

var errInjected = errors.New("injected fault")

// hostSnapshot is what a namespace holds that an attempt could leave
// behind: its links, its addresses other than link-local ones, and its FDB
// entries, as sorted text.
func hostSnapshot(t *testing.T, ns *testns.NS) string {
	t.Helper()
	var links []struct {
		Name  string `json:"ifname"`
		Addrs []struct {
			Local     string `json:"local"`
			Prefixlen int    `json:"prefixlen"`
			Scope     string `json:"scope"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal([]byte(ns.IP("-j", "addr")), &links); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range links {
		lines = append(lines, "link "+l.Name)
		for _, a := range l.Addrs {
			if a.Scope != "link" {
				lines = append(lines, fmt.Sprintf("addr %s %s/%d", l.Name, a.Local, a.Prefixlen))
			}
		}
	}
	fdb, err := ns.Exec("bridge", "fdb", "show")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(fdb), "\n") {
		if l != "" && !strings.HasPrefix(l, "33:33:") && !strings.HasPrefix(l, "01:00:5e:") {
			lines = append(lines, "fdb "+l)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// faultInjector fails the k-th request that changes the host while it is
// armed, and records which one it failed. The background deletion of
// released links (one request by link group, at times of its own) is not
// counted; TestIntegrationReapFaultRetried fails it.
type faultInjector struct {
	k, count int
	armed    bool
	failed   string // "op link" of the failed request; empty if none was reached
}

func (f *faultInjector) intercept(r rtlink.Request) error {
	if r.Op == rtlink.OpDeleteLinkGroup {
		return nil // from the background: not a step of the call under test
	}
	if f.armed && r.Changes {
		if f.count++; f.count == f.k {
			f.failed = r.Op + " " + r.Link
			return errInjected
		}
	}
	return nil
}

// faultyDriver returns a driver on a LinuxHost whose connection into ns
// goes through f, with a state store of its own.
func faultyDriver(t *testing.T, ns *testns.NS, f *faultInjector) (*Driver, *Store) {
	t.Helper()
	store, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return interceptedDriver(t, ns, f.intercept, store), store
}

// interceptedDriver returns a driver on a LinuxHost whose connection into
// ns goes through intercept, with store (nil for none).
func interceptedDriver(t *testing.T, ns *testns.NS, intercept rtlink.Interceptor, store *Store) *Driver {
	t.Helper()
	conn, err := rtlink.Dial(rtlink.WithNetNSPath(ns.Path()), rtlink.WithInterceptor(intercept))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	d, err := NewDriver(Config{Scope: ScopeLocal, VTEPDevice: "ul0", Host: NewLinuxHost(conn), Store: store})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestIntegrationFaultAtEveryStep(t *testing.T) {
	scenarios := []struct {
		name string
		opts map[string]any
	}{
		{"BridgeMode", map[string]any{"VxlanId": "40", "Peers": "198.18.4.2,198.18.4.3"}},
		{"MacvlanMode", map[string]any{"VxlanId": "41", "mode": "macvlan", "Peers": "198.18.4.2"}},
		{"Isolated", map[string]any{}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			ctx := t.Context()
			_, ns := liveDriver(t, ScopeLocal)
			baseline := hostSnapshot(t, ns)
			id := "fa017fa017fa017f"
			var netSteps, epSteps int
			for k := 1; ; k++ {
				f := &faultInjector{k: k, armed: true}
				d, store := faultyDriver(t, ns, f)

				err := createNet(ctx, d, id, sc.opts)
				if failed := f.failed; failed != "" {
					// The fault hit network creation.
					netSteps = k
					if err == nil || !strings.Contains(err.Error(), failed) {
						t.Fatalf("step %d (%s): error %v does not name it", k, failed, err)
					}
					if got := hostSnapshot(t, ns); got != baseline {
						t.Fatalf("step %d (%s) left:\n%s\nwant:\n%s", k, failed, got, baseline)
					}
					if st, _ := store.Load(); len(st.Networks) != 0 || len(d.networks) != 0 {
						t.Fatalf("step %d (%s): state keeps the network", k, failed)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				afterNet := hostSnapshot(t, ns)
				_, err = d.CreateEndpoint(ctx, &CreateEndpointRequest{NetworkID: id, EndpointID: "efa017fa017fa017", Interface: &EndpointInterface{Address: "198.19.4.50/24"}})
				f.armed = false // the deletes below are not under test
				if failed := f.failed; failed != "" {
					// The fault hit endpoint creation.
					epSteps = k - netSteps
					if err == nil || !strings.Contains(err.Error(), failed) {
						t.Fatalf("endpoint step %d (%s): error %v does not name it", k-netSteps, failed, err)
					}
					if got := hostSnapshot(t, ns); got != afterNet {
						t.Fatalf("endpoint step %d (%s) left:\n%s", k-netSteps, failed, got)
					}
					if st, _ := store.Load(); len(st.Networks) != 1 || len(st.Networks[0].Endpoints) != 0 {
						t.Fatalf("endpoint step %d (%s): state keeps the endpoint", k-netSteps, failed)
					}
				} else if err != nil {
					t.Fatal(err)
				} else if err := d.DeleteEndpoint(ctx, id, "efa017fa017fa017"); err != nil {
					t.Fatal(err)
				}
				if err := d.DeleteNetwork(ctx, id); err != nil {
					t.Fatal(err)
				}
				drain(t, d)
				if got := hostSnapshot(t, ns); got != baseline {
					t.Fatalf("after delete:\n%s", got)
				}
				if f.failed == "" {
					break // no fault was reached: every step has been failed once
				}
			}
			t.Logf("%s: faults injected at %d network steps and %d endpoint steps, nothing left each time", sc.name, netSteps, epSteps)
			if netSteps < 2 || epSteps < 1 {
				t.Fatalf("too few steps covered: %d network, %d endpoint", netSteps, epSteps)
			}
		})
	}
}

// A delete that fails half way keeps the state entry, and dockerd's retry
// then removes everything: for each step of DeleteEndpoint and
// DeleteNetwork in turn, fail it, check the error names it, retry without
// fault, and check the host is back to what it was and the state empty.
func TestIntegrationDeleteFaultThenRetry(t *testing.T) {
	ctx := t.Context()
	_, ns := liveDriver(t, ScopeLocal)
	baseline := hostSnapshot(t, ns)
	id, ep := "de1e7ede1e7ede1e", "ede1e7ede1e7ede1"
	steps := 0
	for k := 1; ; k++ {
		f := &faultInjector{k: k}
		d, store := faultyDriver(t, ns, f)
		if err := createNet(ctx, d, id, map[string]any{"VxlanId": "42", "Peers": "198.18.4.2"}); err != nil {
			t.Fatal(err)
		}
		if _, err := d.CreateEndpoint(ctx, &CreateEndpointRequest{NetworkID: id, EndpointID: ep, Interface: &EndpointInterface{Address: "198.19.4.60/24"}}); err != nil {
			t.Fatal(err)
		}
		f.armed = true
		errEP := d.DeleteEndpoint(ctx, id, ep)
		errNet := error(nil)
		if errEP == nil {
			errNet = d.DeleteNetwork(ctx, id)
		}
		f.armed = false
		failed := f.failed
		if failed == "" {
			if errEP != nil || errNet != nil {
				t.Fatal(errEP, errNet)
			}
			break
		}
		steps = k
		got := errors.Join(errEP, errNet)
		if got == nil || !strings.Contains(got.Error(), failed) {
			t.Fatalf("delete step %d (%s): error %v does not name it", k, failed, got)
		}
		st, _ := store.Load()
		if len(st.Networks) != 1 || (errEP != nil && len(st.Networks[0].Endpoints) != 1) {
			t.Fatalf("delete step %d (%s): the state dropped what is not gone: %+v", k, failed, st.Networks)
		}
		// dockerd retries.
		if errEP != nil {
			if err := d.DeleteEndpoint(ctx, id, ep); err != nil {
				t.Fatalf("retry: %v", err)
			}
		}
		if err := d.DeleteNetwork(ctx, id); err != nil {
			t.Fatalf("retry: %v", err)
		}
		drain(t, d)
		if got := hostSnapshot(t, ns); got != baseline {
			t.Fatalf("delete step %d (%s), after the retry:\n%s", k, failed, got)
		}
		if st, _ := store.Load(); len(st.Networks) != 0 {
			t.Fatalf("delete step %d: state keeps %d networks after the retry", k, len(st.Networks))
		}
	}
	t.Logf("faults injected at %d delete steps; each retry left nothing", steps)
	if steps < 2 {
		t.Fatalf("only %d delete steps covered", steps)
	}
}

// drain waits until the driver's LinuxHost has deleted every link it
// released.
func drain(t *testing.T, d *Driver) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := d.cfg.Host.(*LinuxHost).Drain(ctx); err != nil {
		t.Fatal(err)
	}
}

// The background deletion of released links is retried when it fails:
// a network deleted while the kernel refuses the deletion is gone once
// the kernel accepts it again, and nothing is left.
func TestIntegrationReapFaultRetried(t *testing.T) {
	ctx := t.Context()
	_, ns := liveDriver(t, ScopeLocal)
	baseline := hostSnapshot(t, ns)
	var mu sync.Mutex
	fails := 1
	d := interceptedDriver(t, ns, func(r rtlink.Request) error {
		mu.Lock()
		defer mu.Unlock()
		if r.Op == rtlink.OpDeleteLinkGroup && fails > 0 {
			fails--
			return errInjected
		}
		return nil
	}, nil)
	id := "4ea94ea94ea94ea9"
	if err := createNet(ctx, d, id, map[string]any{"VxlanId": "43"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateEndpoint(ctx, &CreateEndpointRequest{NetworkID: id, EndpointID: "e4ea94ea94ea94ea", Interface: &EndpointInterface{Address: "198.19.4.70/24"}}); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteEndpoint(ctx, id, "e4ea94ea94ea94ea"); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteNetwork(ctx, id); err != nil {
		t.Fatal(err)
	}
	drain(t, d)
	mu.Lock()
	defer mu.Unlock()
	if fails != 0 {
		t.Fatal("the deletion was never tried")
	}
	if got := hostSnapshot(t, ns); got != baseline {
		t.Fatalf("left after a failed and retried deletion:\n%s", got)
	}
}

// Networks deleted one after another have their bridges deleted at most
// reapBridges to a request (the kernel holds its configuration lock for
// each bridge of a request), their vxlan links and container veths with
// them, and nothing is left. Each deletion request's bridges are counted
// from the kernel's listing as the request is sent.
func TestIntegrationReapBridgesPerRequest(t *testing.T) {
	ctx := t.Context()
	_, ns := liveDriver(t, ScopeLocal)
	baseline := hostSnapshot(t, ns)
	lister := ns.Dial()
	var mu sync.Mutex
	var perRequest []int // bridges in each deletion request
	var listErr error
	d := interceptedDriver(t, ns, func(r rtlink.Request) error {
		if r.Op != rtlink.OpDeleteLinkGroup {
			return nil
		}
		links, err := lister.BriefLinks(context.Background())
		n := 0
		for _, l := range links {
			if r.Link == fmt.Sprintf("group %d", l.Group) && l.Kind == linkKindBridge {
				n++
			}
		}
		mu.Lock()
		defer mu.Unlock()
		perRequest = append(perRequest, n)
		listErr = errors.Join(listErr, err)
		return nil
	}, nil)
	const networks = 3*reapBridges + 2
	ids := make([]string, networks)
	for i := range ids {
		ids[i] = fmt.Sprintf("5b%010x5b5b", i+1)
		if err := d.CreateNetwork(ctx, &CreateNetworkRequest{NetworkID: ids[i], Options: map[string]any{optGeneric: map[string]any{"VxlanId": fmt.Sprint(500 + i)}},
			IPv4Data: []IPAMData{{Pool: fmt.Sprintf("198.19.%d.0/24", 100+i), Gateway: fmt.Sprintf("198.19.%d.1/24", 100+i)}}}); err != nil {
			t.Fatal(err)
		}
		ep := fmt.Sprintf("e%011xe5be", i+1)
		if _, err := d.CreateEndpoint(ctx, &CreateEndpointRequest{NetworkID: ids[i], EndpointID: ep, Interface: &EndpointInterface{Address: fmt.Sprintf("198.19.%d.2/24", 100+i)}}); err != nil {
			t.Fatal(err)
		}
		if err := d.DeleteEndpoint(ctx, ids[i], ep); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		if err := d.DeleteNetwork(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	drain(t, d)
	mu.Lock()
	defer mu.Unlock()
	if listErr != nil {
		t.Fatal(listErr)
	}
	total, most := 0, 0
	for _, n := range perRequest {
		total, most = total+n, max(most, n)
	}
	if total != networks || most > reapBridges || most < reapBridges/2 {
		t.Fatalf("bridges per deletion request %v: %d in all (want %d), at most %d (want %d at most, and batched)", perRequest, total, networks, most, reapBridges)
	}
	if got := hostSnapshot(t, ns); got != baseline {
		t.Fatalf("left:\n%s", got)
	}
}
