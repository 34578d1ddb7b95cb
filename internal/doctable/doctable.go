// Package doctable keeps the tables of the documentation that are generated
// from the code current: a test renders the table from the code, and Sync
// compares it with the page (or, asked to, rewrites the page).
package doctable

import (
	"fmt"
	"os"
	"strings"
)

// Sync compares the text between the lines "<!-- name -->" and
// "<!-- /name -->" of the file at path with want. With update it first
// writes want there. The error names the file and, when the table is
// stale, the command that regenerates it (regen).
func Sync(path, name, want string, update bool, regen string) error {
	begin, end := "<!-- "+name+" -->\n", "<!-- /"+name+" -->"
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	doc := string(b)
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %q and %q markers", path, strings.TrimSpace(begin), end)
	}
	if update {
		doc = doc[:i+len(begin)] + want + doc[j:]
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			return err
		}
		j = strings.Index(doc, end)
	}
	if got := doc[i+len(begin) : j]; got != want {
		return fmt.Errorf("the %s table of %s is stale; run %s\n%s", name, path, regen, got)
	}
	return nil
}
