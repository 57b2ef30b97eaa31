package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ddpmlab/ddpmlab/runner/store"
)

// TestSkippedCheckpointNote checks that `runner export` and `runner sample` say, in one stderr
// line, that they passed over a corrupt newest checkpoint for the older intact one they used.
func TestSkippedCheckpointNote(t *testing.T) {
	root := t.TempDir()
	hash, _, _ := exportFixture(t, root, exportRunSpec{checkpoint: true})
	st, err := store.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	writeFakeCheckpoint(t, st, hash, "ckpt-000000009.ckpt", 9, false)
	writeRunFile(t, st, hash, "checkpoints/ckpt-000000009.ckpt/tensors.ot", []byte("flipped"))
	want := "run " + store.Short(hash) + ": passed over 1 corrupt or partial checkpoint(s) and used " + st.Path(hash, "checkpoints/last.ckpt")

	tests := []struct {
		name string
		args []string
	}{
		{"export", []string{"export", "--store", root, hash, "--weights", "raw", "--out", t.TempDir()}},
		{"sample", []string{"sample", "--store", root, "--run", hash, "--num-images", "1", "--sampler", "ddim", "--steps", "2", "--out", t.TempDir()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lockTorchThread(t)
			var stdout, stderr bytes.Buffer
			if code := mainCode(tt.args, &stdout, &stderr); code != 0 {
				t.Fatalf("runner %s: exit %d\n%s%s", tt.name, code, stdout.String(), stderr.String())
			}
			var notes []string
			for _, line := range strings.Split(stderr.String(), "\n") {
				if strings.Contains(line, "passed over") {
					notes = append(notes, line)
				}
			}
			if len(notes) != 1 || !strings.HasPrefix(notes[0], want) || !strings.Contains(notes[0], "ckpt-000000009.ckpt") {
				t.Errorf("stderr notes %q; want one line starting %q and naming ckpt-000000009.ckpt", notes, want)
			}
		})
	}
}
