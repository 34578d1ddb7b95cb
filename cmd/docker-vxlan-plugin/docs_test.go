package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/TrilliumIT/docker-vxlan-plugin/fabric"
	"github.com/TrilliumIT/docker-vxlan-plugin/internal/doctable"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite the settings table of "+settingsDoc+" from the settings table and the flags")

// settingsDoc is the page whose table of flags, environment variables and
// managed plugin settings is generated.
const settingsDoc = "../../docs/plugin.md"

// settingsMarkdown renders the settings table with each flag's meaning and
// default.
func settingsMarkdown() string {
	d := newDaemonFlags(&strings.Builder{})
	var sb strings.Builder
	sb.WriteString("| flag | environment variable | managed plugin setting | default | meaning |\n| --- | --- | --- | --- | --- |\n")
	cell := func(s string) string {
		if s == "" {
			return ""
		}
		return "`" + s + "`"
	}
	for _, s := range settings {
		f := d.fs.Lookup(s.Flag)
		name, usage := flag.UnquoteUsage(f)
		flagText := "-" + s.Flag
		if name != "" {
			flagText += " " + strings.ToUpper(name)
		}
		def := f.DefValue
		if def == "false" || (def == "" && name != "") {
			def = ""
		}
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s |\n", cell(flagText), cell(s.Env), cell(s.Managed), cell(def),
			strings.ReplaceAll(usage, "|", "\\|"))
	}
	return sb.String()
}

// The table of docs/plugin.md is the settings table of the code, with the
// flags' own meanings and defaults.
func TestDocsSettingsTable(t *testing.T) {
	if err := doctable.Sync(settingsDoc, "settings", settingsMarkdown(), *updateDocs,
		"go test ./cmd/docker-vxlan-plugin -run TestDocsSettingsTable -update-docs"); err != nil {
		t.Fatal(err)
	}
}

// documentation is the text of every documentation file: README.md,
// SECURITY.md, docs/*.md and examples/README.md.
func documentation(t *testing.T) string {
	t.Helper()
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../../README.md", "../../SECURITY.md", "../../examples/README.md")
	var sb strings.Builder
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sb.Write(b)
		sb.WriteByte('\n')
	}
	return sb.String()
}

// documented reports whether doc shows code (a flag such as -scope, a
// variable, an option) as code: in backquotes, alone or followed by a
// space, '=' or '|'-free text such as "-scope local".
func documented(doc, code string) bool {
	return regexp.MustCompile("`" + regexp.QuoteMeta(code) + "[` =]").MatchString(doc)
}

// Every flag, environment variable, network option and managed plugin
// setting the code defines is documented: the flags of every command and
// test of the module (found in the source), the variables the code reads
// (os.Getenv and os.LookupEnv, and the settings table's), the options of
// fabric's option table and the settings of managed-plugin/config.json,
// which must be the settings table's.
func TestEverythingDocumented(t *testing.T) {
	doc := documentation(t)
	flags, envs := scanSource(t, "../..")
	for _, s := range settings {
		flags = append(flags, s.Flag)
		if s.Env != "" {
			envs = append(envs, s.Env)
		}
		if s.Managed != "" {
			envs = append(envs, s.Managed)
		}
	}
	var statusOut strings.Builder
	runStatus([]string{"-h"}, &statusOut, &statusOut)
	for _, m := range regexp.MustCompile(`(?m)^\s+-(\S+)`).FindAllStringSubmatch(statusOut.String(), -1) {
		flags = append(flags, m[1])
	}
	for _, f := range uniq(flags) {
		if !documented(doc, "-"+f) {
			t.Errorf("flag -%s is not documented (as `-%s` in README.md, docs/ or examples/README.md)", f, f)
		}
	}
	for _, e := range uniq(envs) {
		if !documented(doc, e) {
			t.Errorf("environment variable %s is not documented (as `%s`)", e, e)
		}
	}
	for _, o := range fabric.Options() {
		if !documented(doc, o.Name) {
			t.Errorf("network option %s is not documented (as `%s`)", o.Name, o.Name)
		}
	}

	// The managed plugin's settings are the settings table's, and each is
	// documented.
	b, err := os.ReadFile("../../managed-plugin/config.json")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Entrypoint []string
		Env        []struct{ Name string }
		Mounts     []struct {
			Name     string
			Settable []string
		}
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cfg.Entrypoint, "-managed-plugin") {
		t.Errorf("managed-plugin/config.json: entrypoint %q does not pass -managed-plugin", cfg.Entrypoint)
	}
	var inConfig, inTable []string
	for _, e := range cfg.Env {
		inConfig = append(inConfig, e.Name)
	}
	for _, s := range settings {
		if s.Managed != "" {
			inTable = append(inTable, s.Managed)
		}
	}
	slices.Sort(inConfig)
	slices.Sort(inTable)
	if !slices.Equal(inConfig, inTable) {
		t.Errorf("managed-plugin/config.json's settings %v are not the settings table's %v", inConfig, inTable)
	}
	for _, m := range cfg.Mounts {
		for _, s := range m.Settable {
			if name := m.Name + "." + s; !documented(doc, name) {
				t.Errorf("managed plugin setting %s is not documented (as `%s`)", name, name)
			}
		}
	}
}

