package fabric

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// secret stands in for a file's content that must never reach an error.
const secret = "SECRET-do-not-leak"

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
