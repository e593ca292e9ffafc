"""Many scenes at once: sequentially, on a local dask cluster, or on an existing scheduler."""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hyperplex.common.errors import DataNotFoundError, FileFormatError, HyperplexError, InvalidParameterError
from hyperplex.common.formats import FORMATS, FormatRegistry
from hyperplex.common.outdir import writable_dir
from hyperplex.common.progress import is_quiet, progress, quiet
from hyperplex.common.ranges import Range
from hyperplex.geo.detect.config import DetectConfig

__all__ = ["BatchResult", "detect_many", "expand_inputs", "max_workers"]


def expand_inputs(inputs: list[str | Path]) -> list[Path]:
    """Scene paths from file names, folders, glob patterns and ``@list.txt`` files, in order, unique.

    A folder gives the files in it that a registered hyperspectral format claims; a pattern that matches
    scenes gives only those (companions such as ``*_truth.nc`` are skipped); entries of a list file are
    relative to the list's folder.

    Raises:
        DataNotFoundError: If a list file, folder or pattern gives no scene.
        InvalidParameterError: If a list file names no entry.
    """
    return _expand(inputs).paths


@dataclass
class _Expansion:
    paths: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)

    def add(self, other: _Expansion) -> None:
        self.paths += other.paths
        self.skipped += other.skipped


def _expand(inputs: list[str | Path], base: Path | None = None) -> _Expansion:
    """:func:`expand_inputs`, also returning the files skipped as not scenes; relative items joined to ``base``."""
    out = _Expansion()
    for item in map(str, inputs):
        if item.startswith("@"):
            out.add(_read_list(_join(base, item[1:]), item))
        elif glob.has_magic(item):
            pattern = item if base is None or Path(item).is_absolute() else os.path.join(glob.escape(str(base)), item)
            out.add(_matches(item, [Path(m) for m in sorted(glob.glob(pattern))]))
        elif _join(base, item).is_dir():
            out.add(_scan_folder(_join(base, item)))
        else:
            out.paths.append(_join(base, item))
    out.paths = list(dict.fromkeys(out.paths))
    return out


def _join(base: Path | None, item: str) -> Path:
    path = Path(item).expanduser()
    return path if base is None or path.is_absolute() else base / path


def _read_list(listing: Path, item: str) -> _Expansion:
    """The entries of a list file (one a line, ``#`` comments), relative to the list's folder."""
    if not listing.is_file():
        raise DataNotFoundError(f"{listing}: list file not found (given as {item}).")
    try:
        lines = [ln.strip() for ln in listing.read_text().splitlines()]
    except (OSError, UnicodeDecodeError) as err:
        raise FileFormatError(f"{listing}: cannot read the list file ({err}).") from err
    entries = [ln for ln in lines if ln and not ln.startswith("#")]
    if not entries:
        raise InvalidParameterError(f"{listing}: the list file names no scene (given as {item}).")
    return _expand(entries, listing.parent)


def _formats() -> FormatRegistry:
    """The format registry, with the hyperspectral formats registered."""
    import hyperplex.geo.io  # noqa: F401  (registers them on import)

    return FORMATS


def _is_scene(path: Path) -> bool:
    """Whether a registered hyperspectral format claims ``path`` (header bytes only; never raises)."""
    return _formats().sniff(path, "hyperspectral") is not None


def _without_headers(paths: list[Path]) -> list[Path]:
    """Drop ENVI headers whose data file is in ``paths`` too (the scene is the pair, listed once)."""
    data = {(p.parent, p.stem) for p in paths if p.suffix.lower() != ".hdr"}
    data |= {(p.parent, p.name) for p in paths if p.suffix.lower() != ".hdr"}
    return [p for p in paths if p.suffix.lower() != ".hdr" or (p.parent, p.stem) not in data]


def _matches(pattern: str, matches: list[Path]) -> _Expansion:
    """The scenes among a pattern's matches (all matches when none is a scene: each then fails and says why)."""
    if not matches:
        raise DataNotFoundError(f"No file matches {pattern!r}.")
    scenes = [m for m in matches if _is_scene(m)]
    if not scenes:
        return _Expansion(matches)
    return _Expansion(_without_headers(scenes), [m for m in matches if m not in scenes])


def _scan_folder(folder: Path) -> _Expansion:
    """The files in ``folder`` (not its subfolders) that a registered hyperspectral format claims."""
    try:
        files = sorted(p for p in folder.iterdir() if p.is_file())
    except OSError as err:
        raise DataNotFoundError(f"{folder}: cannot list the folder ({err.strerror or err}).") from err
    scenes = [p for p in files if _is_scene(p)]
    if not scenes:
        names = ", ".join(_formats().names("hyperspectral"))
        raise DataNotFoundError(f"{folder}: the folder holds no scene of a known format ({names}).")
    return _Expansion(_without_headers(scenes), [p for p in files if p not in scenes])


def _check_link(path: Path) -> None:
    """Say what is wrong with a symbolic link that leads nowhere (a loop, or a missing target).

    Raises:
        DataNotFoundError: Naming the link and the problem.
    """
    try:
        os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise DataNotFoundError(
                f"{path}: a symbolic link loop (the link leads back to itself); fix the link."
            ) from err
        if os.path.islink(path):
            raise DataNotFoundError(
                f"{path}: a broken symbolic link (target {os.readlink(path)} does not exist)."
            ) from err


