"""Speed and memory benchmarks; each writes ``benchmarks/results/<name>-<device>.json``."""
