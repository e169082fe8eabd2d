"""Error types the command line turns into one readable line instead of a traceback."""

import re

# The most characters of one error line: a message that repeats a hostile input (a YAML alias
# bomb's expanded value, a listing of thousands of files) is cut here, never printed whole.
MAX_MESSAGE = 2000


class MPRNetError(Exception):
    """Base class for errors caused by the user's input (files, config, checkpoints)."""


class ConfigError(MPRNetError, ValueError):
    """A config value is missing, unknown or of the wrong type; the message names the key."""


class DataError(MPRNetError, ValueError):
    """A data file is missing, corrupt or does not match its pair; the message names the file."""


class CheckpointError(MPRNetError, ValueError):
    """A checkpoint cannot be loaded into the model; the message lists the offending keys."""


class OutputError(MPRNetError):
    """An output file could not be written (no space left, no permission); the message names it."""


class NonFiniteError(MPRNetError, ValueError):
    """Weights, images or scores hold NaN or infinite values; nothing was written from them."""


def one_line(text: object, limit: int = MAX_MESSAGE) -> str:
    """``text`` as one line (every run of whitespace, newlines included, becomes one space) of
    at most ``limit`` characters; a longer one is cut and says how much was left out."""
    line = re.sub(r"\s+", " ", str(text)).strip()
    if len(line) <= limit:
        return line
    return f"{line[:limit]} ... ({len(line) - limit} more characters)"
