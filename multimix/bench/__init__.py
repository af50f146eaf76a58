"""Speed benchmarks: the original-style MultiMix step against ours. Never imported by the library."""
