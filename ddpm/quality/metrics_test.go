package quality

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// table builds a probability table from rows that give (class, probability) and spread the rest
// evenly over the other classes.
func table(rows ...[2]float64) *mat.Dense {
	m := mat.NewDense(len(rows), NumClasses, nil)
	for i, r := range rows {
		k, p := int(r[0]), r[1]
		for j := 0; j < NumClasses; j++ {
			if j == k {
				m.Set(i, j, p)
			} else {
				m.Set(i, j, (1-p)/(NumClasses-1))
			}
		}
	}
	return m
}

func TestClassStats(t *testing.T) {
	var oneOfEach [][2]float64
	for k := 0; k < NumClasses; k++ {
		oneOfEach = append(oneOfEach, [2]float64{float64(k), 1})
	}
	tests := []struct {
		name         string
		probs        *mat.Dense
		recognizable float64
		entropy      float64
		minShare     float64
		shares       map[int]float64 // classes not listed have share 0
	}{
		{
			name:  "one confident sample per class: maximal entropy",
			probs: table(oneOfEach...), recognizable: 1, entropy: math.Log2(10), minShare: 0.1,
			shares: map[int]float64{0: .1, 1: .1, 2: .1, 3: .1, 4: .1, 5: .1, 6: .1, 7: .1, 8: .1, 9: .1},
		},
		{
			name:  "mode collapse: every sample a confident 7",
			probs: table([2]float64{7, 0.95}, [2]float64{7, 0.99}, [2]float64{7, 0.97}), recognizable: 1, entropy: 0, minShare: 0,
			shares: map[int]float64{7: 1},
		},
		{
			name:  "two classes, unsure: 1 bit, nothing recognizable",
			probs: table([2]float64{0, 0.6}, [2]float64{3, 0.5}, [2]float64{0, 0.7}, [2]float64{3, 0.4}), recognizable: 0, entropy: 1, minShare: 0,
			shares: map[int]float64{0: .5, 3: .5},
		},
		{
			name:  "threshold: 0.9 counts, 0.89 does not",
			probs: table([2]float64{1, 0.9}, [2]float64{2, 0.89}, [2]float64{1, 0.91}, [2]float64{2, 0.2}), recognizable: 0.5,
			entropy: 1, minShare: 0, shares: map[int]float64{1: .5, 2: .5},
		},
		{
			name:  "three to one: −(¾·log2 ¾ + ¼·log2 ¼) bits",
			probs: table([2]float64{4, 1}, [2]float64{4, 1}, [2]float64{4, 1}, [2]float64{5, 1}), recognizable: 1,
			entropy: -(0.75*math.Log2(0.75) + 0.25*math.Log2(0.25)), minShare: 0, shares: map[int]float64{4: .75, 5: .25},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := classStats(tc.probs)
			near := func(a, b float64) bool { return math.Abs(a-b) < 1e-12 }
			if !near(m.Recognizable, tc.recognizable) || !near(m.ClassEntropy, tc.entropy) || !near(m.MinClassShare, tc.minShare) {
				t.Errorf("recognizable %v, entropy %v bits, min share %v; want %v, %v, %v",
					m.Recognizable, m.ClassEntropy, m.MinClassShare, tc.recognizable, tc.entropy, tc.minShare)
			}
			for k, got := range m.ClassShares {
				if !near(got, tc.shares[k]) {
					t.Errorf("share of class %d = %v, want %v", k, got, tc.shares[k])
				}
			}
			if r, _ := tc.probs.Dims(); m.N != r {
				t.Errorf("N = %d, want %d", m.N, r)
			}
		})
	}
}

func TestWithinClassDistance(t *testing.T) {
	features := mat.NewDense(5, 2, []float64{
		0, 0, // class 0
		3, 4, // class 0
		0, 0, // class 0
		1, 1, // class 1, alone
		7, 7, // class 2
	})
	got := withinClassDistance(features, []int{0, 0, 0, 1, 2}, NumClasses)
	want := [NumClasses]float64{(5 + 0 + 5) / 3.0} // pairs (0,1), (0,2), (1,2); classes with < 2 rows: 0
	if len(got) != NumClasses {
		t.Fatalf("%d classes, want %d", len(got), NumClasses)
	}
	for k := range want {
		if math.Abs(got[k]-want[k]) > 1e-12 {
			t.Errorf("class %d: %v, want %v", k, got[k], want[k])
		}
	}
}
