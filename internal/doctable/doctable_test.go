package doctable

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A stale table fails naming the command; update rewrites only what is
// between the markers; a page without markers fails.
func TestSync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "page.md")
	page := "# Page\n\n<!-- t -->\n| old |\n<!-- /t -->\n\nafter\n"
	if err := os.WriteFile(path, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Sync(path, "t", "| new |\n", false, "go test -update"); err == nil || !strings.Contains(err.Error(), "stale; run go test -update") {
		t.Fatalf("stale table: %v", err)
	}
	if err := Sync(path, "t", "| new |\n", true, "go test -update"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != strings.Replace(page, "| old |", "| new |", 1) {
		t.Fatalf("rewritten page:\n%s", b)
	}
	if err := Sync(path, "t", "| new |\n", false, "go test -update"); err != nil {
		t.Fatalf("current table: %v", err)
	}
	if err := Sync(path, "other", "", false, ""); err == nil || !strings.Contains(err.Error(), "no \"<!-- other -->\"") {
		t.Fatalf("no markers: %v", err)
	}
}