def _safe_detect(
    path: Path, out_dir: Path, config: DetectConfig, threads: int | None, silent: bool = False
) -> dict[str, Any]:
    """Run one scene; any failure becomes a 'failed' summary, so one bad scene never stops a batch."""
    from hyperplex.geo.detect.scene import detect_scene

    if threads:
        import torch

        torch.set_num_threads(threads)
    try:
        _check_link(path)
        with quiet(silent):
            return detect_scene(path, out_dir, config)
    except Exception as err:  # reported per scene, the batch goes on
        return _failure(path, err)


@dataclass
class BatchResult:
    """Summaries of every scene, in input order."""

    summaries: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)

    @property
    def failed(self) -> list[dict[str, Any]]:
        """Summaries of scenes that failed."""
        return [s for s in self.summaries if s["status"] == "failed"]

    @property
    def ok(self) -> bool:
        """True when no scene failed."""
        return not self.failed


def _check_scheduler(scheduler: str | None) -> None:
    """A scheduler address must be ``[protocol://]host:port`` (checked before any connection is tried)."""
    if scheduler is None:
        return
    _, _, hostport = scheduler.rpartition("://")
    host, _, port = hostport.rpartition(":")
    if not (host and port.isdigit() and 0 < int(port) < 65536):
        raise InvalidParameterError(f"`scheduler` {scheduler!r} is not an address: give tcp://host:port.")


@contextlib.contextmanager
def _client(workers: int | None, scheduler: str | None) -> Iterator[Any]:
    """A dask client on ``scheduler``, or on a local loopback-only cluster of ``workers`` processes."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler)
        except (OSError, ValueError) as err:
            raise InvalidParameterError(
                f"scheduler {scheduler!r}: cannot connect ({err}); give tcp://host:port."
            ) from err
        with client:
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
                _check_link(path)
                results.append(detect_scene(path, out, cfg, client=client))
            except Exception as err:  # reported per scene, the batch goes on
                results.append(_failure(path, err))
    return BatchResult(results)


def _failure(path: Path, err: Exception) -> dict[str, Any]:
    """The summary of a failed scene: its name, path and the reason in one line."""
    if isinstance(err, HyperplexError):
        reason = str(err)
    elif isinstance(err, OSError):
        reason = err.strerror or str(err)
        if err.filename and str(err.filename) not in reason:
            reason = f"{err.filename}: {reason}"
    else:
        reason = f"{type(err).__name__}: {err}"
    reason = reason.strip().splitlines()[0] if reason.strip() else type(err).__name__
    return {"scene": Path(path).name.split(".")[0], "path": str(path), "status": "failed", "error": reason,
            "traceback": traceback.format_exc(limit=4)}  # fmt: skip


def _output_stem(path: Path) -> str:
    """The stem a scene's products get (as :attr:`SceneSource.stem`: EMIT granules drop every suffix)."""
    fmt = _formats().sniff(path, "hyperspectral")
    return path.name.split(".")[0] if fmt is not None and fmt.name == "emit" else path.stem


def max_workers() -> int:
    """Most local worker processes a batch starts: four per CPU core (more only thrash)."""
    return 4 * (os.cpu_count() or 1)


def _check_batch(paths: list[Path], workers: int | None) -> None:
    """Errors found before any computing: no scene, a bad worker count, two scenes with the same outputs.

    Raises:
        InvalidParameterError: Naming the problem (both paths for clashing outputs; ``workers`` outside
            1..:func:`max_workers`).
    """
    if not paths:
        raise InvalidParameterError("No input scenes; give files, folders, glob patterns or @list.txt files.")
    Range(1, max_workers()).check("workers", workers)
    seen: dict[str, Path] = {}
    for path in paths:
        other = seen.setdefault(_output_stem(path), path)
        if other != path:
            raise InvalidParameterError(
                f"{other} and {path} would write the same outputs ({_output_stem(path)}_*); "
                "rename one or run them into different --out folders."
            )


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
        The per-scene summaries (a failed scene has ``path`` and ``error``) and the files skipped as not scenes.

    Raises:
        DataNotFoundError: If an input gives no scene (see :func:`expand_inputs`).
        InvalidParameterError: For no scenes, ``workers < 1``, two scenes that would write the same outputs, or
            an output folder that cannot be created or written.
    """
    cfg = config or DetectConfig()
    expanded = _expand(inputs)
    paths = [Path(os.path.abspath(p)) for p in expanded.paths]  # workers may run elsewhere; links resolve there
    _check_batch(paths, workers)
    _check_scheduler(scheduler)
    out = writable_dir(os.path.abspath(out_dir), "out_dir")
    if not (workers or scheduler):
        runs = (_safe_detect(p, out, cfg, None, is_quiet()) for p in paths)
        summaries = list(progress(runs, total=len(paths), desc="scenes", unit="scene", leave=True))
        return BatchResult(summaries, expanded.skipped)
    from dask.distributed import as_completed

    threads = max(1, (os.cpu_count() or 1) // max(workers or 1, 1))
    if cfg.chunk_tasks:
        return replace(_chunked_batch(paths, out, cfg, workers, scheduler), skipped=expanded.skipped)
    with _client(workers, scheduler) as client:
        silent = is_quiet()
        futures = {
            client.submit(_safe_detect, p, out, cfg, threads, silent, pure=False): i for i, p in enumerate(paths)
        }
        results: list[dict[str, Any]] = [{}] * len(paths)
        for fut in progress(as_completed(futures), total=len(futures), desc="scenes", unit="scene", leave=True):
            results[futures[fut]] = fut.result()
    return BatchResult(results, expanded.skipped)
