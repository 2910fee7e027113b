"""The chaos soak (docs/chaos.md): python -m bench.chaos."""
