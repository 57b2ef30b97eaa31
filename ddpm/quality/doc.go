// Package quality measures the quality of generated MNIST and Fashion-MNIST images with a
// small reference classifier trained on each dataset.
//
// The classifier is a two-layer CNN (conv 32, pool, conv 64, pool, linear 128, linear 10).
// Its 128 ReLU activations before the last layer are the feature space in which the Fréchet
// distance (FD; FID with this classifier in place of Inception) is measured, and its class
// probabilities give the share of recognizable samples and how evenly the classes are covered.
// [LoadOrTrain] trains it once per dataset and caches it under
// ~/.cache/ddpmlab/classifiers (or $DDPMLAB_CACHE/classifiers), keyed by the content of the
// data files and the training config.
//
// Measured on 2 CPU cores shared with other jobs (load average about 5), with [DefaultConfig]:
// MNIST (the 9,003-image mnist-10k subset, 6 epochs) reaches 98.4% on its 997 test images in
// 57 s of training; Fashion-MNIST (60,000 images, 2 epochs) reaches 91.0% on its 10,000 test
// images in 343 s. Once cached, loading takes milliseconds.
//
// FD values are only comparable between runs with the same dataset, classifier (cache key) and
// sample count: FD is biased upwards for small samples. [Metrics.FDReal], the FD between two
// halves of the test split, is the level real data reaches with half the test split; [RealFloor]
// is the level n real train images reach, the floor for a run measured with n samples.
// Measured (TestEvaluateReal): on MNIST the floor is 80 at n = 100 and 10.2 at n = 1,000; on
// Fashion-MNIST 18.3 and 1.9.
//
// Everything that calls libtorch (training, [Classifier.Features], [Evaluate], [ClassAccuracy])
// must run on a goroutine locked to its OS thread (runtime.LockOSThread), because libtorch's
// grad mode is per thread. [FrechetDistance] and [Stats] are plain Go (gonum).
package quality
