"""Drive logs, the recorder, videos, replay and reports."""
