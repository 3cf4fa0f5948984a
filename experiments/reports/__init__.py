"""Report modules: each turns an experiment's result dict into the markdown, JSON and plots of
``experiments/results/``."""
