package reports

import "github.com/ddpmlab/ddpmlab/runner/store"

// RunLossPlot draws one run's per-step loss as a PNG: the raw loss faint, its moving average
// solid, on a log-scale y axis when logY is set. It returns nil when there are no losses.
func RunLossPlot(title string, loss []store.LossRow, logY bool) ([]byte, error) {
	return lossChart(title, []curve{{label: "moving average", color: runColor(0), loss: [][]store.LossRow{loss}}}, logY)
}
