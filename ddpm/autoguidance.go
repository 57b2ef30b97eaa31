package ddpm

import "github.com/sugarme/gotch/ts"

// autoGuidedNoise is ε̂ with autoguidance (Karras et al. 2024, "Guiding a Diffusion Model with
// a Bad Version of Itself", eq. 2): the model's prediction is pushed away from that of a weaker
// model of the same data, a smaller or shorter-trained one,
//
//	D_w(x; σ) = w_K·D_1(x; σ) + (1 − w_K)·D_0(x; σ),   w_K = 1 + w,
//
// which, since D = (x − σ·ε)/α is affine in ε with coefficients summing to one, is the same
// combination of the noise predictions:
//
//	ε̂ = (1 + w)·ε_good − w·ε_bad
//
// w = 0 is the model alone. The weights follow sample.guidance's (1 + w, −w) convention, so
// Karras's w_K = 2 is w = 1 here. It needs no class label: it works for unconditional models.
func autoGuidedNoise(s *scope, good, bad *ts.Tensor, w float64) *ts.Tensor {
	return s.sub(s.scale(good, 1+w), s.scale(bad, w))
}
