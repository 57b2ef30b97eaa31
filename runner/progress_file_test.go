package main

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/ddpmlab/ddpmlab/runner/serve"
)

// The progress tee passes every byte on to the parent and keeps progress.json at the newest
// record: the first at once, later ones within the interval on Close (or when it ends).
func TestProgressTee(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []string // as the child's writer receives them
		every  time.Duration
		// wantBefore is the step in progress.json before Close, -1 for no file.
		wantBefore, wantAfter int
	}{
		{name: "first record at once", writes: []string{`{"epoch":1,"epochs":3,"step":10}` + "\n"}, every: time.Hour, wantBefore: 10, wantAfter: 10},
		{name: "later ones wait for the interval", writes: []string{`{"epoch":1,"epochs":3,"step":10}` + "\n", `{"epoch":2,"epochs":3,"step":20}` + "\n", `{"epoch":3,"epochs":3,"step":30}` + "\n"}, every: time.Hour, wantBefore: 10, wantAfter: 30},
		{name: "a line in pieces", writes: []string{`{"epoch":1,"epo`, `chs":3,"step":7}` + "\n"}, every: time.Hour, wantBefore: 7, wantAfter: 7},
		{name: "not progress", writes: []string{"hello\n", "{broken\n"}, every: time.Hour, wantBefore: -1, wantAfter: -1},
		{name: "no interval", writes: []string{`{"step":1}` + "\n", `{"step":2}` + "\n"}, every: 0, wantBefore: 2, wantAfter: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var parent bytes.Buffer
			tee := newProgressTee(&parent, dir, tc.every)
			var all string
			for _, w := range tc.writes {
				n, err := tee.Write([]byte(w))
				if err != nil || n != len(w) {
					t.Fatalf("Write: %d, %v", n, err)
				}
				all += w
			}
			step := func() int {
				p, err := serve.ReadRunProgress(dir)
				if err != nil {
					return -1
				}
				return p.Step
			}
			if got := step(); got != tc.wantBefore {
				t.Errorf("before Close: step %d, want %d", got, tc.wantBefore)
			}
			tee.Close()
			if got := step(); got != tc.wantAfter {
				t.Errorf("after Close: step %d, want %d", got, tc.wantAfter)
			}
			if parent.String() != all {
				t.Errorf("the parent got %q, want %q", parent.String(), all)
			}
			if _, err := fmt.Fprintln(tee, `{"step":99}`); err != nil {
				t.Fatal(err)
			}
			if got := step(); got != tc.wantAfter {
				t.Errorf("a record after Close was written: step %d", got)
			}
		})
	}
}
