package fabric

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/TrilliumIT/docker-vxlan-plugin/vxlan"
)

// errNoParent answers a global-scope parent network given no parent: an
// isolated network exists only on one host, so it makes no sense in a swarm.
const errNoParent = `no parent interface was passed, use for example '-o parent="eth0,eth1,eth3"'`

// resolveParent chooses the parent of a parent-kind network on this host:
// the first candidate that exists, or whose master exists when it is an
// 802.1Q name (master.id), which is then made.
func (r *resolver) resolveParent(ctx context.Context, spec *NetworkSpec) error {
	p := &spec.Parent
	opt := "parent"
	if p.File != "" {
		opt = "parent-file"
		names, err := readParentFile(r.rc.ParentDir, r.rc.ParentOwner, p.File)
		if err != nil {
			return err
		}
		p.Candidates = names
	}
	if len(p.Candidates) == 0 {
		if r.rc.Scope == ScopeGlobal {
			return errors.New(errNoParent)
		}
		p.Isolated, p.Name = true, IsolatedParentName(spec.ID)
		spec.ContainerMTU = assumedUnderlayMTU
		return nil
	}
	for _, c := range p.Candidates {
		mtu, err := r.ifs.LinkMTU(ctx, c)
		if err == nil {
			p.Name, spec.ContainerMTU = c, mtu
			return nil
		}
		if !errors.Is(err, vxlan.ErrNotFound) {
			return err
		}
		master, id, ok := splitVLANName(c)
		if !ok {
			continue
		}
		mtu, err = r.ifs.LinkMTU(ctx, master)
		if err == nil {
			p.Name, p.VLAN, spec.ContainerMTU = c, &VLANParent{Master: master, ID: id}, mtu
			return nil
		}
		if !errors.Is(err, vxlan.ErrNotFound) {
			return err
		}
	}
	if p.File != "" {
		// The names came from a file: the log lists them, the answer does not.
		r.log.Warn("no parent-file interface exists on this host", "file", p.File, "names", p.Candidates)
		return &OptionError{
			Option: opt,
			Value:  p.File,
			Problem: fmt.Sprintf(
				"none of the %d interface names in the file exists on this host (for name.id, its master); the plugin's log lists them",
				len(p.Candidates),
			),
			Err: vxlan.ErrNotFound,
		}
	}
	return &OptionError{
		Option:  opt,
		Value:   strings.Join(p.Candidates, ","),
		Problem: fmt.Sprintf("none of %s exists on this host (for name.id, its master)", strings.Join(p.Candidates, ", ")),
		Err:     vxlan.ErrNotFound,
	}
}

// splitVLANName splits "eth0.65" into its master and 802.1Q id.
func splitVLANName(name string) (master string, id uint16, ok bool) {
	i := strings.LastIndexByte(name, '.')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.ParseUint(name[i+1:], 10, 16)
	if err != nil || n < 1 || n > 4094 {
		return "", 0, false
	}
	return name[:i], uint16(n), true
}
