package executor

import (
	"os"
	"regexp"
	"slices"
	"testing"
)

func TestChildEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		environ []string
		want    []string
	}{
		{"unset", []string{"PATH=/bin"}, []string{"GLIBC_TUNABLES=" + MallocTunables}},
		{"a look-alike name", []string{"GLIBC_TUNABLES_OLD=x"}, []string{"GLIBC_TUNABLES=" + MallocTunables}},
		{"set by the user", []string{"GLIBC_TUNABLES=glibc.malloc.arena_max=4"}, nil},
		{"set empty by the user", []string{"GLIBC_TUNABLES="}, nil},
	} {
		if got := ChildEnv(tc.environ); !slices.Equal(got, tc.want) {
			t.Errorf("%s: ChildEnv(%q) = %q, want %q", tc.name, tc.environ, got, tc.want)
		}
	}
}

// The benchmark script's Go side runs with what the runner's children get, so its figures are
// those of a real run.
func TestBenchUsesMallocTunables(t *testing.T) {
	script, err := os.ReadFile("../scripts/bench.sh")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^malloc_tunables=(\S+)$`).FindSubmatch(script)
	if m == nil || string(m[1]) != MallocTunables {
		t.Errorf("bench.sh sets malloc_tunables=%q, want %q (runner/executor.MallocTunables)", m, MallocTunables)
	}
}
