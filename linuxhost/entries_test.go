package linuxhost

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The plugin writes no FDB or neighbour entry except the peers of a
// flood-and-learn network (vxlan's AddPeer, which appends next to what is
// there) and the bridge's local entry for an anycast gateway's MAC, which
// no host has but as its own gateway (gateway.go), so the entries a
// routing daemon installs on an EVPN network (which takes no Peers) are
// never deleted or rewritten: every call of a neighbour or FDB write in the
// source of the core and the front ends is listed here.
func TestWritesNoDaemonEntries(t *testing.T) {
	writes := map[string]bool{
		"AddNeigh": true, "AppendNeigh": true, "ReplaceNeigh": true, "DeleteNeigh": true,
		"AddPeer": true, "RemovePeer": true, "AddStaticMAC": true, "RemoveStaticMAC": true,
		"AddProxyEntry": true, "DeleteProxyEntry": true,
	}
	var files []string
	for _, dir := range []string{".", "../docker", "../cni", "../fabric"} {
		names, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, names...)
	}
	var got []string
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok {
				if sel, ok := call.Fun.(*ast.SelectorExpr); ok && writes[sel.Sel.Name] {
					got = append(got, name+": "+sel.Sel.Name)
				}
			}
			return true
		})
	}
	want := []string{"gateway.go: ReplaceNeigh", "gateway.go: DeleteNeigh", "network.go: AddPeer", "peers.go: AddPeer", "peers.go: RemovePeer"}
	if !slices.Equal(got, want) {
		t.Fatalf("FDB and neighbour writes in the front ends and the core: %v, want %v", got, want)
	}
}
