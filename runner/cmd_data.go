package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ddpmlab/ddpmlab/ddpm/data"
)

// runData locates or downloads datasets: `runner data locate|download NAME`.
func runData(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "data")
	dir := fs.String("dir", "", "download: destination folder (default: ~/.cache/ddpmlab/data/NAME)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("want `locate NAME` or `download NAME`, NAME one of %v", data.Names())
	}
	switch pos[0] {
	case "locate":
		found, err := data.Locate(pos[1], "")
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, found)
		return nil
	case "download":
		dest := *dir
		if dest == "" {
			cache := os.Getenv("DDPMLAB_CACHE")
			if cache == "" {
				home, err := os.UserHomeDir()
				if err != nil {
					return err
				}
				cache = filepath.Join(home, ".cache", "ddpmlab")
			}
			dest = filepath.Join(cache, "data", pos[1])
		}
		if err := data.Download(ctx, pos[1], dest, e.stderr); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, dest)
		return nil
	default:
		return usagef("unknown data action %q: want locate or download", pos[0])
	}
}
