package executor

import (
	"bytes"
	"strings"
	"testing"
)

// TestProgressRoundTrip: what the child writes with WriteProgress is what the parent reads
// with ParseProgress, for a training line and for a sampling-phase line, one line each.
func TestProgressRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		p    ProgressReport
	}{
		{name: "training", p: ProgressReport{Epoch: 2, Epochs: 5, Step: 40, Loss: 0.0625, ImagesPerSec: 812.5, ETASeconds: 31}},
		{name: "phase", p: ProgressReport{Epoch: 5, Epochs: 5, Phase: "samples", Done: 3, Total: 20}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteProgress(&b, tc.p); err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(b.String(), "\n"); n != 1 || !strings.HasSuffix(b.String(), "\n") {
				t.Fatalf("WriteProgress wrote %q: want one line", b.String())
			}
			got, ok := ParseProgress(b.String())
			if !ok || got != tc.p {
				t.Errorf("ParseProgress(%q) = %+v, %v; want %+v", b.String(), got, ok, tc.p)
			}
		})
	}
}
