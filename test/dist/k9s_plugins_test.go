package dist

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-mcs/kubectl-mcs/pkg/cmd"
)

// k9sPlugin is one entry of k9s's plugins.yaml, with every key k9s knows:
// the file is read strictly, so a misspelt key fails here instead of being
// ignored by k9s.
type k9sPlugin struct {
	ShortCut        string   `json:"shortCut"`
	Override        bool     `json:"override"`
	Description     string   `json:"description"`
	Scopes          []string `json:"scopes"`
	Command         string   `json:"command"`
	Args            []string `json:"args"`
	Background      bool     `json:"background"`
	Confirm         bool     `json:"confirm"`
	Dangerous       bool     `json:"dangerous"`
	OverwriteOutput bool     `json:"overwriteOutput"`
	Pipes           []string `json:"pipes"`
}

// The k9s views the plugins belong to, by the resource names k9s matches
// scopes against.
var k9sScopes = []string{"services", "serviceexports", "serviceimports"}

// TestK9sPlugins checks plugins.yaml against the real command tree: each
// plugin runs `kubectl mcs VERB $NAME --namespace $NAMESPACE --context
// $CONTEXT`, the verb exists, cobra accepts the flags, a verb that writes
// asks first, and a verb that reads runs in the foreground through a pager
// that k9s can wait for.
func TestK9sPlugins(t *testing.T) {
	plugins := readK9sPlugins(t)
	verbs := map[string]bool{}
	shortcuts := map[string]string{}
	for id, p := range plugins {
		t.Run(id, func(t *testing.T) {
			if p.ShortCut == "" || p.Description == "" || len(p.Scopes) == 0 || p.Command == "" {
				t.Errorf("k9s requires shortCut, description, scopes and command: %+v", p)
			}
			if other, dup := shortcuts[p.ShortCut]; dup {
				t.Errorf("shortCut %s is also %s's", p.ShortCut, other)
			}
			shortcuts[p.ShortCut] = id
			for _, scope := range p.Scopes {
				if !slices.Contains(k9sScopes, scope) {
					t.Errorf("scope %q is none of %v", scope, k9sScopes)
				}
			}
			if len(p.Pipes) > 0 {
				t.Errorf("pipes %q: k9s (v0.50.16, v0.51.0) never closes the input of the last command of its pipes, "+
					"so less waits for more and k9s hangs; pipe in `sh -c` instead", p.Pipes)
			}
			args := mcsArgs(t, p)
			if args == nil {
				return
			}
			verbs[args[0]] = true
			verb := checkInvocation(t, args)
			if verb == nil {
				return
			}
			// Verbs that write are the ones with --dry-run.
			if verb.Flags().Lookup("dry-run") != nil && !(p.Confirm && p.Dangerous) {
				t.Errorf("kubectl mcs %s writes: set confirm (k9s asks first) and dangerous (hidden in read-only mode)", verb.Name())
			}
		})
	}
	for _, want := range []string{"status", "resolve", "export", "unexport"} {
		if !verbs[want] {
			t.Errorf("no plugin runs kubectl mcs %s", want)
		}
	}
}

// readK9sPlugins reads plugins.yaml strictly.
func readK9sPlugins(t *testing.T) map[string]k9sPlugin {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "plugins.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Plugins map[string]k9sPlugin `json:"plugins"`
	}
	if err := yaml.UnmarshalStrict(data, &file); err != nil {
		t.Fatalf("plugins.yaml: %v", err)
	}
	if len(file.Plugins) == 0 {
		t.Fatal("plugins.yaml defines no plugin")
	}
	return file.Plugins
}

// pagedScript is the one shell script a foreground plugin may run: the
// verb's output, errors included, through less, which k9s waits for. Its
// arguments come after it ("$@"; the first one is $0), so that no value of
// k9s's variables is ever parsed by the shell, and the script holds no
// $WORD for k9s to substitute.
var pagedScript = regexp.MustCompile(`^kubectl mcs ([a-z]+) "\$@" 2>&1 \| less -R$`)

// mcsArgs returns the arguments a plugin gives `kubectl mcs` (VERB ...), or
// nil once it has failed the test. A plugin that writes runs kubectl in the
// background, where k9s flashes its result line; one that reads runs in the
// foreground, in `sh -c` with its output paged (k9s clears the screen as
// soon as a command ends).
func mcsArgs(t *testing.T, p k9sPlugin) []string {
	t.Helper()
	switch {
	case p.Command == "kubectl" && p.Background:
		if len(p.Args) < 2 || p.Args[0] != "mcs" {
			t.Errorf("runs kubectl %q, want kubectl mcs VERB ...", p.Args)
			return nil
		}
		return p.Args[1:]
	case p.Command == "sh" && !p.Background:
		if len(p.Args) < 4 || p.Args[0] != "-c" {
			t.Errorf("runs sh %q, want sh -c SCRIPT NAME ARGS...", p.Args)
			return nil
		}
		m := pagedScript.FindStringSubmatch(p.Args[1])
		if m == nil {
			t.Errorf("script %q, want %q", p.Args[1], `kubectl mcs VERB "$@" 2>&1 | less -R`)
			return nil
		}
		if strings.Contains(p.Args[2], "$") {
			t.Errorf("the script's $0 %q holds a k9s variable", p.Args[2])
		}
		return append([]string{m[1]}, p.Args[3:]...)
	default:
		t.Errorf("runs %s %q in the %s: want kubectl mcs in the background, or sh -c 'kubectl mcs ... | less -R' in the foreground",
			p.Command, p.Args, map[bool]string{true: "background", false: "foreground"}[p.Background])
		return nil
	}
}

// checkInvocation parses `kubectl mcs ARGS...` with the real command tree
// and checks where k9s's variables go. It returns the verb, or nil once it
// has failed the test.
func checkInvocation(t *testing.T, args []string) *cobra.Command {
	t.Helper()
	var out bytes.Buffer
	root := cmd.NewCmdMCS(genericiooptions.IOStreams{In: &bytes.Buffer{}, Out: &out, ErrOut: &out})
	verb, rest, err := root.Find(args)
	if err != nil || verb == root {
		t.Errorf("kubectl mcs %s: the command tree has no verb %q (%v)", strings.Join(args, " "), args[0], err)
		return nil
	}
	if err := verb.ParseFlags(rest); err != nil {
		t.Errorf("kubectl mcs %s: %v", strings.Join(args, " "), err)
		return nil
	}
	if err := verb.ValidateArgs(verb.Flags().Args()); err != nil {
		t.Errorf("kubectl mcs %s: %v", strings.Join(args, " "), err)
	}
	if got := verb.Flags().Args(); !slices.Equal(got, []string{"$NAME"}) {
		t.Errorf("arguments %q, want the selected row's name, [$NAME]", got)
	}
	// k9s's variables for the row and the view: the selected object's
	// namespace and the context k9s shows, so the command acts where the
	// user looks, not on kubectl's current context.
	for flag, want := range map[string]string{"namespace": "$NAMESPACE", "context": "$CONTEXT"} {
		if f := verb.Flag(flag); f == nil || !f.Changed || f.Value.String() != want {
			t.Errorf("--%s is not given %s", flag, want)
		}
	}
	return verb
}

// repoRoot is the module's root folder: tests run in their package's.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}
