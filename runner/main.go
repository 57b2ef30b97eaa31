// Command runner is ddpmlab's CLI: it trains, samples, sweeps and reports DDPM experiments.
//
//	runner run configs/quick.toml            train one config
//	runner sweep experiments/learning_rate.toml
//	runner report learning_rate              rebuild a sweep's HTML report
//	runner rerun 3fa9c2 --verify             retrain a recorded run and compare its losses
//
// Run `runner help` for every subcommand and `runner CMD --help` for its flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strings"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/ddpmlab/ddpmlab/runner/config"
	"github.com/ddpmlab/ddpmlab/runner/serve"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// codeVersion is set at link time by the Taskfile (-ldflags "-X main.codeVersion=…").
var codeVersion = "dev"

func init() {
	// libtorch's grad mode and gotch's last-error slot are per OS thread: keep the main
	// goroutine, which does all libtorch work, on the main thread.
	runtime.LockOSThread()
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	usage   string // arguments after the name
	hidden  bool
	run     func(ctx context.Context, env *env, args []string) error
}

// env is what every command gets: output streams and the root logger.
type env struct {
	stdout, stderr io.Writer
	log            zerolog.Logger
}

func commands() []command {
	return []command{
		{name: "run", summary: "train, sample and evaluate one config", usage: "CONFIG [--set key=value ...] [flags]", run: runRun},
		{name: "sweep", summary: "run every config of a sweep file, then write its report", usage: "FILE [--dry-run] [--jobs N] [--scale quick|full] [--set key=value ...] [flags]", run: runSweep},
		{name: "report", summary: "rebuild a sweep's HTML comparison report from the store", usage: "SWEEP | --compare A B", run: runReport},
		{name: "rerun", summary: "run a recorded config again from its hash", usage: "HASH [--verify]", run: runRerun},
		{name: "list", summary: "list runs in the store", usage: "[--sweep S] [--status STATE]", run: runList},
		{name: "show", summary: "show one run: status, key parameters, losses, files", usage: "HASH", run: runShow},
		{name: "explain", summary: "show exactly what went into a run's hash", usage: "HASH|CONFIG", run: runExplain},
		{name: "eval", summary: "measure a finished run's samples: FD, recognizable %, class coverage", usage: "--run HASH [--num-samples N]", run: runEval},
		{name: "sample", summary: "draw samples from a trained run's checkpoint", usage: "--run HASH [--num-images N] [--seed N] [--show-intermediate]", run: runSample},
		{name: "export", summary: "write a run's weights as safetensors for PyTorch (runner/scripts/ddpm_torch.py)", usage: "HASH [--weights ema|raw] [--out DIR]", run: runExport},
		{name: "visualize", summary: "draw the forward-diffusion grid of a dataset", usage: "[--dataset NAME] [--out FILE]", run: runVisualize},
		{name: "status", summary: "show a sweep's runs: store state merged with Slurm's", usage: "SWEEP", run: runStatus},
		{name: "data", summary: "locate or download datasets, or make a demo folder dataset", usage: "locate|download NAME | demo-folder --out DIR [--size 32] [--per-class 500]", run: runData},
		{name: "verify", summary: "check every run folder against its status; repair stale locks and abandoned runs", usage: "[--dry-run]", run: runVerify},
		{name: "serve", summary: "browse the store and generate images live in a web browser", usage: "[--store DIR] [--addr 127.0.0.1:8080] [--public] [--jobs N] [--threads N]", run: runServe},
		{name: "_run-one", summary: "execute one run (used by sweep executors)", usage: "--store DIR HASH", hidden: true, run: runOne},
		{name: serve.GenerateCommand, summary: "run one generation for runner serve (JSON lines on stdout)", usage: "--store DIR --run HASH [flags]", hidden: true, run: runGenerate},
	}
}

func main() {
	os.Exit(mainCode(os.Args[1:], os.Stdout, os.Stderr))
}

