package main

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ddpmlab/ddpmlab/runner/store"
)

// TestListRowSamplingOnly checks that `runner list` shows a sampling-only run with its source
// model's dataset and from_run, not the defaults its own config.toml carries.
func TestListRowSamplingOnly(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "runs"))
	if err != nil {
		t.Fatal(err)
	}
	create := func(configTOML, canonical string) string {
		t.Helper()
		sum := sha256.Sum256([]byte(canonical))
		hash := hex.EncodeToString(sum[:])
		if _, err := st.Create(hash, []byte(configTOML), []byte(canonical)); err != nil {
			t.Fatal(err)
		}
		return hash
	}
	source := create("[data]\ndataset = \"fashion_mnist\"\n[diffusion]\nschedule = \"cosine\"\n", `{"a":1}`)
	sampling := create("[sample]\nfrom_run = \""+source+"\"\n", `{"b":1}`)
	tests := []struct {
		hash string
		want []string
	}{
		{source, []string{store.Short(source), "fashion_mnist", "cosine", "pending"}},
		{sampling, []string{store.Short(sampling), "fashion_mnist", "cosine", "from_run=" + store.Short(source), "\t-\t-\t-\t"}},
	}
	for _, tc := range tests {
		info, err := st.Info(tc.hash)
		if err != nil {
			t.Fatal(err)
		}
		row := listRow(st, info)
		for _, w := range tc.want {
			if !strings.Contains(row, w) {
				t.Errorf("listRow(%s) = %q, want it to contain %q", store.Short(tc.hash), row, w)
			}
		}
	}
}