// The documentation test notices what is not documented.
func TestDocumentedNoticesAbsence(t *testing.T) {
	doc := "run `-scope local` or `-d`; set `DVP_SCOPE=global`, `VxlanId`"
	for _, code := range []string{"-scope", "-d", "DVP_SCOPE", "VxlanId"} {
		if !documented(doc, code) {
			t.Errorf("%s: not found in %q", code, doc)
		}
	}
	for _, code := range []string{"-metrics-addr", "-s", "DVP_SCOPE_X", "Vxlan", "DVP_METRICS_ADDR"} {
		if documented(doc, code) {
			t.Errorf("%s: found in %q", code, doc)
		}
	}
}

func uniq(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

// scanSource returns the names of the flags that the Go files under root
// define (flag.X("name", ...) and fs.X("name", ...), and XVar forms) and the
// environment variables that non-test files read by name (os.Getenv and
// os.LookupEnv of a string constant).
func scanSource(t *testing.T, root string) (flags, envs []string) {
	t.Helper()
	fset := token.NewFileSet()
	var files []*ast.File
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// String constants by name, module-wide: an environment variable is
	// often named by a constant (testns.EnvStrict).
	consts := map[string]string{}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			if vs, ok := n.(*ast.ValueSpec); ok {
				for i, name := range vs.Names {
					if i < len(vs.Values) {
						if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							consts[name.Name], _ = strconv.Unquote(lit.Value)
						}
					}
				}
			}
			return true
		})
	}
	str := func(e ast.Expr) (string, bool) {
		switch e := e.(type) {
		case *ast.BasicLit:
			if e.Kind == token.STRING {
				s, err := strconv.Unquote(e.Value)
				return s, err == nil
			}
		case *ast.Ident:
			s, ok := consts[e.Name]
			return s, ok
		case *ast.SelectorExpr:
			s, ok := consts[e.Sel.Name]
			return s, ok
		}
		return "", false
	}
	flagFuncs := map[string]int{ // the argument that is the flag's name
		"String": 0, "Bool": 0, "Int": 0, "Int64": 0, "Uint": 0, "Uint64": 0, "Float64": 0, "Duration": 0, "Func": 0,
		"StringVar": 1, "BoolVar": 1, "IntVar": 1, "Int64Var": 1, "UintVar": 1, "Uint64Var": 1, "Float64Var": 1, "DurationVar": 1, "Var": 1,
	}
	for _, f := range files {
		// A test's own variables (PATH, to run a binary) are not the
		// project's settings; its flags are.
		inTest := strings.HasSuffix(fset.File(f.Pos()).Name(), "_test.go")
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			recv, ok := sel.X.(*ast.Ident)
			if !ok {
				return true
			}
			switch {
			case recv.Name == "os" && (sel.Sel.Name == "Getenv" || sel.Sel.Name == "LookupEnv") && len(call.Args) == 1 && !inTest:
				if s, ok := str(call.Args[0]); ok {
					envs = append(envs, s)
				}
			case recv.Name == "flag" || recv.Name == "fs":
				if i, ok := flagFuncs[sel.Sel.Name]; ok && len(call.Args) > i {
					if s, ok := str(call.Args[i]); ok {
						flags = append(flags, s)
					}
				}
			}
			return true
		})
	}
	return flags, envs
}
