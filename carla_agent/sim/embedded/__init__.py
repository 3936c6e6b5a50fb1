"""The embedded simulator: pure Python/NumPy/OpenCV, deterministic, no server."""
