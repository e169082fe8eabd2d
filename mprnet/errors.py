"""Error types the command line turns into one readable line instead of a traceback."""


class MPRNetError(Exception):
    """Base class for errors caused by the user's input (files, config, checkpoints)."""


class ConfigError(MPRNetError, ValueError):
    """A config value is missing, unknown or of the wrong type; the message names the key."""


class DataError(MPRNetError, ValueError):
    """A data file is missing, corrupt or does not match its pair; the message names the file."""


class CheckpointError(MPRNetError, ValueError):
    """A checkpoint cannot be loaded into the model; the message lists the offending keys."""
