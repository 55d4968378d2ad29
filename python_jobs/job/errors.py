"""The errors of the feature job; each message says what to do."""

from __future__ import annotations


class JobError(RuntimeError):
    """The job cannot run, or a series failed with ``on_error="raise"``."""


class JobIOError(JobError):
    """A problem with the job's input or tables; the message says what to do."""


class SeriesFailure(JobError):
    """A family raised on one series (``on_error="raise"``)."""

    def __init__(self, family: str, loto: str, unique_id: str, error: str):
        self.family, self.loto, self.unique_id, self.error = family, loto, unique_id, error
        super().__init__(f"family {family!r} failed on series {loto}/{unique_id}: {error}")

    def __reduce__(self) -> tuple:
        # Raised on a Dask worker and unpickled on the client: rebuild from the four fields.
        return (type(self), (self.family, self.loto, self.unique_id, self.error))


class GpuFailure(RuntimeError):
    """A family's GPU batch raised where the GPU was asked for (``--device gpu``): the job stops
    rather than computing the rest on the CPU."""

    def __init__(self, family: str, error: str):
        self.family, self.error = family, error
        super().__init__(
            f"family {family!r} failed on the GPU: {error} (the GPU was asked for, so the job stops; "
            "--device auto computes such a batch on the CPU and counts it)"
        )

    def __reduce__(self) -> tuple:
        return (type(self), (self.family, self.error))
