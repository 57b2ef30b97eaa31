// Package quality measures the quality of generated images with a small reference classifier
// trained on each dataset: MNIST and Fashion-MNIST, and any other labelled dataset of any image
// shape (CIFAR-10, a folder with class subfolders).
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
// Other datasets. [Options.Train] and [Options.Test] hand LoadOrTrainWith the loaded splits of
// a dataset without IDX files, or of MNIST converted to another shape. The network then takes
// their C×H×W images (its first convolution has C input channels, its flattened size is
// 64·⌊H/4⌋·⌊W/4⌋) and has one output per class (K = Options.Classes, or the largest label plus
// one). It is trained on the train split with [GenericConfig] (about 100,000 images' worth of
// steps; its accuracy is not known in advance) and its test accuracy is recorded in
// classifier.json (Info.TestAccuracy, Info.Shape). Its cache key adds the network shape and a
// digest of both splits' content and of the dataset's own digest (a folder's), so changing the
// images trains a new classifier. MNIST's and Fashion-MNIST's keys, networks and numbers are
// unchanged.
//
// Unlabelled datasets. Without labels there is no classifier to train, so there is no
// "recognizable" share and no class metrics. FD is then measured in the features of a fixed
// random network ([RandomFeatures]): the same CNN, untrained, its weights drawn from a seeded
// PCG generator, its 128 fc1 ReLU features standing in for the trained ones. Random
// convolutional features still respond to edges, colour and texture, so FD in them orders
// samples by closeness to the data (TestRandomFeatures: real images score far below noise), but
// its values are on their own scale: compare them only between runs on the same dataset. The
// metrics say so: "classifier": "none" and "fd_features" name the feature space, and the class
// metrics are left out of the JSON, never written as 0.
//
// Everything that calls libtorch (training, [Classifier.Features], [Evaluate], [ClassAccuracy])
// must run on a goroutine locked to its OS thread (runtime.LockOSThread), because libtorch's
// grad mode is per thread. [FrechetDistance] and [Stats] are plain Go (gonum).
package quality
