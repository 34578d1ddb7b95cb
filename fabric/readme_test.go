package fabric_test

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
)

var updateREADME = flag.Bool("update-readme", false, "rewrite the option table in ../README.md from fabric.Options")

// optionTable renders fabric.Options as the README's markdown table.
func optionMarkdown() string {
	var sb strings.Builder
	sb.WriteString("| option | meaning | default | accepted values | networks |\n| --- | --- | --- | --- | --- |\n")
	for _, o := range fabric.Options() {
		sb.WriteString("| `" + o.Name + "` | " + o.Meaning + " | " + o.Default + " | " + o.Accepted + " | " + fabric.KindsText(o.Kinds) + " |\n")
	}
	return sb.String()
}

// The README's option table is the one the parser uses.
func TestREADMEOptionTable(t *testing.T) {
	const begin, end = "<!-- options -->\n", "<!-- /options -->"
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	i, j := strings.Index(readme, begin), strings.Index(readme, end)
	if i < 0 || j < i {
		t.Fatal("README.md has no option table markers")
	}
	if *updateREADME {
		readme = readme[:i+len(begin)] + optionMarkdown() + readme[j:]
		if err := os.WriteFile("../README.md", []byte(readme), 0o644); err != nil {
			t.Fatal(err)
		}
		j = strings.Index(readme, end)
	}
	if got := readme[i+len(begin) : j]; got != optionMarkdown() {
		t.Fatalf("README option table is stale; run go test ./fabric -run TestREADMEOptionTable -update-readme\n%s", got)
	}
}
