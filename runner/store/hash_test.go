package store

import (
	"strings"
	"testing"
)

// TestHash checks the one hash type against the SHA-256 test vector of "abc" (FIPS 180-2,
// appendix B.1) and its parsing rules.
func TestHash(t *testing.T) {
	const abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	h := HashOf([]byte("abc"))
	if h.String() != abc || h.Short() != abc[:12] || h.IsZero() {
		t.Fatalf("HashOf(abc) = %s (short %s), want %s", h, h.Short(), abc)
	}
	if (Hash{}).IsZero() != true {
		t.Error("the zero Hash is not IsZero")
	}
	tests := []struct {
		name, in string
		ok       bool
	}{
		{name: "full", in: abc, ok: true},
		{name: "upper case", in: strings.ToUpper(abc)},
		{name: "short", in: abc[:12]},
		{name: "too long", in: abc + "0"},
		{name: "not hex", in: "g" + abc[1:]},
		{name: "empty", in: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseHash(tc.in)
			if (err == nil) != tc.ok || (tc.ok && got != h) {
				t.Errorf("ParseHash(%q) = %s, %v; want ok %v", tc.in, got, err, tc.ok)
			}
			if (CheckHash(tc.in) == nil) != tc.ok {
				t.Errorf("CheckHash(%q) disagrees with ParseHash", tc.in)
			}
		})
	}
	prefixes := []struct {
		in string
		ok bool
	}{
		{abc[:MinPrefixLen], true}, {strings.ToUpper(abc[:8]), true}, {abc, true},
		{abc[:MinPrefixLen-1], false}, {abc + "0", false}, {"zzzz", false},
	}
	for _, p := range prefixes {
		if (CheckPrefix(p.in) == nil) != p.ok {
			t.Errorf("CheckPrefix(%q) = %v, want ok %v", p.in, CheckPrefix(p.in), p.ok)
		}
	}
}
