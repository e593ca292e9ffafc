"""Many scenes at once: sequentially, on a local dask cluster, or on an existing scheduler."""

from __future__ import annotations

import contextlib
import glob
import os
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hyperplex.common.errors import DataNotFoundError, HyperplexError
from hyperplex.common.progress import is_quiet, progress, quiet
from hyperplex.geo.detect.config import DetectConfig

__all__ = ["BatchResult", "detect_many", "expand_inputs"]


def expand_inputs(inputs: list[str | Path]) -> list[Path]:
    """Paths from file names, glob patterns and ``@list.txt`` files (one entry per line), in order, unique.

    Raises:
        DataNotFoundError: If a list file or a pattern matches nothing.
    """
    out: list[Path] = []
    for item in map(str, inputs):
        if item.startswith("@"):
            listing = Path(item[1:])
            if not listing.is_file():
                raise DataNotFoundError(f"{listing}: list file not found (given as {item}).")
            lines = [ln.strip() for ln in listing.read_text().splitlines()]
            out += expand_inputs([ln for ln in lines if ln and not ln.startswith("#")])
        elif glob.has_magic(item):
            matches = sorted(glob.glob(item))
            if not matches:
                raise DataNotFoundError(f"No file matches {item!r}.")
            out += [Path(m) for m in matches]
        else:
            out.append(Path(item))
    return list(dict.fromkeys(out))


def _safe_detect(
    path: Path, out_dir: Path, config: DetectConfig, threads: int | None, silent: bool = False
) -> dict[str, Any]:
    """Run one scene; any failure becomes a 'failed' summary, so one bad scene never stops a batch."""
    from hyperplex.geo.detect.scene import detect_scene

    if threads:
        import torch

        torch.set_num_threads(threads)
    try:
        with quiet(silent):
            return detect_scene(path, out_dir, config)
    except Exception as err:  # reported per scene, the batch goes on
        return _failure(path, err)


@dataclass
class BatchResult:
    """Summaries of every scene, in input order."""

    summaries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> list[dict[str, Any]]:
        """Summaries of scenes that failed."""
        return [s for s in self.summaries if s["status"] == "failed"]

    @property
    def ok(self) -> bool:
        """True when no scene failed."""
        return not self.failed


@contextlib.contextmanager
def _client(workers: int | None, scheduler: str | None) -> Iterator[Any]:
    """A dask client on ``scheduler``, or on a local loopback-only cluster of ``workers`` processes."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:  # fmt: skip
        yield client


def _chunked_batch(
    paths: list[Path], out: Path, cfg: DetectConfig, workers: int | None, scheduler: str | None
) -> BatchResult:
    """Scenes one after another here; each scene's line chunks are read as tasks on the cluster."""
    from hyperplex.geo.detect.scene import detect_scene

    results = []
    with _client(workers, scheduler) as client:
        for path in progress(paths, desc="scenes", unit="scene", leave=True):
            try:
                results.append(detect_scene(path, out, cfg, client=client))
            except Exception as err:  # reported per scene, the batch goes on
                results.append(_failure(path, err))
    return BatchResult(results)


def _failure(path: Path, err: Exception) -> dict[str, Any]:
    kind = "" if isinstance(err, HyperplexError) else f"{type(err).__name__}: "
    return {"scene": Path(path).name.split(".")[0], "status": "failed", "error": f"{kind}{err}",
            "traceback": traceback.format_exc(limit=4)}  # fmt: skip


def detect_many(
    inputs: list[str | Path],
    out_dir: str | Path,
    config: DetectConfig | None = None,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
) -> BatchResult:
    """Detect methane in many scenes; one bad scene does not stop the others.

    Args:
        inputs: Paths, glob patterns or ``@list.txt`` files.
        out_dir: Output directory for every scene's products.
        config: Detection options.
        workers: Start a local dask cluster with this many worker processes (loopback only).
        scheduler: Address of an existing dask scheduler (``tcp://host:port``); wins over ``workers``.
            On a cluster, scenes run as tasks; with ``config.chunk_tasks`` each scene's line chunks do.

    Returns:
        The per-scene summaries.
    """
    cfg = config or DetectConfig()
    paths = [p.resolve() for p in expand_inputs(inputs)]  # workers may run elsewhere
    out = Path(out_dir).resolve()
    if not (workers or scheduler):
        runs = (_safe_detect(p, out, cfg, None, is_quiet()) for p in paths)
        return BatchResult(list(progress(runs, total=len(paths), desc="scenes", unit="scene", leave=True)))
    from dask.distributed import as_completed

    threads = max(1, (os.cpu_count() or 1) // max(workers or 1, 1))
    if cfg.chunk_tasks:
        return _chunked_batch(paths, out, cfg, workers, scheduler)
    with _client(workers, scheduler) as client:
        silent = is_quiet()
        futures = {
            client.submit(_safe_detect, p, out, cfg, threads, silent, pure=False): i for i, p in enumerate(paths)
        }
        results: list[dict[str, Any]] = [{}] * len(paths)
        for fut in progress(as_completed(futures), total=len(futures), desc="scenes", unit="scene", leave=True):
            results[futures[fut]] = fut.result()
    return BatchResult(results)
