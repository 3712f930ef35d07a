package dist

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// The keys k9s handles itself in the views plugins.yaml extends, per k9s
// version, as read from k9s's source (github.com/derailed/k9s, and the
// table widget of github.com/derailed/tview it embeds). A plugin's
// shortCut must be none of them:
//
//   - layerView: the view's own actions. k9s refuses a plugin on one of
//     these keys ("duplicate plugin key found for ...", "Plugins load
//     failed!", the plugin is not bound) unless the plugin sets
//     override: true, which takes the key over.
//   - layerApp: the application's actions, looked up before the view's. A
//     plugin on one of these keys loads without a word and never runs.
//   - layerTview: the table's navigation, handled after the view's actions.
//     A plugin on one of these keys loads without a word and silently
//     takes the navigation key over.
//
// Keys are named as plugins.yaml spells them (k9s's internal/ui/key.go and
// tcell's KeyNames): "Shift-S", "Ctrl-S", "s", "?", "space", "Enter".
// Combinations with arrows (Shift-Left, Ctrl-Right: column selection) have
// no name a plugin could use and are left out.
//
// The Services view is internal/view/svc.go's Service; ServiceExports and
// ServiceImports have no view of their own and get the generic one of
// internal/view/command.go (viewMetaFor: ScaleExtender(OwnerExtender(
// Browser))). Both are a Browser (internal/view/browser.go) on a Table
// (internal/view/table.go, internal/ui/table.go). live_view.go (YAML,
// describe) and the other views bind keys only while they are shown, not in
// these tables.
//
// To add a k9s version: read the files cited below at that version (`go mod
// download -json github.com/derailed/k9s@VERSION` gives the source folder)
// and the views' wrappers in svc.go and command.go; k9s's help screen (?)
// in that view lists the view and application keys too.

type k9sLayer string

const (
	layerView  k9sLayer = "the view's actions"
	layerApp   k9sLayer = "the application's actions"
	layerTview k9sLayer = "the table's navigation"
)

type k9sKey struct {
	name   string // as plugins.yaml's shortCut spells it
	action string // what k9s does with it
}

type k9sBinding struct {
	source string   // file (and function) of the version that binds the keys
	scopes []string // the plugins.yaml scopes whose views have these keys
	layer  k9sLayer
	keys   []k9sKey
}

var (
	allScopes = []string{"services", "serviceexports", "serviceimports"}
	svcScope  = []string{"services"}
	crdScopes = []string{"serviceexports", "serviceimports"}
)

