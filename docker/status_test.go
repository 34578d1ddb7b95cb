package docker

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
)

// Plugin.Status answers the networks and endpoints the driver holds, each
// checked by the host, and names what the host lacks.
func TestStatusCall(t *testing.T) {
	srv, _, host := newTestServer(t, fabric.ScopeLocal, "eth0")
	netID, epID := "n1", "e1"
	if code, body := post(t, srv, "NetworkDriver.CreateNetwork", `{"NetworkID":"`+netID+`","Options":{"com.docker.network.generic":{"VxlanId":"7"}},"IPv4Data":[{"Pool":"198.19.7.0/24","Gateway":"198.19.7.1/24"}]}`); code != http.StatusOK || body != "{}" {
		t.Fatalf("CreateNetwork: %d %s", code, body)
	}
	if code, body := post(t, srv, "NetworkDriver.CreateEndpoint", `{"NetworkID":"`+netID+`","EndpointID":"`+epID+`","Interface":{"Address":"198.19.7.2/24"}}`); code != http.StatusOK {
		t.Fatalf("CreateEndpoint: %d %s", code, body)
	}
	status := func() *StatusReport {
		t.Helper()
		code, body := post(t, srv, StatusCall, "")
		var rep StatusReport
		if err := json.Unmarshal([]byte(body), &rep); code != http.StatusOK || err != nil {
			t.Fatalf("%s: %d %s %v", StatusCall, code, body, err)
		}
		return &rep
	}
	rep := status()
	if rep.Source != "plugin" || len(rep.Networks) != 1 || rep.Networks[0].ID != netID || rep.Networks[0].VNI != 7 || len(rep.Networks[0].Endpoints) != 1 || rep.Drifted() {
		t.Fatalf("clean: %+v", rep)
	}
	host.mu.Lock()
	delete(host.endpoints, epID)
	host.mu.Unlock()
	rep = status()
	if !rep.Drifted() || rep.DriftCount() != 1 || rep.Networks[0].Endpoints[0].Name != epID || len(rep.Networks[0].Endpoints[0].Drift) != 1 {
		t.Fatalf("endpoint gone: %+v", rep)
	}
}
