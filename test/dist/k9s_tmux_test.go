package dist

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-mcs/kubectl-mcs/test/fixtures"
	"github.com/kubectl-mcs/kubectl-mcs/test/localcluster"
	"github.com/kubectl-mcs/kubectl-mcs/test/pluginrun"
)

// k9sBinaryEnv names another k9s binary to run TestK9sRunsThePlugins with
// (default: k9s in the tools folder, built by `make tools`).
const k9sBinaryEnv = "MCS_K9S_BINARY"

// k9sView is one k9s table TestK9sRunsThePlugins opens: k9s --context
// CONTEXT -n provider-ns -c RESOURCE, showing one row, NAME.
type k9sView struct {
	context, resource, scope, name string
	// want holds, per verb, patterns the paged output must match beyond
	// being the command's whole output.
	want map[string][]string
}

// TestK9sRunsThePlugins runs plugins.yaml in a real k9s (test/tools/k9s,
// built by `make tools`) inside tmux, against two local clusters with the
// seed scenario (cluster1 exports provider-ns/mysql, cluster2 imports it):
// in each view, k9s loads every plugin of the view's scope (no key clash),
// shows them in its menu, and each read-only shortcut pages the whole
// output of its `kubectl mcs` command until q brings k9s back.
func TestK9sRunsThePlugins(t *testing.T) {
	if testing.Short() {
		t.Skip("starts local clusters and runs k9s in tmux (not in -short mode)")
	}
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Skip("tmux is not installed: this test runs k9s in it (Debian: apt-get install tmux; .ci/run installs it)")
	}
	if _, err := exec.LookPath("less"); err != nil {
		t.Skip("less is not installed: the read-only plugins page through it (Debian: apt-get install less; .ci/run installs it)")
	}
	// The servers, kubectl, and k9s unless $K9S names one elsewhere.
	localcluster.NeedTools(t)
	tools := localcluster.ToolsDir()
	k9s := os.Getenv(k9sBinaryEnv)
	if k9s == "" {
		k9s = filepath.Join(localcluster.NeedTools(t, "k9s", "kubectl"), "k9s")
	} else {
		localcluster.NeedTools(t, "kubectl")
		if _, err := os.Stat(k9s); err != nil {
			t.Fatalf("$%s names %s: %v", k9sBinaryEnv, k9s, err)
		}
	}
	plugins := readK9sPlugins(t)
	plugin := pluginrun.Binary(t)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	set, err := localcluster.Start(ctx, localcluster.Options{Clusters: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Stop)
	t.Logf("2 clusters up in %s", time.Since(start).Round(time.Millisecond))

	env := k9sEnvironment(t, set.Kubeconfig, filepath.Join(tools, "kubectl"), plugin)
	seedScenario(ctx, t, set, env)
	t.Logf("seed scenario ready after %s", time.Since(start).Round(time.Millisecond))

	session := startTmux(t, tmux, k9s, env)
	for _, view := range []k9sView{
		// The consumer's Services: the derived Service of the import. The
		// plugins run on it with its own name; what kubectl mcs answers
		// for that name is the commands' business, here only that k9s
		// runs them and pages their whole answer.
		{context: "cluster2", resource: "services", scope: "services", name: "amcs-mysql"},
		// The provider's Services: the exported one.
		{context: "cluster1", resource: "services", scope: "services", name: "mysql", want: map[string][]string{
			"status": {`(?m)^provider-ns +mysql +Headless +cluster1 +cluster2 +tcp:3306/TCP +2/2 `},
		}},
		// The generic (CRD) views.
		{context: "cluster2", resource: "serviceimports", scope: "serviceimports", name: "mysql", want: map[string][]string{
			"status": {`(?m)^NAMESPACE +SERVICE +TYPE +EXPORTED BY +IMPORTED IN`, `(?m)^provider-ns +mysql +Headless +cluster1 +cluster2 +tcp:3306/TCP +2/2 `},
			"resolve": {
				`(?m)^mysql\.provider-ns\.svc\.clusterset\.local\. +A +198\.18\.`,
				`(?m)^_tcp\._tcp\.mysql\.provider-ns\.svc\.clusterset\.local\. +SRV +mysql-0\.cluster1\.mysql\.provider-ns\.svc\.clusterset\.local\.:3306 `,
				`(?m)^amcs-mysql\.provider-ns\.svc\.cluster\.local\. +A +198\.18\.`,
			},
		}},
		{context: "cluster1", resource: "serviceexports", scope: "serviceexports", name: "mysql", want: map[string][]string{
			"status": {`(?m)^provider-ns +mysql +Headless +cluster1 +cluster2 +tcp:3306/TCP +2/2 `},
		}},
	} {
		t.Run(view.context+"/"+view.resource, func(t *testing.T) {
			session.checkView(t, view, plugins)
		})
		if t.Failed() {
			break
		}
	}
	session.stop(t)

	log, err := os.ReadFile(session.logFile)
	if err != nil {
		t.Fatalf("k9s's log: %v", err)
	}
	for _, bad := range []string{"duplicate plugin key", "Plugins load failed", "invalid key specified"} {
		if i := strings.Index(string(log), bad); i >= 0 {
			t.Errorf("k9s's log says %q:\n%s", bad, lineAt(string(log), i))
		}
	}
	// The log is the one k9s wrote: it logged the plugins it ran.
	if !t.Failed() && !strings.Contains(string(log), `kubectl mcs status`) {
		t.Errorf("k9s's log %s does not show the plugins it ran:\n%s", session.logFile, tail(string(log), 20))
	}
	t.Logf("done in %s", time.Since(start).Round(time.Millisecond))
}

