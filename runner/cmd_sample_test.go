package main

import "testing"

// The null class that guidance uses can never be requested: --class accepts 0..9 and "all".
func TestParseClass(t *testing.T) {
	tests := []struct {
		arg         string
		conditional bool
		wantErr     bool
		first, last int64
	}{
		{arg: "7", conditional: true, first: 7, last: 7},
		{arg: "0", conditional: true, first: 0, last: 0},
		{arg: "all", conditional: true, first: 0, last: 9},
		{arg: "ALL", conditional: true, first: 0, last: 9},
		{arg: "10", conditional: true, wantErr: true},
		{arg: "-1", conditional: true, wantErr: true},
		{arg: "x", conditional: true, wantErr: true},
		{arg: "7", conditional: false, wantErr: true},
	}
	for _, tt := range tests {
		labels, err := parseClass(tt.arg, tt.conditional, "mnist", 20)
		if tt.wantErr {
			if err == nil {
				t.Errorf("--class %s (conditional %v): want an error, got labels %v", tt.arg, tt.conditional, labels)
			}
			continue
		}
		if err != nil {
			t.Errorf("--class %s: %v", tt.arg, err)
			continue
		}
		if len(labels) != 20 || labels[0] != tt.first || labels[19] != tt.last {
			t.Errorf("--class %s: labels %v, want 20 from %d to %d", tt.arg, labels, tt.first, tt.last)
		}
	}
}
