"""Error types. Every user-facing error says what is wrong and how to fix it.

The command line turns a :class:`CarlaAgentError` into one line on stderr and
exit code 2, without a traceback.
"""


class CarlaAgentError(Exception):
    """Base class for errors caused by bad input or environment, not by bugs."""


class ScenarioError(CarlaAgentError):
    """A scenario file is missing, malformed or names an unknown thing."""


class ModelError(CarlaAgentError):
    """A model file is missing, corrupt, or cannot steer."""


class BackendError(CarlaAgentError):
    """A simulator backend cannot be reached or refused a request."""


class DatasetError(CarlaAgentError):
    """A dataset directory is missing or malformed."""


class UnknownNameError(CarlaAgentError, KeyError):
    """A registry lookup failed. The message lists the known names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DiskFullError(CarlaAgentError):
    """The disk (or the folder's file system) has no room left for what must be written."""
