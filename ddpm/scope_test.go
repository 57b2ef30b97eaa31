package ddpm

import (
	"errors"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// TestScope checks the exported scope: Drop frees what Keep and Do registered, Release hands a
// tensor to the caller, and the first error is kept while later ops are skipped.
func TestScope(t *testing.T) {
	before := LiveTensors()
	var s Scope
	a := s.Keep(ts.MustOnes([]int64{2, 3}, gotch.Float, gotch.CPU))
	b := s.Do(a.AddScalar(ts.FloatScalar(1), false))
	kept := s.Release(s.Do(b.MulScalar(ts.FloatScalar(2), false)))
	if s.Failed(a, b, kept) || s.Err() != nil {
		t.Fatalf("no op failed, yet Failed = true or Err = %v", s.Err())
	}
	if got := LiveTensors() - before; got != 3 {
		t.Fatalf("live tensors before Drop: %d more, want 3", got)
	}
	s.Drop()
	if got := LiveTensors() - before; got != 1 {
		t.Fatalf("live tensors after Drop: %d more, want 1 (the released one)", got)
	}
	// (1 + 1)·2 = 4 in every element.
	if v := kept.Float64Values(); len(v) != 6 || v[0] != 4 || v[5] != 4 {
		t.Errorf("released tensor = %v, want six 4s", v)
	}
	kept.MustDrop()

	first := errors.New("first")
	if got := s.Do(nil, first); got != nil {
		t.Errorf("Do on error returned %v, want nil", got)
	}
	s.Do(nil, errors.New("second"))
	if !errors.Is(s.Err(), first) || !s.Failed() {
		t.Errorf("Err = %v, Failed = %v; want the first error and true", s.Err(), s.Failed())
	}
	var fresh Scope
	if !fresh.Failed(nil) || fresh.Err() == nil {
		t.Error("a nil input did not fail the scope")
	}
}
