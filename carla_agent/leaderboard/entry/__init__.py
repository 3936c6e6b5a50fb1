"""The file the Leaderboard's evaluator loads by path (``--agent``)."""