// communityPlugin is a k9s community plugin scoped to every view (Shift-E,
// watch-events), installed beside ours in the real k9s.
const communityPlugin = "watch-events.yaml"

// k9sEnvironment is the environment k9s and its plugins run in: kubectl
// and kubectl-mcs first on PATH, k9s's configuration, data, state and cache
// in temporary folders (plugins.yaml where docs/k9s.md says to copy it), and
// the clusters' kubeconfig.
func k9sEnvironment(t *testing.T, kubeconfig, kubectl, plugin string) []string {
	t.Helper()
	root := t.TempDir()
	dir := func(name string) string {
		d := filepath.Join(root, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	bin, config := dir("bin"), dir("config")
	for link, target := range map[string]string{"kubectl": kubectl, "kubectl-mcs": plugin} {
		if err := os.Symlink(target, filepath.Join(bin, link)); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "plugins.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	k9sConfig := filepath.Join(config, "k9s")
	if err := os.MkdirAll(k9sConfig, 0o755); err != nil {
		t.Fatal(err)
	}
	// No check for a newer k9s on GitHub; no splash screen; plain ASCII
	// instead of icons, for the screen captures.
	const configYAML = "k9s:\n  skipLatestRevCheck: true\n  ui:\n    splashless: true\n    noIcons: true\n"
	for name, content := range map[string][]byte{"plugins.yaml": data, "config.yaml": []byte(configYAML)} {
		if err := os.WriteFile(filepath.Join(k9sConfig, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Beside them, as users install it (k9s reads k9s/plugins/*.yaml), the
	// community plugin that once shared a key with ours in every view:
	// the run fails on any "duplicate plugin key" in k9s's log.
	community, err := os.ReadFile(filepath.Join(k9sModuleDir(t), "plugins", communityPlugin))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(k9sConfig, "plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(k9sConfig, "plugins", communityPlugin), community, 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{
		"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + dir("home"),
		"XDG_CONFIG_HOME=" + config,
		"XDG_DATA_HOME=" + dir("data"),
		"XDG_STATE_HOME=" + dir("state"),
		"XDG_CACHE_HOME=" + dir("cache"),
		"K9S_LOGS_DIR=" + dir("logs"),
		"KUBECONFIG=" + kubeconfig,
		// kubectl's discovery cache is keyed by host:port, and ports of
		// earlier runs get reused.
		"KUBECACHEDIR=" + dir("kubecache"),
		"LANG=C.UTF-8",
		"TERM=screen",
		"LESSHISTFILE=-",
	}
}

// seedScenario: the seed's MySQL in cluster1, exported, and imported into
// cluster2 with the plugin binary, once both pods are ready endpoints.
func seedScenario(ctx context.Context, t *testing.T, set *localcluster.Set, env []string) {
	t.Helper()
	provider := set.Cluster("cluster1")
	ns := fixtures.SeedNamespaceName
	for _, file := range []string{fixtures.SeedNamespace, fixtures.SeedMySQL} {
		if _, err := provider.Create(ctx, ns, fixtures.MustRead(file)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for {
		list, err := provider.Client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=mysql"})
		if err != nil {
			t.Fatal(err)
		}
		ready := 0
		for _, s := range list.Items {
			for _, ep := range s.Endpoints {
				if ep.Hostname != nil && ep.Conditions.Ready != nil && *ep.Conditions.Ready {
					ready++
				}
			}
		}
		if ready == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mysql-0 and mysql-1 are not ready endpoints of provider-ns/mysql after a minute (%d ready)", ready)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, args := range [][]string{
		{"mcs", "export", "mysql", "-n", ns, "--context", "cluster1"},
		{"mcs", "import", "mysql", "-n", ns, "--from", "cluster1", "--context", "cluster2", "--create-namespace"},
	} {
		c := exec.CommandContext(ctx, lookPathIn(t, "kubectl", env), args...)
		c.Env = env
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// lookPathIn finds a program on the PATH of env.
func lookPathIn(t *testing.T, name string, env []string) string {
	t.Helper()
	for _, kv := range env {
		if path, ok := strings.CutPrefix(kv, "PATH="); ok {
			for _, dir := range filepath.SplitList(path) {
				if p := filepath.Join(dir, name); isExecutable(p) {
					return p
				}
			}
		}
	}
	t.Fatalf("%s is not on the PATH of %q", name, env)
	return ""
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// tmuxSession is a tmux server of the test's own (its own socket, no
// configuration file), with one pane where k9s runs.
type tmuxSession struct {
	tmux    string
	socket  string
	env     []string
	k9s     string
	logFile string
	started bool
	// Width and height of the pane: wide enough for k9s's menu and the
	// resolve table to fit on a line.
	width, height int
}

const tmuxTarget = "mcs"

func startTmux(t *testing.T, tmux, k9s string, env []string) *tmuxSession {
	t.Helper()
	// A short path: a Unix socket's path is limited to about 100 bytes.
	dir, err := os.MkdirTemp("", "mcs-k9s-tmux-")
	if err != nil {
		t.Fatal(err)
	}
	s := &tmuxSession{tmux: tmux, socket: filepath.Join(dir, "socket"), env: env, k9s: k9s, width: 250, height: 50}
	for _, kv := range env {
		if logs, ok := strings.CutPrefix(kv, "K9S_LOGS_DIR="); ok {
			s.logFile = filepath.Join(logs, "k9s.log")
		}
	}
	t.Cleanup(func() {
		s.stop(t)
		os.RemoveAll(dir)
	})
	return s
}

// run runs a tmux command against the test's server.
func (s *tmuxSession) run(args ...string) (string, error) {
	c := exec.Command(s.tmux, append([]string{"-u", "-S", s.socket, "-f", "/dev/null"}, args...)...)
	c.Env = s.env
	out, err := c.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("tmux %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (s *tmuxSession) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := s.run(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// startK9s starts k9s in the pane, in place of the k9s before it.
func (s *tmuxSession) startK9s(t *testing.T, args ...string) {
	t.Helper()
	words := []string{"exec", "env", "-i"}
	words = append(words, s.env...)
	words = append(words, s.k9s, "--logFile", s.logFile, "--logLevel", "debug")
	words = append(words, args...)
	for i, w := range words {
		words[i] = shellQuote(w)
	}
	command := strings.Join(words, " ")
	if !s.started {
		s.mustRun(t, "new-session", "-d", "-s", tmuxTarget, "-x", fmt.Sprint(s.width), "-y", fmt.Sprint(s.height), command,
			";", "set-option", "-g", "remain-on-exit", "on")
		s.started = true
		return
	}
	s.mustRun(t, "respawn-pane", "-k", "-t", tmuxTarget, command)
}

// screen is what the pane shows, without trailing blank lines.
func (s *tmuxSession) screen(t *testing.T) string {
	t.Helper()
	out := s.mustRun(t, "capture-pane", "-p", "-t", tmuxTarget)
	lines := strings.Split(out, "\n")
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], " ")
	}
	return strings.TrimRight(strings.Join(lines, "\n"), "\n")
}

// waitFor polls the screen until ok accepts it, and fails the test with the
// last screen and the end of k9s's log after 20 s.
func (s *tmuxSession) waitFor(t *testing.T, what string, ok func(screen string) bool) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		screen := s.screen(t)
		if ok(screen) {
			return screen
		}
		if time.Now().After(deadline) {
			dead, _ := s.run("display-message", "-p", "-t", tmuxTarget, "pane dead: #{pane_dead}, exit status: #{pane_dead_status}")
			log, _ := os.ReadFile(s.logFile)
			t.Fatalf("waited 20s for %s; %sscreen:\n%s\nk9s's log ends with:\n%s", what, dead, screen, tail(string(log), 15))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// press types a key, named as k9s names it.
func (s *tmuxSession) press(t *testing.T, key string) {
	t.Helper()
	s.mustRun(t, append([]string{"send-keys", "-t", tmuxTarget}, tmuxKeys(key)...)...)
}

// tmuxKeys is how tmux send-keys types a k9s key name: Shift-M is the
// letter M, Shift-1 is !, Ctrl-X is C-x, a lower-case letter or a digit is
// itself.
func tmuxKeys(name string) []string {
	if rest, ok := strings.CutPrefix(name, "Shift-"); ok {
		if len(rest) == 1 && rest[0] >= '0' && rest[0] <= '9' {
			return []string{"-l", string(")!@#$%^&*("[rest[0]-'0'])}
		}
		return []string{"-l", rest}
	}
	if rest, ok := strings.CutPrefix(name, "Ctrl-"); ok {
		return []string{"C-" + strings.ToLower(rest)}
	}
	return []string{"-l", name}
}

// stop ends the tmux server, and with it k9s (SIGHUP), and waits until
// both are gone.
func (s *tmuxSession) stop(t *testing.T) {
	if !s.started {
		return
	}
	var pids []int
	for _, format := range []string{"#{pid}", "#{pane_pid}"} {
		if out, err := s.run("display-message", "-p", "-t", tmuxTarget, format); err == nil {
			var pid int
			if _, err := fmt.Sscan(out, &pid); err == nil && pid > 0 {
				pids = append(pids, pid)
			}
		}
	}
	if _, err := s.run("kill-server"); err != nil {
		t.Log(err)
	}
	s.started = false
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for processAlive(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if processAlive(pid) {
			t.Errorf("process %d still runs after tmux kill-server; killing it", pid)
			if p, err := os.FindProcess(pid); err == nil {
				p.Kill()
			}
		}
	}
}

// processAlive: the process exists and is no zombie.
func processAlive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: the state follows the last ')'.
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

// checkView opens a k9s view and runs every read-only plugin of its scope
// on its one row.
func (s *tmuxSession) checkView(t *testing.T, view k9sView, plugins map[string]k9sPlugin) {
	s.startK9s(t, "--context", view.context, "-n", fixtures.SeedNamespaceName, "-c", view.resource)
	title := fmt.Sprintf("%s(%s)[1]", view.resource, fixtures.SeedNamespaceName)
	row := regexp.MustCompile(`(?m)^│ ` + regexp.QuoteMeta(view.name) + ` `)

	var ids []string
	for id, p := range plugins {
		if slices.Contains(p.Scopes, view.scope) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	// The menu lists every plugin of the scope, e.g. "<shift-m> MCS status".
	menu := func(screen string) []string {
		var missing []string
		for _, id := range ids {
			hint := regexp.MustCompile(regexp.QuoteMeta("<"+strings.ToLower(plugins[id].ShortCut)+">") + ` +` + regexp.QuoteMeta(plugins[id].Description) + `\b`)
			if !hint.MatchString(screen) {
				missing = append(missing, id)
			}
		}
		return missing
	}
	tableShown := func(screen string) bool { return strings.Contains(screen, title) && row.MatchString(screen) }
	screen := s.waitFor(t, fmt.Sprintf("k9s to show %s with its row %s and the plugins %v in its menu", title, view.name, ids), func(screen string) bool {
		return tableShown(screen) && len(menu(screen)) == 0 || strings.Contains(screen, "Plugins load failed!")
	})
	t.Logf("k9s --context %s -n %s -c %s (blank table lines left out):\n%s", view.context, fixtures.SeedNamespaceName, view.resource, blankRows.ReplaceAllString(screen, ""))
	if strings.Contains(screen, "Plugins load failed!") {
		t.Fatalf("k9s says Plugins load failed! (plugins missing from its menu: %v); its log says why", menu(screen))
	}

	for _, id := range ids {
		p := plugins[id]
		if p.Background {
			continue // writes: not pressed here
		}
		// The verb, whatever the form of the plugin (TestK9sPlugins checks
		// the form): this test checks what k9s makes of it.
		m := anyVerb.FindStringSubmatch(strings.Join(append([]string{p.Command}, p.Args...), " "))
		if m == nil {
			t.Errorf("%s runs no kubectl mcs VERB: %s %q", id, p.Command, p.Args)
			continue
		}
		verb := m[1]
		// What the command prints, run directly, for the row.
		cmdArgs := []string{"mcs", verb, view.name, "--namespace", fixtures.SeedNamespaceName, "--context", view.context}
		c := exec.Command(lookPathIn(t, "kubectl", s.env), cmdArgs...)
		c.Env = s.env
		direct, _ := c.CombinedOutput() // resolve exits 1 when a name has no answer
		want := normalizedLines(string(direct))
		if len(want) == 0 || len(want) > s.height-2 {
			t.Fatalf("kubectl %s printed %d lines, want 1 to %d (one screen):\n%s", strings.Join(cmdArgs, " "), len(want), s.height-2, direct)
		}

		s.press(t, p.ShortCut)
		paged := s.waitFor(t, fmt.Sprintf("%s (%s) to page the output of kubectl %s", id, p.ShortCut, strings.Join(cmdArgs, " ")), func(screen string) bool {
			lines := strings.Split(screen, "\n")
			return lines[len(lines)-1] == "(END)" && !strings.Contains(screen, title)
		})
		t.Logf("after %s (%s) on %s:\n%s", p.ShortCut, p.Description, view.name, paged)
		got := normalizedLines(paged)
		for _, line := range want {
			if !slices.Contains(got, line) {
				t.Errorf("%s: the pager lacks the line %q of kubectl %s", id, line, strings.Join(cmdArgs, " "))
			}
		}
		for _, pattern := range view.want[verb] {
			if !regexp.MustCompile(pattern).MatchString(paged) {
				t.Errorf("%s: the pager matches no %s", id, pattern)
			}
		}
		s.press(t, "q")
		s.waitFor(t, "k9s to come back after the pager", func(screen string) bool {
			return tableShown(screen) && !strings.Contains(screen, "(END)")
		})
	}
}

// anyVerb finds the verb in a plugin's command line.
var anyVerb = regexp.MustCompile(`\bkubectl mcs ([a-z]+)\b`)

// blankRows matches the blank lines of k9s's table.
var blankRows = regexp.MustCompile(`(?m)^│ *│\n`)

// ages matches the AGE column's values, which change between two runs.
var ages = regexp.MustCompile(`\b(\d+[smhd])+\b`)

// normalizedLines: the non-blank lines, without trailing blanks and with
// ages replaced by AGE.
func normalizedLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimRight(l, " \t\r")
		if l != "" {
			out = append(out, ages.ReplaceAllString(l, "AGE"))
		}
	}
	return out
}

// shellQuote quotes a word for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// lineAt is the line of s around byte i.
func lineAt(s string, i int) string {
	start := strings.LastIndexByte(s[:i], '\n') + 1
	end := strings.IndexByte(s[i:], '\n')
	if end < 0 {
		return s[start:]
	}
	return s[start : i+end]
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
