package ddpm

import (
	"fmt"
	"math"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// Loss weightings (train.loss_weighting) and timestep samplers (train.timestep_sampling).
const (
	WeightingNone   = "none"
	WeightingMinSNR = "min_snr"

	TimestepsUniform    = "uniform"
	TimestepsStratified = "stratified"
)

// MinSNRWeights is the Min-SNR-γ loss weight of every timestep (Hang et al. 2023, §3.4), with
// SNR_t = ᾱ_t/(1 − ᾱ_t):
//
//	ε-prediction: w_t = min(SNR_t, γ)/SNR_t
//	v-prediction: w_t = min(SNR_t, γ)/(SNR_t + 1)
//
// Both weigh the loss as the x_0-loss clamped at γ would be: the nearly clean timesteps, whose
// SNR is huge, stop dominating the gradient. An ε weight at SNR_t = 0 is its limit, 1.
func MinSNRWeights(alphasCumprod []float64, gamma float64, prediction string) []float64 {
	w := make([]float64, len(alphasCumprod))
	for t, a := range alphasCumprod {
		snr := a / (1 - a)
		switch {
		case prediction == PredictV:
			w[t] = min(snr, gamma) / (snr + 1)
		case snr == 0:
			w[t] = 1
		default:
			w[t] = min(snr, gamma) / snr
		}
	}
	return w
}

// weightedMSE is the mean over the batch of weights[t_b] × (the mean squared error of image b):
// (1/B) Σ_b w_{t_b} · (1/CHW) Σ_pixels (predicted − target)². predicted and target are
// (B,C,H,W), t is (B) and weights is (T).
func (s *scope) weightedMSE(predicted, target, t, weights *ts.Tensor) *ts.Tensor {
	diff := s.sub(predicted, target)
	squared := s.mul(diff, diff)
	if s.failed(squared, weights, t) {
		return nil
	}
	perImage := s.do(squared.MeanDim([]int64{1, 2, 3}, false, gotch.Float, false)) // (B)
	w := s.do(weights.IndexSelect(0, t, false))                                    // (B)
	weighted := s.mul(w, perImage)
	if s.failed(weighted) {
		return nil
	}
	return s.do(weighted.Mean(gotch.Float, false))
}

// stratifiedTimesteps spreads a batch of n timesteps evenly over 0..T−1 with one random offset
// u ~ U[0, 1): t_i = ⌊T·((u + i/n) mod 1)⌋. Each t_i is still uniform, but the batch covers
// every part of the schedule, which lowers the variance of the loss (the low-discrepancy
// sampler of Kingma et al. 2021, Variational Diffusion Models).
func stratifiedTimesteps(T int, n int64, u float64) []int64 {
	out := make([]int64, n)
	for i := range out {
		f := u + float64(i)/float64(n)
		f -= math.Floor(f)
		out[i] = min(int64(float64(T)*f), int64(T-1))
	}
	return out
}

// sampleTimesteps draws the batch's timesteps (Algorithm 1, line 3) from libtorch's seeded
// generator: uniform on 0..T−1, or stratified.
func (tr *Trainer) sampleTimesteps(s *scope, n int64, device gotch.Device) *ts.Tensor {
	if s.failed() {
		return nil
	}
	T := tr.Diffusion.T
	switch tr.Config.TimestepSampling {
	case TimestepsUniform, "":
		return s.do(ts.Randint(int64(T), []int64{n}, gotch.Int64, device))
	case TimestepsStratified:
		r := s.do(ts.Rand([]int64{1}, gotch.Float, gotch.CPU))
		if s.failed(r) {
			return nil
		}
		u, err := scalar(r)
		if err != nil {
			s.err = err
			return nil
		}
		return s.fromInt64(stratifiedTimesteps(T, n, u), device)
	}
	s.err = fmt.Errorf("unknown timestep sampling %q (want %q or %q)", tr.Config.TimestepSampling, TimestepsUniform, TimestepsStratified)
	return nil
}
