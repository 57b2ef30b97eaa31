package ddpm

import "math/rand/v2"

// GaussianNoise returns n standard normal values from a PCG generator seeded with seed. It is
// plain Go, so the same seed gives the same values on every machine and device.
func GaussianNoise(seed int64, n int) []float32 {
	r := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(r.NormFloat64())
	}
	return out
}