// Bindings that are the same in every version listed.
var (
	// internal/ui/app.go, (*App).bindKeys.
	k9sUIAppKeys = k9sBinding{"internal/ui/app.go (*App).bindKeys", allScopes, layerApp, []k9sKey{
		{":", "Cmd"}, {"Ctrl-R", "Redraw"}, {"Ctrl-P", "Persist"}, {"Ctrl-U", "Clear Filter"}, {"Ctrl-Q", "Clear Filter"},
	}}
	// internal/view/app.go, (*App).bindKeys.
	k9sViewAppKeys = k9sBinding{"internal/view/app.go (*App).bindKeys", allScopes, layerApp, []k9sKey{
		{"Ctrl-E", "ToggleHeader"}, {"Ctrl-G", "ToggleCrumbs"}, {"?", "Help"}, {"[", "Go Back"}, {"]", "Go Forward"},
		{"-", "Last View"}, {"Ctrl-A", "Aliases"}, {"Enter", "Goto"}, {"Ctrl-C", "Quit"},
	}}
	// internal/ui/table.go, (*Table).doUpdate: while all namespaces show.
	k9sUITableKeys = k9sBinding{"internal/ui/table.go (*Table).doUpdate", allScopes, layerView, []k9sKey{
		{"Shift-P", "Sort Namespace"},
	}}
	// internal/view/browser.go, (*Browser).refreshActions and
	// namespaceActions (0-9: the favorite namespaces).
	k9sBrowserActions = k9sBinding{"internal/view/browser.go (*Browser).refreshActions, namespaceActions", allScopes, layerView, []k9sKey{
		{"c", "Copy"}, {"Enter", "View"}, {"Ctrl-R", "Refresh"}, {"e", "Edit"}, {"Ctrl-D", "Delete"},
		{"y", "YAML"}, {"d", "Describe"}, {"n", "Copy Namespace"}, {"w", "Warp To Namespace"},
		{"0", "all"}, {"1", "namespace"}, {"2", "namespace"}, {"3", "namespace"}, {"4", "namespace"},
		{"5", "namespace"}, {"6", "namespace"}, {"7", "namespace"}, {"8", "namespace"}, {"9", "namespace"},
	}}
	// internal/view/logs_extender.go, internal/view/owner_extender.go and
	// internal/view/pf_extender.go, (*...Extender).bindKeys: NewService
	// (internal/view/svc.go) wraps the Browser in them.
	k9sServiceExtenders = k9sBinding{"internal/view/{logs,owner,pf}_extender.go bindKeys (NewService)", svcScope, layerView, []k9sKey{
		{"l", "Logs"}, {"p", "Logs Previous"}, {"Shift-J", "Jump Owner"}, {"f", "Show PortForward"}, {"Shift-F", "Port-Forward"},
	}}
	// internal/view/owner_extender.go and internal/view/scale_extender.go,
	// bindKeys: the generic view of internal/view/command.go viewMetaFor.
	// Scale only for scalable resources (not the MCS CRDs); listed all the
	// same.
	k9sGenericExtenders = k9sBinding{"internal/view/{owner,scale}_extender.go bindKeys (command.go viewMetaFor)", crdScopes, layerView, []k9sKey{
		{"Shift-J", "Jump Owner"}, {"s", "Scale"},
	}}
	// github.com/derailed/tview v0.8.5 (both versions' go.mod), table.go,
	// (*Table).InputHandler.
	k9sTviewTableKeys = k9sBinding{"github.com/derailed/tview@v0.8.5 table.go (*Table).InputHandler", allScopes, layerTview, []k9sKey{
		{"g", "Goto Top"}, {"Shift-G", "Goto Bottom"}, {"j", "Down"}, {"k", "Up"}, {"h", "Left"}, {"l", "Right"},
		{"Ctrl-F", "Page Down"}, {"Ctrl-B", "Page Up"}, {"Home", "Goto Top"}, {"End", "Goto Bottom"},
		{"PgUp", "Page Up"}, {"PgDn", "Page Down"}, {"Up", "Up"}, {"Down", "Down"}, {"Left", "Left"}, {"Right", "Right"},
		{"Tab", "Field Next"}, {"Backtab", "Field Previous"}, {"Esc", "Back"},
	}}
)

// k9sKeyBindings is, per k9s version, every key k9s handles in the views of
// plugins.yaml's scopes.
var k9sKeyBindings = map[string][]k9sBinding{
	"v0.50.16": k9sV05016,
	"v0.51.0":  k9sV0510,
	// derailed/k9s after v0.51.0, from the code search (the module proxy
	// has no v0.51.1 nor v0.52.0): internal/view/copy_extender.go at commit
	// afc75ae552e9095fa7cde705e272663b45392d6b, (*CopyExtender).bindKeys, for
	// namespaced resources that can be created, outside read-only mode. The
	// search does not show where it is wired in: assumed on every table.
	// Everything else as in v0.51.0.
	"after v0.51.0": append([]k9sBinding{{
		"internal/view/copy_extender.go (*CopyExtender).bindKeys", allScopes, layerView, []k9sKey{
			{"Shift-C", "Copy To Ns"},
		},
	}}, k9sV0510...),
}

