// Package clusterset turns kubeconfig contexts into connected clusters: one
// client set per context, its MCS cluster id (KEP-2149), the MCS API
// version it serves, request counting, and a bounded parallel fan-out that
// keeps per-cluster errors apart.
package clusterset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Cluster is one kubeconfig context, connected.
type Cluster struct {
	// Context is the kubeconfig context name.
	Context string
	// ID is the MCS cluster id; IDSource says where it came from.
	ID       string
	IDSource string
	// Server is the API server URL, used to spot contexts that are the
	// same cluster.
	Server string
	// Namespace is the context's default namespace (or -n).
	Namespace string

	Config    *rest.Config
	Kube      kubernetes.Interface
	Dynamic   dynamic.Interface
	Discovery discovery.CachedDiscoveryInterface
	// Requests counts the HTTP requests made to this cluster.
	Requests *RequestCounter

	mcsOnce    sync.Once
	mcsVersion string
	mcsErr     error
	// warnings receives what the user should see although the command
	// goes on (nil: nowhere); see ResolveID.
	warnings io.Writer
}

// Error is a failure tied to one cluster; its message starts with the
// context name so a user knows where to look.
type Error struct {
	Context string
	Err     error
}

func (e *Error) Error() string { return e.Context + ": " + e.Err.Error() }

// Unreachable reports whether err means a cluster could not be reached at
// all (connection refused, DNS, timeout), as opposed to an answer from its
// API server (forbidden, not found, invalid), which is the user's to fix.
func Unreachable(err error) bool {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) || apierrors.IsServiceUnavailable(err)
	}
	var urlErr *url.Error
	var netErr net.Error
	return errors.As(err, &urlErr) || errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded)
}
func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an Error for the cluster.
func (c *Cluster) Errorf(format string, args ...any) error {
	return &Error{Context: c.Context, Err: fmt.Errorf(format, args...)}
}

// Wrap ties err to the cluster, unless it already is tied to one. A
// cluster that cannot be reached at all is said so, with its server.
func (c *Cluster) Wrap(err error) error {
	if err == nil {
		return nil
	}
	var ce *Error
	if errors.As(err, &ce) {
		return err
	}
	if Unreachable(err) {
		err = fmt.Errorf("cannot reach the API server %s (is the cluster up, and the context's server right?): %w", c.Server, rootCause(err))
	}
	return &Error{Context: c.Context, Err: err}
}

// rootCause drops the URL wrapping of transport errors, which repeats the
// server address already given.
func rootCause(err error) error {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return urlErr.Err
	}
	return err
}

// Loader connects contexts using the kubectl flags the user gave: the
// kubeconfig, cache directory, request timeout and impersonation apply to
// every context; --context-specific overrides (--server, --token, ...) only
// to the current context.
type Loader struct {
	Flags *genericclioptions.ConfigFlags
	// OnConnect, if set, sees every cluster as it is connected (tests use it
	// to read the request counters after a command).
	OnConnect func(*Cluster)
	// Warnings, if set, receives the warnings of connected clusters, e.g.
	// a cluster id taken from the context name although the cluster
	// serves the ClusterProperty CRD.
	Warnings io.Writer
}

// CurrentContext returns the context --context names, else the
// kubeconfig's current context.
func (l *Loader) CurrentContext() (string, error) {
	if l.Flags.Context != nil && *l.Flags.Context != "" {
		return *l.Flags.Context, nil
	}
	raw, err := l.Flags.ToRawKubeConfigLoader().RawConfig()
	if err != nil {
		return "", err
	}
	if raw.CurrentContext == "" {
		return "", errors.New("no current context in the kubeconfig (pass --context)")
	}
	return raw.CurrentContext, nil
}

// Contexts returns every context name of the kubeconfig, sorted.
func (l *Loader) Contexts() ([]string, error) {
	raw, err := l.Flags.ToRawKubeConfigLoader().RawConfig()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(raw.Contexts))
	for name := range raw.Contexts {
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}

