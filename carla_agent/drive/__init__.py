"""The closed loop: agents, the expert, the runner, metrics."""