// github.com/derailed/k9s v0.50.16, from the Go module proxy.
var k9sV05016 = []k9sBinding{
	k9sUIAppKeys,
	k9sViewAppKeys,
	{"internal/view/table.go (*Table).bindKeys", allScopes, layerView, []k9sKey{
		{"?", "Help"}, {"space", "Mark"}, {"Ctrl-Space", "Mark Range"}, {`Ctrl-\`, "Marks Clear"},
		{"Ctrl-S", "Save"}, {"/", "Filter Mode"}, {"Ctrl-Z", "Toggle Faults"}, {"Ctrl-W", "Toggle Wide"},
		{"Shift-N", "Sort Name"}, {"Shift-A", "Sort Age"},
	}},
	k9sUITableKeys,
	{"internal/view/browser.go (*Browser).bindKeys", allScopes, layerView, []k9sKey{
		{"Esc", "Filter Reset"}, {"Enter", "Filter"}, {"Help", "Help"},
	}},
	k9sBrowserActions,
	{"internal/view/svc.go (*Service).bindKeys", svcScope, layerView, []k9sKey{
		{"b", "Bench Run/Stop"}, {"Shift-T", "Sort Type"},
	}},
	k9sServiceExtenders,
	k9sGenericExtenders,
	k9sTviewTableKeys,
}

// github.com/derailed/k9s v0.51.0 (tag commit 558caafe7ba0), from the Go
// module proxy, which serves it on request though `go list -m -versions`
// stops at v0.50.16. The table binds Shift-S (issue 16) and Shift-O in every
// view, the Browser q; the Services view no longer binds Shift-T. The newest
// internal/view/table.go the derailed/k9s code search holds binds the same
// keys as this one.
var k9sV0510 = []k9sBinding{
	k9sUIAppKeys,
	k9sViewAppKeys,
	{"internal/view/table.go (*Table).bindKeys", allScopes, layerView, []k9sKey{
		{"?", "Help"}, {"space", "Mark"}, {"Ctrl-Space", "Mark Range"}, {`Ctrl-\`, "Marks Clear"},
		{"Ctrl-S", "Save"}, {"/", "Filter Mode"}, {"Ctrl-Z", "Toggle Faults"}, {"Ctrl-W", "Toggle Wide"},
		{"Shift-N", "Sort Name"}, {"Shift-A", "Sort Age"}, {"Shift-S", "Sort Status"}, {"Shift-O", "Sort Selected Column"},
	}},
	k9sUITableKeys,
	{"internal/view/browser.go (*Browser).bindKeys", allScopes, layerView, []k9sKey{
		{"Esc", "Filter Reset"}, {"q", "Filter Reset"}, {"Enter", "Filter"}, {"Help", "Help"},
	}},
	k9sBrowserActions,
	{"internal/view/svc.go (*Service).bindKeys", svcScope, layerView, []k9sKey{
		{"b", "Bench Run/Stop"},
	}},
	k9sServiceExtenders,
	k9sGenericExtenders,
	k9sTviewTableKeys,
}

// k9sKeyUse is one key k9s handles in one view of one version.
type k9sKeyUse struct {
	version, scope string
	binding        k9sBinding
	key            k9sKey
}

func (u k9sKeyUse) String() string {
	return fmt.Sprintf("k9s %s binds %s to %q in the %s view (%s, %s)", u.version, u.key.name, u.key.action, u.scope, u.binding.source, u.binding.layer)
}

// k9sUses returns where k9s handles key in the views of scopes, over every
// version listed, in a stable order.
func k9sUses(key string, scopes []string) []k9sKeyUse {
	var uses []k9sKeyUse
	for version, bindings := range k9sKeyBindings {
		for _, b := range bindings {
			for _, scope := range scopes {
				if !slices.Contains(b.scopes, scope) {
					continue
				}
				for _, k := range b.keys {
					if k.name == key {
						uses = append(uses, k9sKeyUse{version, scope, b, k})
					}
				}
			}
		}
	}
	sort.Slice(uses, func(i, j int) bool { return uses[i].String() < uses[j].String() })
	return uses
}

// TestK9sShortcutsAreFree: no shortcut of plugins.yaml is a key k9s itself
// handles in the plugin's views, in any k9s version listed above. A plugin
// may take over one of the view's own keys with override: true (say why
// next to it in plugins.yaml); an override that takes nothing over is an
// error too, as are the application's keys (the plugin would never run)
// and the table's navigation (it would be taken over without a word).
func TestK9sShortcutsAreFree(t *testing.T) {
	for id, p := range readK9sPlugins(t) {
		t.Run(id, func(t *testing.T) {
			if !k9sKeyName(p.ShortCut) {
				t.Fatalf("shortCut %q is no key name k9s knows (Shift-A..Z, Ctrl-A..Z but H, I, M, a..z, 0..9)", p.ShortCut)
			}
			var overridden []string
			for _, use := range k9sUses(p.ShortCut, p.Scopes) {
				switch {
				case use.binding.layer == layerView && p.Override:
					overridden = append(overridden, use.String())
				case use.binding.layer == layerView:
					t.Errorf("%s: k9s refuses the plugin (\"duplicate plugin key found for %q in %q\", \"Plugins load failed!\"); pick a free key, or take it over with override: true", use, p.ShortCut, id)
				case use.binding.layer == layerApp:
					t.Errorf("%s: the application looks its keys up first, the plugin would never run", use)
				default:
					t.Errorf("%s: the plugin would silently replace the table's navigation", use)
				}
			}
			switch {
			case p.Override && len(overridden) == 0:
				t.Errorf("override: true, but %s is free in every k9s version listed: drop the override", p.ShortCut)
			case p.Override:
				t.Logf("takes over, with override: true:\n  %s", strings.Join(overridden, "\n  "))
			}
		})
	}
}

// TestK9sKeyBindings checks the key lists themselves: every version covers
// every scope, and they know the clash of issue 16 (Shift-S, Sort Status,
// bound in every table from v0.51.0 on, free in v0.50.16).
func TestK9sKeyBindings(t *testing.T) {
	for version, bindings := range k9sKeyBindings {
		for _, scope := range allScopes {
			var n int
			for _, b := range bindings {
				if slices.Contains(b.scopes, scope) {
					n += len(b.keys)
				}
			}
			if n < 40 {
				t.Errorf("k9s %s: only %d keys in the %s view", version, n, scope)
			}
		}
	}
	for _, scope := range allScopes {
		var versions []string
		for _, use := range k9sUses("Shift-S", []string{scope}) {
			if use.binding.layer == layerView {
				versions = append(versions, use.version)
			}
		}
		sort.Strings(versions)
		if want := []string{"after v0.51.0", "v0.51.0"}; !slices.Equal(versions, want) {
			t.Errorf("Shift-S is bound in the %s view of k9s %q, want %q", scope, versions, want)
		}
	}
}

// k9sKeyName reports whether k9s can bind a plugin to name: k9s looks the
// shortCut up in tcell's key names, extended by k9s's internal/ui/key.go.
// Ctrl-H, Ctrl-I and Ctrl-M have none (they are Backspace, Tab and Enter).
func k9sKeyName(name string) bool {
	if rest, ok := strings.CutPrefix(name, "Shift-"); ok {
		return len(rest) == 1 && (rest[0] >= 'A' && rest[0] <= 'Z' || rest[0] >= '0' && rest[0] <= '9')
	}
	if rest, ok := strings.CutPrefix(name, "Ctrl-"); ok {
		return len(rest) == 1 && rest[0] >= 'A' && rest[0] <= 'Z' && !strings.Contains("HIM", rest)
	}
	return len(name) == 1 && (name[0] >= 'a' && name[0] <= 'z' || name[0] >= '0' && name[0] <= '9')
}

// TestK9sCommunityPluginsDoNotClash: k9s ships community plugins
// (plugins/*.yaml of its repository) that users merge into their
// plugins.yaml; in a view where two plugins share a key, k9s drops one and
// flashes "duplicate plugin key". No shortcut of ours may share a key with
// a community plugin whose scopes reach our views ("all" included), in the
// k9s version `make tools` builds.
func TestK9sCommunityPluginsDoNotClash(t *testing.T) {
	dir := k9sModuleDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "plugins", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no community plugins in %s (%v)", dir, err)
	}
	ours := readK9sPlugins(t)
	checked := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var file struct {
			Plugins map[string]struct {
				ShortCut string   `json:"shortCut"`
				Scopes   []string `json:"scopes"`
			} `json:"plugins"`
		}
		if err := yaml.Unmarshal(data, &file); err != nil {
			t.Logf("%s: not read (%v)", filepath.Base(f), err)
			continue
		}
		for name, theirs := range file.Plugins {
			checked++
			for id, p := range ours {
				if theirs.ShortCut != p.ShortCut {
					continue
				}
				for _, scope := range theirs.Scopes {
					if scope == "all" || slices.Contains(p.Scopes, scope) {
						t.Errorf("%s takes %s, as does the community plugin %s of %s in the views %v: merged, k9s keeps only one there and flashes a duplicate key", id, p.ShortCut, name, filepath.Base(f), theirs.Scopes)
					}
				}
			}
		}
	}
	t.Logf("%d community plugins of %s checked", checked, dir)
	if checked < 50 {
		t.Errorf("only %d community plugins read: the check would prove little", checked)
	}
}

// k9sModuleDir is where the Go module cache holds the k9s source that
// `make tools` builds (test/tools/k9s).
func k9sModuleDir(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/derailed/k9s")
	cmd.Dir = filepath.Join(repoRoot(t), "test", "tools", "k9s")
	out, err := cmd.Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		t.Skipf("the k9s module is not in the module cache (make tools downloads it): %v", err)
	}
	return dir
}