// Connect builds the clients of one context without contacting it.
func (l *Loader) Connect(contextName string) (*Cluster, error) {
	raw, err := l.Flags.ToRawKubeConfigLoader().RawConfig()
	if err != nil {
		return nil, err
	}
	kctx, ok := raw.Contexts[contextName]
	if !ok {
		known := make([]string, 0, len(raw.Contexts))
		for name := range raw.Contexts {
			known = append(known, name)
		}
		slices.Sort(known)
		return nil, &Error{Context: contextName, Err: fmt.Errorf("context not found in the kubeconfig (known contexts: %s)", strings.Join(known, ", "))}
	}
	flags := l.flagsFor(contextName, contextName == raw.CurrentContext)
	counter := &RequestCounter{}
	flags.WrapConfigFn = func(cfg *rest.Config) *rest.Config {
		cfg.Wrap(counter.Wrap)
		// Outermost: a request refused is neither sent nor counted.
		cfg.Wrap(refuseEnded)
		return cfg
	}
	cfg, err := flags.ToRESTConfig()
	if err != nil {
		return nil, &Error{Context: contextName, Err: err}
	}
	// Client-side rate limiting: kubectl keeps client-go's 5 QPS / burst
	// 10 for its requests (and 50 / 300 for discovery, which cli-runtime
	// sets apart), because it sends them one at a time. kubectl mcs sends
	// up to --max-writes-in-flight (at most 250) per cluster at once, and
	// a first import is hundreds of writes: a burst of 1000 lets every
	// sync of that size out without a wait, and 500 QPS stays above what
	// 32 writes in flight sustain at 60 ms or more of round trip. The
	// concurrency is bounded where the requests are made (apply.Executor,
	// ForEach); beyond that, the API server's priority and fairness
	// protects it.
	cfg.QPS, cfg.Burst = 500, 1000
	// The built-in types (Services, EndpointSlices: the bulk of every read)
	// in protobuf, which decodes several times faster than JSON; the
	// dynamic client (MCS CRDs) stays JSON.
	kubeCfg := rest.CopyConfig(cfg)
	kubeCfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	kubeCfg.ContentType = "application/vnd.kubernetes.protobuf"
	kube, err := kubernetes.NewForConfig(kubeCfg)
	if err != nil {
		return nil, &Error{Context: contextName, Err: err}
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, &Error{Context: contextName, Err: err}
	}
	disco, err := flags.ToDiscoveryClient()
	if err != nil {
		return nil, &Error{Context: contextName, Err: err}
	}
	ns, _, err := flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, &Error{Context: contextName, Err: err}
	}
	server := cfg.Host
	if cl := raw.Clusters[kctx.Cluster]; cl != nil && cl.Server != "" {
		server = cl.Server
	}
	c := &Cluster{
		Context: contextName, Server: server, Namespace: ns,
		Config: cfg, Kube: kube, Dynamic: dyn, Discovery: disco, Requests: counter,
		warnings: l.Warnings,
	}
	if l.OnConnect != nil {
		l.OnConnect(c)
	}
	return c, nil
}

// flagsFor derives the flags for another context: same kubeconfig, cache,
// timeout, impersonation and TLS leniency; the context's own credentials.
func (l *Loader) flagsFor(contextName string, isKubeconfigCurrent bool) *genericclioptions.ConfigFlags {
	f := l.Flags
	flagContext := ""
	if f.Context != nil {
		flagContext = *f.Context
	}
	if flagContext == contextName || (flagContext == "" && isKubeconfigCurrent) {
		// The user's current context: every override flag applies as given.
		return f
	}
	out := genericclioptions.NewConfigFlags(true)
	out.KubeConfig = f.KubeConfig
	out.CacheDir = f.CacheDir
	out.Timeout = f.Timeout
	out.Impersonate = f.Impersonate
	out.ImpersonateUID = f.ImpersonateUID
	out.ImpersonateGroup = f.ImpersonateGroup
	out.ImpersonateUserExtra = f.ImpersonateUserExtra
	out.Insecure = f.Insecure
	out.DisableCompression = f.DisableCompression
	out.Namespace = f.Namespace
	name := contextName
	out.Context = &name
	return out
}

// ValidateClusterID checks that a cluster id can appear in DNS names.
func ValidateClusterID(id string) error {
	if errs := validation.IsDNS1123Label(id); len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// ParseContextList splits a --from/--clusters value ("a,b,c"), rejecting
// empty entries and duplicates so a typo never silently drops a cluster.
func ParseContextList(flag, value string) ([]string, error) {
	if strings.TrimSpace(value) == "" {
		return nil, fmt.Errorf("--%s is empty (give one or more kubeconfig contexts, comma separated)", flag)
	}
	var out []string
	seen := map[string]bool{}
	for _, part := range strings.Split(value, ",") {
		name := strings.TrimSpace(part)
		if name == "" {
			return nil, fmt.Errorf("--%s %q has an empty entry (give contexts separated by single commas)", flag, value)
		}
		if seen[name] {
			return nil, fmt.Errorf("--%s %q names context %q twice", flag, value, name)
		}
		seen[name] = true
		out = append(out, name)
	}
	return out, nil
}
