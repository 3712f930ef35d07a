package cmd

import (
	"flag"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/klog/v2"
	"k8s.io/kubectl/pkg/util/templates"
)

// completionProgram is the name the completion scripts complete: the
// plugin's executable as it sits on PATH (krew links it there). Cobra's
// script generators use nothing of the command tree but this name; every
// candidate comes from the program itself, through `kubectl-mcs __complete`.
const completionProgram = "kubectl-mcs"

var completionLong = templates.LongDesc(`
	Print the script that makes a shell complete kubectl-mcs, the plugin's executable,
	when it is called by that name.

	Completing "kubectl mcs ..." is kubectl's job instead (kubectl >= 1.26, with kubectl's
	own completion loaded): put the kubectl_complete-mcs script shipped with the plugin on
	your PATH, and kubectl asks the plugin for its candidates. No script from this command
	is needed for that.

	Either way, TAB completes verbs and flags, contexts (--context, and each entry of --from
	and --clusters), namespaces (-n), and the services a verb can take, read from the
	clusters of your kubeconfig.`)

var completionExample = templates.Examples(`
	# bash (needs the bash-completion package), current shell
	source <(kubectl mcs completion bash)

	# zsh, every new shell
	kubectl mcs completion zsh > "${fpath[1]}/_kubectl-mcs"

	# fish
	kubectl mcs completion fish > ~/.config/fish/completions/kubectl-mcs.fish

	# PowerShell
	kubectl mcs completion powershell | Out-String | Invoke-Expression`)

func newCmdCompletion(streams genericiooptions.IOStreams) *cobra.Command {
	shells := map[string]func(*cobra.Command) error{
		"bash":       func(p *cobra.Command) error { return p.GenBashCompletionV2(streams.Out, true) },
		"zsh":        func(p *cobra.Command) error { return p.GenZshCompletion(streams.Out) },
		"fish":       func(p *cobra.Command) error { return p.GenFishCompletion(streams.Out, true) },
		"powershell": func(p *cobra.Command) error { return p.GenPowerShellCompletionWithDesc(streams.Out) },
	}
	return &cobra.Command{
		Use:                   "completion bash|zsh|fish|powershell",
		Short:                 "Print the shell completion script of kubectl mcs",
		Long:                  completionLong,
		Example:               completionExample,
		DisableFlagsInUseLine: true,
		ValidArgs:             []string{"bash", "zsh", "fish", "powershell"},
		Args:                  cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return shells[args[0]](&cobra.Command{Use: completionProgram})
		},
	}
}

// quietClientLogs keeps what client-go reports by itself (a failed
// discovery, say) out of the terminal while TAB is pressed: klog writes
// errors to stderr whatever its output, up to its -stderrthreshold.
func quietClientLogs() {
	flags := flag.NewFlagSet("completion-klog", flag.ContinueOnError)
	klog.InitFlags(flags)
	_ = flags.Set("logtostderr", "false")
	_ = flags.Set("stderrthreshold", "FATAL")
	klog.SetOutput(io.Discard)
}
