"""DeepLense's benchmarks: scripts that run the package's public pipeline at several scales and write the tables of
benchmarks/results/. Run one from the repository's root as a module, e.g. `python -m benchmarks.results --scale test`;
`benchmarks.common` holds what they share."""
