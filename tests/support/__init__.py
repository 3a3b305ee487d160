"""The test rig every tier and the benchmarks share: services, processes, receivers and helpers."""
