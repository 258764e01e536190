"""Side-by-side training benchmarks: python -m benchmarks."""
