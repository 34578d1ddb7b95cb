package plugin

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// FuzzParseOptions: the option parser never panics, and every refusal is an
// OptionError naming an option.
func FuzzParseOptions(f *testing.F) {
	f.Add("VxlanId", "42", "VtepDev", "eth0, eth1")
	f.Add("vxlanid", "0x2a", "PortLow", "9")
	f.Add("parent", "bond0,  eth0,  eth1,", "macvlan_mode", "bridge")
	f.Add("Age", "10", "NoAge", "true")
	f.Add("Peers", "198.18.0.1,fd00::1", "Group", "239.1.1.1")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		spec, err := ParseOptions(map[string]string{k1: v1, k2: v2})
		if err != nil {
			var oe *OptionError
			if !errors.As(err, &oe) || oe.Problem == "" || !strings.HasPrefix(err.Error(), "option "+quoteOddName(oe.Option)) || quoteOddName(oe.Option) == "" {
				t.Fatalf("refusal without an option named: %v", err)
			}
			return
		}
		if spec.Kind == "" || (spec.Kind != KindParent && spec.VXLAN.VNI > 1<<24-1) {
			t.Fatalf("accepted %+v", spec)
		}
	})
}

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
		d, err := NewDriver(Config{Scope: ScopeLocal, Host: newFakeHost()})
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

// FuzzParseParentFile: the parent-file parser never panics, every name it
// returns is a valid interface name, and every refusal is built from the
// file's name, a line number and one of the fixed problems: no byte of the
// content can reach the error, whatever the content is.
func FuzzParseParentFile(f *testing.F) {
	for _, s := range []string{
		"[macvlan]\nparent = \"eth1\"\n", "[macvlan]\nparent = \"bond0, eth1,\"\n", "[macvlan]\nparent = [\"bond0\", \"eth0.30\"]\n",
		"eth0.30\n", "\n# comment\n  eth2 \n", "root:*:20228:0:99999:7:::\n", "[macvlan]\nparent = [\"eth1\", 5]\n",
		"[macvlan\nparent = \"" + secret + "\"\n", "macvlan = 1\n", "[macvlan]\nparent = \"\xff\"\n", secret + " = [[[[\n",
	} {
		f.Add([]byte(s))
	}
	const name = "fuzz.toml"
	lineRE := regexp.MustCompile(`^line [1-9][0-9]*: `)
	f.Fuzz(func(t *testing.T, content []byte) {
		names, err := parseParentFile(name, content)
		if err == nil {
			if len(names) == 0 {
				t.Fatal("no error and no name")
			}
			for _, n := range names {
				if checkIfName(n) != nil {
					t.Fatalf("accepted %q", n)
				}
			}
			return
		}
		var oe *OptionError
		if !errors.As(err, &oe) || oe.Option != "parent-file" || oe.Value != name || oe.Accepted != parentFileContent {
			t.Fatalf("not the parent-file refusal: %#v", err)
		}
		// The error's text is exactly that of its fields, and its problem,
		// less a line number, is one of the fixed ones.
		if err.Error() != (&OptionError{Option: oe.Option, Value: name, Problem: oe.Problem, Accepted: parentFileContent}).Error() {
			t.Fatalf("text beyond the fields: %q", err)
		}
		if problem := lineRE.ReplaceAllString(oe.Problem, ""); !slices.Contains(parentFileProblems, problem) {
			t.Fatalf("problem %q is not one of the fixed problems", oe.Problem)
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
