package ddpm

import (
	"fmt"
	"math"
)

// Learning-rate schedule names (train.lr_schedule).
const (
	LRConstant = "constant"
	LRCosine   = "cosine"
	LRLinear   = "linear"
)

// LRAt is the learning rate of the update made after step earlier updates (step = 0 is the
// first update), for a base rate base, warmup warm-up steps and total updates in all:
//
//	warm-up, step < warmup:  lr = base·(step + 1)/warmup   (linear from 0; the first update uses base/warmup)
//	then, with progress p = (step − warmup)/(total − warmup) in [0, 1]:
//	  constant: lr = base
//	  cosine:   lr = base·½(1 + cos(π·p))   (Loshchilov & Hutter 2017, eq. 5, with η_min = 0 and one cycle)
//	  linear:   lr = base·(1 − p)
//
// It depends on the step number only, so a run resumed from a checkpoint (which restores the
// step) continues on the same schedule. total must be > 0 for cosine and linear.
func LRAt(schedule string, base float64, warmup, total, step int64) (float64, error) {
	if step < warmup {
		return base * float64(step+1) / float64(warmup), nil
	}
	if schedule == LRConstant || schedule == "" {
		return base, nil
	}
	if total <= 0 {
		return 0, fmt.Errorf("lr schedule %q needs the total number of steps", schedule)
	}
	p := min(1, float64(step-warmup)/float64(max(1, total-warmup)))
	switch schedule {
	case LRCosine:
		return base * 0.5 * (1 + math.Cos(math.Pi*p)), nil
	case LRLinear:
		return base * (1 - p), nil
	}
	return 0, fmt.Errorf("unknown lr schedule %q (want %q, %q or %q)", schedule, LRConstant, LRCosine, LRLinear)
}
