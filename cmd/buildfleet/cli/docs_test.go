package cli

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/buildfleet/buildfleet/config"
)

// docFiles are the documents whose commands and config keys must exist.
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{"../../../README.md"}, files...)
}

var (
	fence      = regexp.MustCompile("(?s)```[a-z]*\n(.*?)```")
	inlineCode = regexp.MustCompile("`([^`\n]+)`")
	// A command: "buildfleet" (or bin/buildfleet) and what follows it on
	// the (joined) line.
	commandRE = regexp.MustCompile(`(?:^|[\s;|&(])(?:bin/)?buildfleet((?:\s+[^\s#;|&)]+)*)`)
	// A config key: a top-level key, then .key or [].key parts.
	keyRE = regexp.MustCompile(`^([a-z_]+)((?:\[\d*\])?(?:\.[a-z_]+(?:\[\d*\])?)+)$`)
)

// docSnippets returns the code of fenced blocks (continuation lines
// joined) and inline code spans of a Markdown text.
func docSnippets(text string) []string {
	var out []string
	for _, m := range fence.FindAllStringSubmatch(text, -1) {
		out = append(out, strings.Split(strings.ReplaceAll(m[1], "\\\n", " "), "\n")...)
	}
	rest := fence.ReplaceAllString(text, "")
	for _, m := range inlineCode.FindAllStringSubmatch(rest, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestDocsCommandsExist checks every `buildfleet …` command shown in
// README.md and docs/: each subcommand exists in the command tree and
// each flag is one the command takes.
func TestDocsCommandsExist(t *testing.T) {
	a := &app{stdout: io.Discard, stderr: io.Discard, flags: map[string]*pflag.Flag{}}
	root := a.rootCmd()
	seen := 0
	for _, file := range docFiles(t) {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, snip := range docSnippets(string(b)) {
			for _, m := range commandRE.FindAllStringSubmatch(snip, -1) {
				for _, problem := range checkCommand(root, strings.Fields(m[1])) {
					t.Errorf("%s: `buildfleet%s`: %s", filepath.Base(file), m[1], problem)
				}
				seen++
			}
		}
	}
	if seen < 10 {
		t.Errorf("only %d commands found in the docs; is the extraction broken?", seen)
	}
	// The check is real: a command or flag that does not exist is found.
	if len(checkCommand(root, []string{"donor", "configure"})) == 0 || len(checkCommand(root, []string{"nomad", "render", "--node-pool", "x"})) == 0 {
		t.Error("a made-up subcommand or flag passed")
	}
}

// checkCommand walks args down the tree ("a|b" tries both) and lists what
// does not exist.
func checkCommand(root *cobra.Command, args []string) []string {
	for i, arg := range args {
		if strings.Contains(arg, "|") && !strings.HasPrefix(arg, "-") {
			var out []string
			for _, alt := range strings.Split(arg, "|") {
				next := append(append(append([]string(nil), args[:i]...), alt), args[i+1:]...)
				out = append(out, checkCommand(root, next)...)
			}
			return out
		}
	}
	cur := root
	var flags []string
	positional, takesValue := false, false
	for _, arg := range args {
		arg = strings.Trim(arg, "[]")
		switch {
		case takesValue:
			takesValue = false
		case strings.HasPrefix(arg, "-"):
			name, _, hasValue := strings.Cut(arg, "=")
			flags = append(flags, name)
			if f := lookupFlag(root, cur, strings.TrimLeft(name, "-")); f != nil && f.NoOptDefVal == "" && !hasValue {
				takesValue = true
			}
		case positional:
		default:
			if sub := findSub(cur, arg); sub != nil {
				cur = sub
				continue
			}
			if !cur.Runnable() {
				return []string{"no command " + arg + " under " + cur.CommandPath()}
			}
			positional = true
		}
	}
	var out []string
	cur.InitDefaultHelpFlag()
	for _, f := range flags {
		name := strings.TrimLeft(f, "-")
		if name == "" || !regexp.MustCompile(`^[a-z][a-z0-9-]*$`).MatchString(name) {
			continue // "--" or a value like -1
		}
		if lookupFlag(root, cur, name) == nil {
			out = append(out, cur.CommandPath()+" has no flag "+f)
		}
	}
	return out
}

func lookupFlag(root, cur *cobra.Command, name string) *pflag.Flag {
	for _, fs := range []*pflag.FlagSet{cur.Flags(), cur.InheritedFlags(), root.PersistentFlags()} {
		if f := fs.Lookup(name); f != nil {
			return f
		}
		if len(name) == 1 {
			if f := fs.ShorthandLookup(name); f != nil {
				return f
			}
		}
	}
	return nil
}

func findSub(c *cobra.Command, name string) *cobra.Command {
	for _, s := range c.Commands() {
		if s.Name() == name || s.HasAlias(name) {
			return s
		}
	}
	return nil
}

// configKeys lists every key of the config struct: "nomad.ca_file",
// "pools[].min_isolation", and the sections themselves.
func configKeys(t reflect.Type, prefix string, out map[string]bool) {
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("mapstructure")
		if tag == "" || tag == "-" {
			continue
		}
		key := prefix + tag
		out[key] = true
		ft := t.Field(i).Type
		switch {
		case ft.Kind() == reflect.Struct:
			configKeys(ft, key+".", out)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			configKeys(ft.Elem(), key+"[].", out)
		}
	}
}

// TestDocsConfigKeysExist checks every config key shown as code in
// README.md and docs/ (nomad.ca_file, pools[].min_isolation, …) against
// the config struct's keys.
func TestDocsConfigKeysExist(t *testing.T) {
	keys := map[string]bool{}
	configKeys(reflect.TypeOf(config.Config{}), "", keys)
	tops := map[string]bool{}
	for k := range keys {
		if !strings.ContainsAny(k, ".[") {
			tops[k] = true
		}
	}
	var found []string
	for _, file := range docFiles(t) {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range inlineCode.FindAllStringSubmatch(string(b), -1) {
			k := keyRE.FindStringSubmatch(m[1])
			if k == nil || !tops[k[1]] || fileName(m[1]) {
				continue
			}
			norm := regexp.MustCompile(`\[\d*\]`).ReplaceAllString(m[1], "[]")
			found = append(found, norm)
			if !keys[norm] {
				t.Errorf("%s: config key `%s` does not exist", filepath.Base(file), m[1])
			}
		}
	}
	sort.Strings(found)
	if len(found) < 10 {
		t.Errorf("only %d config keys found in the docs (%v); is the extraction broken?", len(found), found)
	}
	if keys["nomad.tls_server"] || !keys["nomad.tls_server_name"] || !keys["pools[].min_isolation"] {
		t.Error("key listing is wrong")
	}
}

// fileName reports whether a span that looks like a key is a file name
// (nomad.service, nomad.exe): a top-level key is also a common word.
func fileName(s string) bool {
	switch filepath.Ext(s) {
	case ".service", ".exe", ".hcl", ".d", ".pem", ".yaml", ".yml", ".json", ".md", ".sh", ".plist":
		return true
	}
	return false
}
