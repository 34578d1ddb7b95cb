package docker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/netfault"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/TrilliumIT/docker-vxlan-plugin/linuxhost"
	"github.com/TrilliumIT/docker-vxlan-plugin/rtlink"
)

var errInjected = errors.New("injected fault")

// faultInjector fails the k-th request that changes the host while it is
// armed, and records which one it failed. The background deletion of
// released links (one request by link group, at times of its own) is not
// counted; TestIntegrationReapFaultRetried fails it.
type faultInjector struct {
	k, count int
	armed    bool
	failed   string // "op link" of the failed request; empty if none was reached
}

func (f *faultInjector) intercept(r netfault.Request) error {
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
func faultyDriver(t *testing.T, ns *testns.NS, f *faultInjector) (*Driver, *stateStore) {
	t.Helper()
	store, err := openStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return interceptedDriver(t, ns, f.intercept, store), store
}

// interceptedDriver returns a driver on a LinuxHost whose connection into
// ns goes through intercept, with store (nil for none).
func interceptedDriver(t *testing.T, ns *testns.NS, intercept netfault.Interceptor, store *stateStore) *Driver {
	t.Helper()
	d, err := NewDriver(Config{Scope: fabric.ScopeLocal, VTEPDevice: "ul0", Host: linuxhost.New(ns.DialFaulty(intercept)), store: store})
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
			_, ns := liveDriver(t, fabric.ScopeLocal)
			baseline := ns.Snapshot()
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
					if got := ns.Snapshot(); got != baseline {
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
				afterNet := ns.Snapshot()
				_, err = d.CreateEndpoint(ctx, &CreateEndpointRequest{NetworkID: id, EndpointID: "efa017fa017fa017", Interface: &EndpointInterface{Address: "198.19.4.50/24"}})
				f.armed = false // the deletes below are not under test
				if failed := f.failed; failed != "" {
					// The fault hit endpoint creation.
					epSteps = k - netSteps
					if err == nil || !strings.Contains(err.Error(), failed) {
						t.Fatalf("endpoint step %d (%s): error %v does not name it", k-netSteps, failed, err)
					}
					if got := ns.Snapshot(); got != afterNet {
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
				if got := ns.Snapshot(); got != baseline {
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
	_, ns := liveDriver(t, fabric.ScopeLocal)
	baseline := ns.Snapshot()
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
		if got := ns.Snapshot(); got != baseline {
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
	if err := d.cfg.Host.(*linuxhost.Host).Drain(ctx); err != nil {
		t.Fatal(err)
	}
}
