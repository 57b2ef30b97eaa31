// Package reports implements the offline HTML report of a sweep: one page that answers
// "which setting won, and how do the samples differ?" without opening any other file.
//
// Build reads a sweep manifest and its runs from the run store (through runner/store) and
// writes, under <Out>/<sweep>/:
//
//	index.html         header (what varies, when, code and libtorch versions, machine, scale),
//	                   a one-line verdict, the sortable results table with the best value of
//	                   each column starred, loss charts (linear and log), final sample grids
//	                   side by side and each run's grids over epochs
//	runs/<short>.html  one page per run: config, hash, rerun command, status, summary, loss,
//	                   samples, denoising strip and GIF, fingerprint, tail of stderr.log
//	img/               every image, copied or drawn (gonum/plot), linked relatively
//	results.csv        the table, written with gota; results.json the same as objects
//	report.json        the sweep's line in the index
//
// It then rewrites <Out>/index.html (BuildIndex), which lists every sweep. The pages are
// html/template output with a little inline CSS and JavaScript (table sorting and a
// self-check used by the browser test), and need no network: the folder opens from
// file:// and can be zipped and sent.
package reports
