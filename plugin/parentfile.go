package plugin

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/BurntSushi/toml"
)

// readParentFile reads the parent candidates of a parent-file: a TOML file
// with a [macvlan] table whose parent is a name, a comma-separated list, or
// a TOML array of names:
//
//	[macvlan]
//	parent = "eth1"               # or "bond0, eth1", or ["bond0", "eth1"]
//
// A file that is not TOML at all but holds a name on its first non-empty
// line (as `echo eth0.30 > /etc/docker-vxlan-plugin/vlan30.conf` writes) is read
// as that name.
func readParentFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, errors.Unwrap(err))
	}
	var doc struct {
		Macvlan map[string]any `toml:"macvlan"`
	}
	meta, err := toml.Decode(string(b), &doc)
	if err != nil {
		if line := firstLine(string(b)); line != "" && !strings.ContainsAny(string(b), "=[") {
			return parseNameList(line)
		}
		return nil, fmt.Errorf("%s is not TOML: %v", path, err)
	}
	if !meta.IsDefined("macvlan") {
		return nil, fmt.Errorf("%s has no [macvlan] table", path)
	}
	raw, ok := doc.Macvlan["parent"]
	if !ok {
		return nil, fmt.Errorf("%s: key macvlan.parent is missing", path)
	}
	var list string
	switch v := raw.(type) {
	case string:
		list = v
	case []any:
		parts := make([]string, 0, len(v))
		for _, p := range v {
			s, ok := p.(string)
			if !ok {
				return nil, fmt.Errorf("%s: key macvlan.parent: %v is not a string", path, p)
			}
			parts = append(parts, s)
		}
		list = strings.Join(parts, ",")
	default:
		return nil, fmt.Errorf("%s: key macvlan.parent: want a string or a list of strings", path)
	}
	names, err := parseNameList(list)
	if err != nil {
		return nil, fmt.Errorf("%s: key macvlan.parent: %v", path, err)
	}
	return names, nil
}

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			return l
		}
	}
	return ""
}
