package sandbox

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Mode is the --sandbox setting.
type Mode int

const (
	// On applies everything the kernel allows and denies system calls
	// outside the list.
	On Mode = iota
	// Log applies everything, but the seccomp filter allows and logs the
	// system calls outside the list instead of denying them.
	Log
	// Off applies nothing.
	Off
)

// ParseMode parses the --sandbox flag: on, log or off.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "on", "":
		return On, nil
	case "log":
		return Log, nil
	case "off":
		return Off, nil
	}
	return Off, fmt.Errorf("--sandbox %q: want on, log or off", s)
}

// Config says what the confined server may still reach.
type Config struct {
	Mode Mode
	// ReadDirs are opened read-only (the lower layers); WriteDirs read and
	// written (the upper and work directories). Paths are opened by the
	// sandbox; the same directories the union holds.
	ReadDirs  []string
	WriteDirs []string
	// ReadOnly: the union has no upper; the capabilities that create or
	// change objects are dropped too.
	ReadOnly bool
	// Logger receives one line per step the kernel could not apply, and a
	// summary line.
	Logger *slog.Logger

	// For the tests that run a harness confined (probe_on.go): directories
	// whose files may also be executed, and system calls the harness needs
	// beyond the server's.
	execDirs      []string
	extraSyscalls []string
}

// Apply confines the calling process as cfg says. It returns an error only
// when a step the kernel supports fails in a way that leaves the process
// in an unknown state; a missing kernel feature is logged and skipped.
// Call it once, before serving, from any goroutine.
func Apply(cfg Config) error {
	if cfg.Mode == Off {
		return nil
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	// Time zone data is read on first use; read it now, while /etc can be.
	_ = time.Now().Local().String()

	var applied, missing []string
	skip := func(step string, err error) {
		missing = append(missing, step)
		log.Warn("sandbox: not applied", "step", step, "reason", err)
	}

	switch err := dropCapabilities(cfg.ReadOnly); {
	case err == nil:
		applied = append(applied, "capabilities")
	case errors.Is(err, errNoAllThreads):
		skip("capabilities", err)
	default:
		return fmt.Errorf("sandbox: drop capabilities: %w", err)
	}

	// no_new_privs first on this thread (landlock_restrict_self needs it
	// without CAP_SYS_ADMIN); the seccomp filter's TSYNC sets it on all.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("sandbox: no_new_privs: %w", err)
	}
	if _, _, errno := allThreads(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0); errno != 0 && errno != unix.ENOTSUP {
		return fmt.Errorf("sandbox: no_new_privs: %w", errno)
	}
	applied = append(applied, "no_new_privs")

	switch abi, err := restrictPaths(cfg.ReadDirs, cfg.WriteDirs, cfg.execDirs); {
	case err == nil:
		applied = append(applied, fmt.Sprintf("landlock(abi %d)", abi))
		if abi < 4 {
			log.Warn("sandbox: landlock ABI below 4: TCP bind/connect not restricted", "abi", abi)
		}
		if abi < 6 {
			log.Warn("sandbox: landlock ABI below 6: abstract unix sockets and signals not scoped", "abi", abi)
		}
	case errors.Is(err, errLandlockUnavailable), errors.Is(err, errNoAllThreads):
		skip("landlock", err)
	default:
		return fmt.Errorf("sandbox: landlock: %w", err)
	}

	switch err := loadSeccomp(cfg.Mode == Log, cfg.extraSyscalls); {
	case err == nil:
		if cfg.Mode == Log {
			applied = append(applied, "seccomp(log only)")
		} else {
			applied = append(applied, "seccomp")
		}
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS):
		skip("seccomp", err)
	default:
		return fmt.Errorf("sandbox: seccomp: %w", err)
	}

	log.Info("sandbox", "applied", strings.Join(applied, ","), "missing", strings.Join(missing, ","), "pid", os.Getpid())
	return nil
}
