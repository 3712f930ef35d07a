package image

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// containerSpecEnv carries a containerSpec (JSON) to the test binary when
// it runs as a container's init.
const containerSpecEnv = "MCS_IMAGE_TEST_CONTAINER"

// containerSpec is what a container runtime would make of the Deployment's
// pod spec and the image: a root filesystem, mounts, a user, a command.
type containerSpec struct {
	Root         string  // the unpacked image
	ReadOnlyRoot bool    // securityContext.readOnlyRootFilesystem
	Mounts       []mount // volumes, in order
	Hostname     string  // the pod's name
	WorkingDir   string
	UID, GID     int
	NoNewPrivs   bool // securityContext.allowPrivilegeEscalation: false
	Argv, Env    []string
}

type mount struct {
	Source, Target string // Target inside the root
	ReadOnly       bool
}

// startContainer starts the test binary as the init of a container in
// new mount and UTS namespaces (Go makes the new mount namespace private
// before the binary starts, so no mount made there shows outside); it
// sets the container up and becomes the image's entrypoint, so the
// returned command's process is the plugin's. The network is the host's:
// the local clusters listen on 127.0.0.1.
func startContainer(spec containerSpec, stdout, stderr *os.File) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	for _, m := range spec.Mounts {
		// Mount points, made before the root turns read-only, as a
		// runtime makes them.
		if err := os.MkdirAll(filepath.Join(spec.Root, m.Target), 0o755); err != nil {
			return nil, err
		}
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = []string{containerSpecEnv + "=" + string(raw)}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS, Pdeathsig: syscall.SIGKILL}
	return cmd, cmd.Start()
}

// runContainer is the init side: mounts, hostname, chroot, user, then
// exec of the entrypoint. It only returns by exiting on an error.
func runContainer(specJSON string) {
	fail := func(step string, err error) {
		fmt.Fprintf(os.Stderr, "container init: %s: %v\n", step, err)
		os.Exit(127)
	}
	var s containerSpec
	if err := json.Unmarshal([]byte(specJSON), &s); err != nil {
		fail("spec", err)
	}
	// The parent-death signal and the credentials are per thread until
	// exec: keep every step below on this one.
	runtime.LockOSThread()
	if err := unix.Mount(s.Root, s.Root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		fail("bind-mounting the root", err)
	}
	for _, m := range s.Mounts {
		target := filepath.Join(s.Root, m.Target)
		if err := unix.Mount(m.Source, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			fail("mounting "+m.Target, err)
		}
		if m.ReadOnly {
			if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
				fail("making "+m.Target+" read-only", err)
			}
		}
	}
	if s.ReadOnlyRoot {
		if err := unix.Mount("", s.Root, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
			fail("making the root read-only", err)
		}
	}
	if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
		fail("hostname", err)
	}
	if err := unix.Chroot(s.Root); err != nil {
		fail("chroot", err)
	}
	if err := os.Chdir(s.WorkingDir); err != nil {
		fail("working directory", err)
	}
	if s.NoNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			fail("no_new_privs", err)
		}
	}
	// Leaving root drops every capability.
	if err := syscall.Setgroups(nil); err != nil {
		fail("setgroups", err)
	}
	if err := syscall.Setgid(s.GID); err != nil {
		fail("setgid", err)
	}
	if err := syscall.Setuid(s.UID); err != nil {
		fail("setuid", err)
	}
	// Changing the user cleared the parent-death signal.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0); err != nil {
		fail("parent-death signal", err)
	}
	if os.Getppid() == 1 {
		fail("parent", fmt.Errorf("the test is gone"))
	}
	fail("exec "+s.Argv[0], syscall.Exec(s.Argv[0], s.Argv, s.Env))
}
