"""claus.data: datasets, the synthetic benchmark, frame store, label state, pseudo-labels, clips."""
