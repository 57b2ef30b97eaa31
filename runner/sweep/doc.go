// Package sweep implements sweep files: a base config and the keys to vary, expanded into a
// deterministic, deduplicated list of run configs.
//
// # Grammar
//
// A sweep file is TOML. Top-level keys come first (TOML puts any key written after a [table]
// header inside that table):
//
//	name = "learning_rate"            # required; [a-z0-9_-]+; names the manifest and report
//	description = "What a too-high or too-low learning rate does."
//	base = "../configs/default.toml"  # required; relative to the sweep file
//	seeds = [0, 1]                    # optional: every run once per seed (sets `seed`)
//
//	[set]                             # fixed overrides for every run
//	"train.epochs" = 20
//
//	[grid]                            # Cartesian product of these axes
//	"train.lr" = [1e-4, 2e-4, 5e-4]
//
//	[[zip]]                           # one axis whose lists vary together (equal lengths)
//	"train.epochs" = [5, 10]
//	"train.batch_size" = [64, 128]
//
//	[[case]]                          # one explicit extra run: overrides on top of [set]
//	"diffusion.schedule" = "cosine"
//
//	[random]                          # optional: keep n of the distinct configs
//	n = 4
//	seed = 7
//
//	[scale.quick]                     # overrides chosen by --scale quick (the default)
//	"train.epochs" = 2
//	[scale.quick.grid]                # optional: other values for [grid]'s axes at this scale
//	"train.lr" = [5e-4, 2e-3]
//	[scale.full]                      # an empty scale: the base config's settings
//
// Config keys may be written quoted ("train.lr") or dotted (train.lr); both mean the same key,
// and writing one key both ways in a table is an error.
//
// # Expansion
//
// Every run's config is built in layers, each overriding the one before:
//
//	base file → [set] → [scale.S] → --set on the command line → the run's axis values → seed
//
// so a sweep axis always wins (the training_duration sweep's epochs beat quick's epochs),
// and --set beats the file's settings. A --set on a key the sweep varies is an error ("key is
// varied by the sweep"), as is a key that is both in [set] and varied.
//
// A [scale.S.grid] replaces the values of the [grid] axes it names, at scale S only, so a
// quick scale can bracket its own optimum (a small model trained briefly wants a higher learning
// rate than the guide's). It cannot add an axis: a sweep varies the same keys at every scale, and
// its reports compare the same columns.
//
// The runs are the product of the [grid] axes and the [[zip]] groups (in file order, the last
// one varying fastest), followed by the [[case]] runs. With neither grid nor zip nor case,
// the sweep is one run. Then, in this order:
//
//  1. configs with equal hashes collapse to the first (Plan.Duplicates counts the rest);
//  2. [random] keeps n of those distinct configs, chosen by its seed, in their original order;
//  3. each config is repeated once per entry of seeds (config-major order).
//
// Sampling before seeding keeps every seed of a chosen config, so seed variance can be read
// off any sampled point; deduplicating before sampling makes n count distinct runs.
//
// # Errors
//
// Load checks the whole file before anything runs and reports every problem at once, each as
// file:line: field: message: unknown keys (with a suggestion), wrong types, empty axes, zip
// lists of unequal length, keys varied twice, a missing base file, and every expanded config
// at every scale passed through config.Validate, with the error placed on the line of the axis
// value (or [set]/[scale] entry) that caused it. A sweep may not expand to more than MaxRuns
// runs.
package sweep
