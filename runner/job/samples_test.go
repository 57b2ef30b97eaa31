package job

import "testing"

func TestGridColumns(t *testing.T) {
	blocks := func(classes, per int) []int64 {
		var l []int64
		for c := 0; c < classes; c++ {
			for i := 0; i < per; i++ {
				l = append(l, int64(c))
			}
		}
		return l
	}
	tests := []struct {
		name   string
		labels []int64
		n      int
		want   int
	}{
		{"unconditional", nil, 64, 8},
		{"unconditional, not square", nil, 40, 7},
		{"10 classes of 4: a row per class", blocks(10, 4), 40, 4},
		{"10 classes of 10", blocks(10, 10), 100, 10},
		{"one class", blocks(1, 64), 64, 8},
		{"uneven blocks", []int64{0, 0, 1, 2, 2, 2}, 6, 3},
		{"interleaved", []int64{0, 1, 0, 1}, 4, 2},
		{"a class twice", []int64{0, 0, 1, 1, 0, 0}, 6, 3},
	}
	for _, tc := range tests {
		if got := gridColumns(tc.labels, tc.n); got != tc.want {
			t.Errorf("%s: gridColumns = %d, want %d", tc.name, got, tc.want)
		}
	}
}
