package cni

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/containernetworking/cni/pkg/types"
)

// cniKeys are the keys of a network configuration that CNI itself defines
// (the spec's, and those libcni adds); every other key is a network option
// of plugin's option table.
var cniKeys = map[string]bool{
	"cniVersion": true, "cniVersions": true, "name": true, "type": true, "ipam": true, "dns": true,
	"prevResult": true, "capabilities": true, "runtimeConfig": true, "args": true,
	"disableCheck": true, "disableGC": true,
	// GC's list of valid attachments, under the spec's name and the one
	// libcni also sends (containernetworking/cni#1101).
	"cni.dev/valid-attachments": true, "cni.dev/attachments": true,
}

// netConf is a network configuration: CNI's keys, and the network options.
type netConf struct {
	types.PluginConf
	// Options are the network options, as strings, as the Docker driver's
	// -o options are.
	Options map[string]string
}

// parseConfig reads the network configuration CNI passes on stdin. Each
// key CNI does not define is a network option: a string is taken as it is,
// a number or a boolean as its JSON text, a list of strings joined with
// commas (for VtepDev and Peers); the options are then checked by the
// option table, as Docker's are.
func parseConfig(stdin []byte) (*netConf, error) {
	conf := &netConf{}
	if err := json.Unmarshal(stdin, &conf.PluginConf); err != nil {
		return nil, fmt.Errorf("network configuration: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(stdin, &raw); err != nil {
		return nil, fmt.Errorf("network configuration: %w", err)
	}
	if conf.Name == "" {
		return nil, &configError{fmt.Errorf("network configuration: no name")}
	}
	conf.Options = map[string]string{}
	for k, v := range raw {
		if cniKeys[k] {
			continue
		}
		s, err := optionValue(v)
		if err != nil {
			return nil, &fabric.OptionError{
				Option:   k,
				Value:    string(v),
				Problem:  err.Error(),
				Accepted: "a JSON string, number or boolean (a list of strings for VtepDev and Peers)",
			}
		}
		conf.Options[k] = s
	}
	return conf, nil
}

// optionValue turns a JSON value into an option's text.
func optionValue(v json.RawMessage) (string, error) {
	d := json.NewDecoder(bytes.NewReader(v))
	d.UseNumber()
	var x any
	if err := d.Decode(&x); err != nil {
		return "", err
	}
	switch x := x.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	case bool:
		return fmt.Sprint(x), nil
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return "", fmt.Errorf("a list of other than strings")
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	}
	return "", fmt.Errorf("not a string, number, boolean or list of strings")
}

// networkID is the ID of a CNI network for package fabric.
func networkID(name string) string { return fabric.CNINetworkID(name) }

// isCNINetwork reports whether a network ID in an owner mark is one
// networkID made.
func isCNINetwork(id string) bool { return fabric.IsCNINetworkID(id) }

// endpointID is the ID of a container's attachment (container ID and
// interface name): 12 hex digits of their SHA-256, which name its host
// interface (vh followed by them).
func endpointID(containerID, ifName string) string {
	sum := sha256.Sum256([]byte(containerID + "/" + ifName))
	return hex.EncodeToString(sum[:6])
}