// mainCode runs the CLI and returns the process exit code.
func mainCode(args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr, log: newLogger(stderr)}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			args = []string{args[1], "--help"}
		} else {
			printHelp(stdout)
			return 0
		}
	}
	var cmd *command
	for _, c := range commands() {
		if c.name == args[0] {
			c := c
			cmd = &c
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "runner: unknown command %q\n\n", args[0])
		printHelp(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cmd.run(ctx, e, args[1:])
	return exitCode(stderr, cmd.name, err)
}

// exitCode reports err and chooses the exit code in one place.
func exitCode(stderr io.Writer, name string, err error) int {
	var code codedError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &code):
		if code.err != nil {
			fmt.Fprintf(stderr, "runner %s: %v\n", name, code.err)
		}
		return code.code
	case errors.As(err, new(config.ErrorList)):
		fmt.Fprintf(stderr, "runner %s: invalid configuration:\n%v\n", name, err)
		return 2
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "runner %s: %v\n(run `runner %s --help` for usage)\n", name, err, name)
		return 2
	case store.IsAlreadyLocked(err):
		fmt.Fprintf(stderr, "runner %s: %v\n", name, err)
		return 4
	default:
		fmt.Fprintf(stderr, "runner %s: %v\n", name, err)
		return 1
	}
}

// codedError carries a specific exit code (and an optional message).
type codedError struct {
	code int
	err  error
}

func (c codedError) Error() string {
	if c.err == nil {
		return fmt.Sprintf("exit status %d", c.code)
	}
	return c.err.Error()
}

// usageError is a mistake in the command line.
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func printHelp(w io.Writer) {
	fmt.Fprintf(w, "runner: declarative DDPM experiments (ddpmlab %s)\n\nUsage:\n  runner COMMAND [arguments]\n\nCommands:\n", codeVersion)
	for _, c := range commands() {
		if !c.hidden {
			fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
		}
	}
	fmt.Fprintf(w, "\nRun `runner COMMAND --help` for a command's flags.\n"+
		"The run store is --store, else $DDPMLAB_STORE, else ./runs.\n")
}

// newFlagSet makes a command's flag set with a usage message listing its flags.
func newFlagSet(e *env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("runner "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	for _, c := range commands() {
		if c.name == name {
			c := c
			fs.Usage = func() {
				fmt.Fprintf(e.stderr, "Usage: runner %s %s\n\n%s.\n\nFlags:\n", c.name, c.usage, upperFirst(c.summary))
				fs.PrintDefaults()
			}
		}
	}
	return fs
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// parseArgs parses flags that may come before or after positional arguments
// (`runner run configs/x.toml --set a=b`) and returns the positional ones.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		if args[0] == "--" {
			return append(positional, args[1:]...), nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// multiFlag collects a repeatable flag such as --set.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// storeFlag registers --store with its default from $DDPMLAB_STORE or ./runs.
func storeFlag(fs *flag.FlagSet) *string {
	def := os.Getenv("DDPMLAB_STORE")
	if def == "" {
		def = "runs"
	}
	return fs.String("store", def, "run store folder (env DDPMLAB_STORE)")
}

// oneRun parses the arguments of a command that names one run (any unique hash prefix) and
// opens the store it lives in.
func oneRun(fs *flag.FlagSet, root *string, args []string) (*store.Store, string, error) {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return nil, "", err
	}
	if len(pos) != 1 {
		return nil, "", usagef("want one run hash (any unique prefix)")
	}
	st, err := store.Open(*root)
	if err != nil {
		return nil, "", err
	}
	hash, err := resolveRun(st, pos[0])
	if err != nil {
		return nil, "", err
	}
	return st, hash, nil
}

// resolveRun turns a hash prefix into a full hash of the store.
func resolveRun(st *store.Store, prefix string) (string, error) {
	h, err := st.Resolve(prefix)
	if err != nil {
		return "", fmt.Errorf("run %q: %w", prefix, err)
	}
	return h, nil
}

// newLogger is the root logger: human-readable on a terminal, JSON otherwise.
func newLogger(w io.Writer) zerolog.Logger {
	if isTerminal(w) {
		return zerolog.New(zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05"}).With().Timestamp().Logger()
	}
	return zerolog.New(w).With().Timestamp().Logger()
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
