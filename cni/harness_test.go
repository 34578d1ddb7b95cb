package cni

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/internal/testns"
	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
)

// debianCNIDir is where Debian's containernetworking-plugins installs the
// reference plugins (host-local, bridge, ...).
const debianCNIDir = "/usr/lib/cni"

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// pluginDir builds the plugins once per test binary, as "vxlan" and
// "vxlan-ipam" in a directory of their own, and returns the directory.
func pluginDir(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "dvp-cni-bin-")
		if buildErr != nil {
			return
		}
		// Built as docs/cni.md tells operators to: static, without symbols.
		for name, pkg := range map[string]string{"vxlan": "../cmd/vxlan-cni", IPAMPluginType: "../cmd/vxlan-ipam"} {
			cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(buildDir, name), pkg)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v: %s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

// requireCNI skips unless root with the reference plugins installed.
func requireCNI(t testing.TB) {
	t.Helper()
	testns.RequireRoot(t)
	for _, p := range []string{"host-local", "bridge"} {
		if _, err := os.Stat(filepath.Join(debianCNIDir, p)); err != nil {
			testns.Skip(t, "needs CNI's reference plugins in "+debianCNIDir+" (apt-get install containernetworking-plugins)")
		}
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		testns.Skip(t, "needs nsenter (util-linux)")
	}
}

// nsExec runs CNI plugins inside a namespace that acts as the host, with
// extra environment variables.
type nsExec struct {
	netns string
	env   []string
	version.PluginDecoder
}

func (e *nsExec) ExecPlugin(ctx context.Context, path string, stdin []byte, environ []string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "nsenter", "--net="+e.netns, path)
	cmd.Env = append(environ, e.env...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var ce types.Error
		if json.Unmarshal(stdout.Bytes(), &ce) == nil && ce.Msg != "" {
			return nil, &ce
		}
		return nil, fmt.Errorf("%s: %v: %s%s", path, err, stdout.String(), stderr.String())
	}
	return stdout.Bytes(), nil
}

func (e *nsExec) FindInPath(plugin string, paths []string) (string, error) {
	return invoke.FindInPath(plugin, paths)
}

// cniHost calls plugins through libcni in a test namespace: its own CNI
// cache, host-local data and vxlan state directories.
type cniHost struct {
	ns       *testns.NS
	cni      *libcni.CNIConfig
	exec     *nsExec
	ipamDir  string
	stateDir string
}

func newCNIHost(t testing.TB, ns *testns.NS) *cniHost {
	t.Helper()
	dir := t.TempDir()
	h := &cniHost{ns: ns, ipamDir: filepath.Join(dir, "ipam"), stateDir: filepath.Join(dir, "state")}
	ex := &nsExec{netns: ns.Path(), env: []string{envStateDir + "=" + h.stateDir}}
	h.exec = ex
	h.cni = libcni.NewCNIConfigWithCacheDir([]string{pluginDir(t), debianCNIDir}, filepath.Join(dir, "cache"), ex)
	return h
}

// forgetful returns a libcni on the same host with an empty cache: a
// runtime that lost track of its attachments, whose GC then finds nothing
// to DEL itself and leaves the plugins to collect.
func (h *cniHost) forgetful(t testing.TB) *libcni.CNIConfig {
	return libcni.NewCNIConfigWithCacheDir([]string{pluginDir(t), debianCNIDir}, t.TempDir(), h.exec)
}

// conflist returns a network configuration list with one plugin: typ with
// the given keys, and host-local addresses from subnet with a default
// route through the subnet's gateway.
func (h *cniHost) conflist(t testing.TB, name, typ, subnet string, keys map[string]any) *libcni.NetworkConfigList {
	t.Helper()
	p := map[string]any{"type": typ, "ipam": map[string]any{
		"type": "host-local", "dataDir": h.ipamDir,
		"ranges": [][]map[string]string{{{"subnet": subnet}}},
		"routes": []map[string]string{{"dst": "0.0.0.0/0"}},
	}}
	for k, v := range keys {
		p[k] = v
	}
	return confList(t, "1.0.0", name, p)
}

// confList returns the network configuration list name of one plugin.
func confList(t testing.TB, cniVersion, name string, plugin map[string]any) *libcni.NetworkConfigList {
	t.Helper()
	b, err := json.Marshal(map[string]any{"cniVersion": cniVersion, "name": name, "plugins": []any{plugin}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := libcni.ConfListFromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func runtimeConf(id string, ns *testns.NS) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: id, NetNS: ns.Path(), IfName: "eth0"}
}
