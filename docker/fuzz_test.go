package docker

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
)

var fuzzCalls = []string{
	"Plugin.Activate", "NetworkDriver.GetCapabilities", "NetworkDriver.CreateNetwork", "NetworkDriver.AllocateNetwork",
	"NetworkDriver.DeleteNetwork", "NetworkDriver.FreeNetwork", "NetworkDriver.CreateEndpoint", "NetworkDriver.EndpointOperInfo",
	"NetworkDriver.DeleteEndpoint", "NetworkDriver.Join", "NetworkDriver.Leave", "NetworkDriver.DiscoverNew",
	"NetworkDriver.DiscoverDelete", "NetworkDriver.ProgramExternalConnectivity", "NetworkDriver.RevokeExternalConnectivity",
}

// FuzzHandler sends arbitrary bodies to every call of the protocol, after a
// network with an endpoint exists: no panic, and every answer is JSON.
func FuzzHandler(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*", "*.json"))
	more, _ := filepath.Glob(filepath.Join("testdata", "*", "*", "*.json"))
	for _, name := range append(files, more...) {
		b, _ := os.ReadFile(name)
		for i, c := range fuzzCalls {
			if strings.HasSuffix(name, c+".json") {
				f.Add(uint8(i), b)
			}
		}
	}
	f.Add(uint8(2), []byte(`{"NetworkID":"x","Options":{"com.docker.network.generic":[]}}`))
	f.Add(uint8(11), []byte(`{"DiscoveryType":1,"DiscoveryData":"nope"}`))
	f.Fuzz(func(t *testing.T, call uint8, body []byte) {
		d, err := NewDriver(Config{Scope: fabric.ScopeLocal, Host: newFakeHost()})
		if err != nil {
			t.Fatal(err)
		}
		h := NewHandler(d)
		do := func(call string, body []byte) *httptest.ResponseRecorder {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/"+call, strings.NewReader(string(body))))
			return rec
		}
		do("NetworkDriver.CreateNetwork", []byte(`{"NetworkID":"n1","Options":{"com.docker.network.generic":{"VxlanId":"5"}},"IPv4Data":[{"Gateway":"198.19.5.1/24"}]}`))
		do("NetworkDriver.CreateEndpoint", []byte(`{"NetworkID":"n1","EndpointID":"e1aaaaaaaaaaaa","Interface":{"Address":"198.19.5.2/24"}}`))
		rec := do(fuzzCalls[int(call)%len(fuzzCalls)], body)
		var v map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			t.Fatalf("answer is not JSON: %q", rec.Body.String())
		}
		if e, ok := v["Err"].(string); ok && !strings.HasPrefix(e, "vxlan: ") {
			t.Fatalf("error without the driver's name: %q", e)
		}
	})
}

// jsonDepth is the deepest nesting of objects and arrays in a valid JSON
// text, read with encoding/json's own tokenizer.
func jsonDepth(b []byte) int {
	dec := json.NewDecoder(bytes.NewReader(b))
	depth, deepest := 0, 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return deepest
		}
		switch tok {
		case json.Delim('['), json.Delim('{'):
			depth++
			deepest = max(deepest, depth)
		case json.Delim(']'), json.Delim('}'):
			depth--
		}
	}
}

// FuzzRequestBody: the request decoder never panics; it refuses a body
// nested deeper than MaxRequestDepth and accepts one that is not (its depth
// scan agrees with encoding/json's tokenizer); every refusal is a bad
// request; and an accepted request's IDs are valid.
func FuzzRequestBody(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*", "*.json"))
	more, _ := filepath.Glob(filepath.Join("testdata", "*", "*", "*.json"))
	for _, name := range append(files, more...) {
		b, _ := os.ReadFile(name)
		f.Add(b)
	}
	f.Add([]byte(strings.Repeat("[", MaxRequestDepth) + strings.Repeat("]", MaxRequestDepth)))
	f.Add([]byte(`{"NetworkID":"n1","Options":{"a":"[[[[\"\\\\[{"}}` + strings.Repeat(" ", 3)))
	f.Add([]byte(`{"NetworkID":"../x","EndpointID":"E1"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var req CreateEndpointRequest
		err := decode(body, &req)
		if err != nil && !errors.Is(err, errBadRequest) {
			t.Fatalf("refusal that is not a bad request: %v", err)
		}
		if json.Valid(body) {
			deep := jsonDepth(body) > MaxRequestDepth
			if deep && err == nil {
				t.Fatalf("accepted a body nested %d deep", jsonDepth(body))
			}
			if !deep && checkDepth(body, MaxRequestDepth) != nil {
				t.Fatalf("refused a body nested %d deep", jsonDepth(body))
			}
		}
		if err == nil {
			for _, id := range []string{req.NetworkID, req.EndpointID} {
				if id != "" && !validID(id) {
					t.Fatalf("accepted ID %q", id)
				}
			}
		}
	})
}
