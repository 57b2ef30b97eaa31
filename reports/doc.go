// Package reports implements the offline HTML report of a sweep: one page that answers
// "which setting won, beyond noise, and how do the samples differ?" without opening any
// other file.
//
// Build reads a sweep manifest and its runs from the run store (through runner/store) and
// writes, under <Out>/<sweep>/:
//
//	index.html         header (what varies, when, code and libtorch versions, machine, scale),
//	                   the verdict, the results table, the guide's expected results beside a
//	                   training-duration sweep, the final sample grids, quality charts with
//	                   error bars, loss charts (linear and log) and each run's grids over epochs
//	runs/<short>.html  one page per run: config, hash, rerun command, status, summary, loss,
//	                   samples, denoising strip and GIF, fingerprint, tail of stderr.log
//	img/               every image, copied or drawn (gonum/plot), linked relatively
//	results.csv        one row per run, written with gota, with the Wilson bounds of each
//	                   share and FD's bootstrap bounds; results.json the same as objects
//	report.json        the sweep's line in the index
//
// Runs that differ only in their seed (a sweep with `seeds`) form one setting: one row with
// the mean ± sd across seeds, the seeds' rows folded below it, and one loss curve with the
// seeds' range as a band. Shares of evaluation samples (recognizable %, class accuracy) carry
// the 95% Wilson interval of their n samples (n from summary.json's metrics.n, else the config's
// eval.num_samples). FD carries the 95% bootstrap interval over its samples that the run
// recorded (summary.json's fd_lo, fd_hi, with the replicates in fd_bootstrap), shown as
// "289 [270, 310]"; runs evaluated before it was recorded have none.
//
// The verdict judges recognizable %, class accuracy, FD and final loss: for each it says
// which setting wins beyond noise (a two-sided test at 95%: two-proportion z for single runs'
// shares, the paired bootstrap of the difference for single runs' FD, Welch's t across seeds),
// or that none does, and then how many samples per run or seeds per setting would tell the
// leader from the runner-up at 80% power (stats.go).
//
// Compare puts two sweeps on one page (<Out>/<A>_vs_<B>/), pairing the settings they share.
// Build and Compare then rewrite <Out>/index.html (BuildIndex), which lists every page. The
// pages are html/template output with a little inline CSS and JavaScript (table sorting and
// a self-check used by the browser test), fit a 1280-pixel window, and need no network: the
// folder opens from file:// and can be zipped and sent.
package reports
