package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"

	"github.com/ddpmlab/ddpmlab/runner/serve"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// runServe is `runner serve`: a web server on the store (see package serve). It binds
// 127.0.0.1 unless --public is given, and then warns.
func runServe(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "serve")
	root := storeFlag(fs)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on (host:port)")
	public := fs.Bool("public", false, "allow a non-loopback --addr: anyone who can reach it can browse the store and use its CPUs")
	jobs := fs.Int("jobs", 1, "generations that run at once; the others queue")
	threads := fs.Int("threads", 0, "libtorch threads per generation (0 = the CPUs shared among --jobs)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("serve takes no arguments, got %q", pos)
	}
	if *jobs < 1 || *jobs > 64 {
		return usagef("--jobs must be in 1..64, got %d", *jobs)
	}
	loopback, err := serve.IsLoopbackAddr(*addr)
	if err != nil {
		return usagef("--addr: %v", err)
	}
	if !loopback && !*public {
		return usagef("--addr %s is not a loopback address: pass --public as well to serve the store to other machines", *addr)
	}
	if !loopback {
		fmt.Fprintf(e.stderr, "WARNING: serving %s on %s: anyone who can reach this address can read the store and start generations; there is no authentication.\n", *root, *addr)
	}
	st, err := store.Open(*root)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the runner binary: %w", err)
	}
	if *threads <= 0 {
		*threads = max(1, runtime.NumCPU() / *jobs)
	}
	s, err := serve.New(serve.Options{
		Store: st, Exe: exe, Slots: *jobs, Public: *public, Version: codeVersion, Log: e.log,
		ChildEnv: []string{fmt.Sprintf("DDPMLAB_THREADS=%d", *threads)},
	})
	if err != nil {
		return err
	}
	defer s.Close()
	return s.ListenAndServe(ctx, *addr, func(a net.Addr) {
		fmt.Fprintf(e.stdout, "serving %s on http://%s/ (%d generation(s) at a time, %d threads each; Ctrl-C stops)\n", st.Root, a, *jobs, *threads)
	})
}
