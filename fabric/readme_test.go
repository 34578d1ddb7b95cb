package fabric_test

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
)

// optionsDoc is the documentation page whose option table is generated.
const optionsDoc = "../docs/options.md"

// The flag keeps its name (it once rewrote README.md, where the table was).
var updateREADME = flag.Bool("update-readme", false, "rewrite the option table in "+optionsDoc+" from fabric.Options")

// optionMarkdown renders fabric.Options as the documentation's markdown table.
func optionMarkdown() string {
	var sb strings.Builder
	sb.WriteString("| option | meaning | default | accepted values | networks |\n| --- | --- | --- | --- | --- |\n")
	for _, o := range fabric.Options() {
		sb.WriteString("| `" + o.Name + "` | " + o.Meaning + " | " + o.Default + " | " + o.Accepted + " | " + fabric.KindsText(o.Kinds) + " |\n")
	}
	return sb.String()
}

// The documentation's option table (docs/options.md) is the one the parser
// uses.
func TestREADMEOptionTable(t *testing.T) {
	const begin, end = "<!-- options -->\n", "<!-- /options -->"
	b, err := os.ReadFile(optionsDoc)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	i, j := strings.Index(readme, begin), strings.Index(readme, end)
	if i < 0 || j < i {
		t.Fatal(optionsDoc + " has no option table markers")
	}
	if *updateREADME {
		readme = readme[:i+len(begin)] + optionMarkdown() + readme[j:]
		if err := os.WriteFile(optionsDoc, []byte(readme), 0o644); err != nil {
			t.Fatal(err)
		}
		j = strings.Index(readme, end)
	}
	if got := readme[i+len(begin) : j]; got != optionMarkdown() {
		t.Fatalf(optionsDoc+" option table is stale; run go test ./fabric -run TestREADMEOptionTable -update-readme\n%s", got)
	}
}
