"""The simulator contract and its two backends (embedded, CARLA)."""
