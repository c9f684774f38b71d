"""The error types of rlmu, in one module that library code and the command line both import.

- ``UserError``: bad input from the user (a config key, a file, a directory); the command line prints it
  as one line and exits 2, without a traceback.
- ``DatasetError``: a file is not a readable rlmu dataset of the expected type.
- ``CheckpointError``: a checkpoint cannot be read, fails its checksum or does not fit the run.
- ``StudyError``: a study folder cannot be aggregated at all.
- ``DivergenceError``: a loss became non-finite (a result about the method, not an input error).
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: printed as one clear line, exit code 2, no traceback."""


class DatasetError(ValueError):
    """A file is not a readable rlmu dataset of the expected type; the message names the file."""


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read or belongs to another kind of file; the message names the file."""


class StudyError(Exception):
    """The study folder cannot be aggregated at all (no such folder, no runs/ folder)."""


class DivergenceError(RuntimeError):
    """A loss became non-finite; raised before any optimizer step applied it.

    Attributes: ``loss_name`` (a progress-CSV column, e.g. ``loss_critic``), ``value`` (the float),
    ``update_step`` (the 0-based index of the update that produced it).
    """

    def __init__(self, loss_name: str, value: float, update_step: int):
        self.loss_name = loss_name
        self.value = float(value)
        self.update_step = int(update_step)
        super().__init__(f"{loss_name} = {self.value} at update {self.update_step}")

    def __reduce__(self):  # keep the three fields through pickling (multiprocessing workers)
        return (type(self), (self.loss_name, self.value, self.update_step))
