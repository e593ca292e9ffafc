"""Fault injection for the reliability tests: the pipeline kills itself at a named moment.

With ``HYPERPLEX_FAULT=<point>`` in the environment, :func:`fault_point` sends the process ``SIGKILL``
(or ``SIGINT`` for ``HYPERPLEX_FAULT=<point>:int``) when the pipeline reaches ``<point>``, so a test can
check what a crash at exactly that moment leaves behind. Without the variable it does nothing.
"""

from __future__ import annotations

import os
import signal

__all__ = ["FAULT_ENV", "FAULT_POINTS", "fault_point"]

#: Environment variable naming the point (``<point>`` or ``<point>:int``).
FAULT_ENV = "HYPERPLEX_FAULT"
#: The named moments of :func:`hyperplex.geo.detect.detect_scene`, in order; the enhancement map's two are
#: reached in a second thread while the plumes are vetted, so they may come before "georeferenced".
FAULT_POINTS = (
    "opened",
    "read",
    "filtered",
    "georeferenced",
    "enhancement:temporary",
    "enhancement",
    "uncertainty:temporary",
    "uncertainty",
    "plumes_raster:temporary",
    "plumes_raster",
    "plumes_vector:temporary",
    "plumes_vector",
    "quicklook",
    "run:temporary",
    "run",
)


def fault_point(name: str) -> None:
    """Kill this process here if ``HYPERPLEX_FAULT`` names ``name`` (a test hook; a no-op otherwise)."""
    wanted = os.environ.get(FAULT_ENV)
    if not wanted:
        return
    point, interrupt, _ = wanted.partition(":int")
    if point == name:
        os.kill(os.getpid(), signal.SIGINT if interrupt else signal.SIGKILL)
