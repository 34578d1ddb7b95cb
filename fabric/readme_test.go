package fabric_test

import (
	"flag"
	"strings"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/doctable"
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
	if err := doctable.Sync(optionsDoc, "options", optionMarkdown(), *updateREADME,
		"go test ./fabric -run TestREADMEOptionTable -update-readme"); err != nil {
		t.Fatal(err)
	}
}
