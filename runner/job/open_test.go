package job

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ddpmlab/ddpmlab/ddpm"
	"github.com/ddpmlab/ddpmlab/runner/store"
)

// TestOpenRun checks how the opener resolves a sampling-only run's source, and the errors it
// gives when sample.from_run names no trained run or the source has no checkpoint.
func TestOpenRun(t *testing.T) {
	st, create := testStore(t)
	source := create("[data]\ndataset = \"fashion_mnist\"\n[diffusion]\nschedule = \"cosine\"\n", `{"a":1}`)
	sampling := create("[sample]\nfrom_run = \""+store.Short(source)+"\"\n", `{"b":1}`)
	samplesSampling := create("[sample]\nfrom_run = \""+sampling+"\"\n", `{"c":1}`)
	unknown := create("[sample]\nfrom_run = \"ffffffffffff\"\n", `{"d":1}`)

	t.Run("trained run", func(t *testing.T) {
		o, err := OpenRun(st, source)
		if err != nil {
			t.Fatal(err)
		}
		if o.Source != source || o.SourceDir != st.RunDir(source) || o.Config.Diffusion.Schedule != "cosine" {
			t.Errorf("opened %s: source %s in %s, schedule %q; want itself and cosine", store.Short(source), o.Source, o.SourceDir, o.Config.Diffusion.Schedule)
		}
	})
	t.Run("sampling-only run", func(t *testing.T) {
		o, err := OpenRun(st, sampling)
		if err != nil {
			t.Fatal(err)
		}
		if o.Hash != sampling || o.Source != source || o.SourceDir != st.RunDir(source) {
			t.Errorf("opened: hash %s, source %s in %s; want %s from %s", o.Hash, o.Source, o.SourceDir, sampling, source)
		}
		if o.Config.Sample.FromRun != source || o.Config.Data.Dataset != "fashion_mnist" || o.Config.Diffusion.Schedule != "cosine" {
			t.Errorf("config: from_run %q, dataset %q, schedule %q; want the full source hash and its data and schedule",
				o.Config.Sample.FromRun, o.Config.Data.Dataset, o.Config.Diffusion.Schedule)
		}
		// No checkpoint yet: an error wrapping ddpm.ErrNoCheckpoint, and nothing passed over.
		if err := o.FindCheckpoint(); !errors.Is(err, ddpm.ErrNoCheckpoint) {
			t.Errorf("FindCheckpoint without checkpoints: %v, want ddpm.ErrNoCheckpoint", err)
		}
		if note := o.SkippedNote(); note != "" {
			t.Errorf("SkippedNote with nothing skipped: %q, want empty", note)
		}
	})
	for name, tc := range map[string]struct{ hash, want string }{
		"source is itself sampling-only": {samplesSampling, "is itself a sampling-only run"},
		"unknown source":                 {unknown, `sample.from_run = "ffffffffffff"`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := OpenRun(st, tc.hash)
			var se *SourceError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("OpenRun: %v; want a *SourceError containing %q", err, tc.want)
			}
		})
	}
	t.Run("skipped note", func(t *testing.T) {
		o := &OpenedRun{Source: source, Checkpoint: "/x/v2", Skipped: []error{errors.New("a"), errors.New("b")}}
		want := "run " + store.Short(source) + ": passed over 2 corrupt or partial checkpoint(s) and used /x/v2: a; b"
		if got := o.SkippedNote(); got != want {
			t.Errorf("SkippedNote = %q, want %q", got, want)
		}
	})
}

// testStore is an empty store in a temporary folder, and a function that records a run in it
// from its config.toml and canonical form (named by the SHA-256 of the canonical form), without
// any training.
func testStore(t *testing.T) (*store.Store, func(configTOML, canonical string) string) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "runs"))
	if err != nil {
		t.Fatal(err)
	}
	return st, func(configTOML, canonical string) string {
		t.Helper()
		sum := sha256.Sum256([]byte(canonical))
		hash := hex.EncodeToString(sum[:])
		if _, err := st.Create(hash, []byte(configTOML), []byte(canonical)); err != nil {
			t.Fatal(err)
		}
		return hash
	}
}
