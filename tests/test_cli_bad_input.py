"""Bad input to the command line: one line naming the option or file and the problem, a non-zero exit, no traceback.

The cases are generated from the declarations they test (every ranged option of every command, every
ranged field of the configuration), so a new option with a range is covered without an edit here.
Almost all of them fail before any scene is read.
"""

from __future__ import annotations

import math
import os
from dataclasses import fields
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from hyperplex.common.cli import main
from hyperplex.common.errors import InvalidParameterError

UNWRITABLE = ["/proc/hyperplex-test/out", "{tmp}/a-file/out"]  # no folder can be made there, not even by root


def _command(*names: str) -> click.Command:
    cmd: click.Command = main
    for name in names:
        cmd = cmd.get_command(click.Context(cmd), name)  # type: ignore[attr-defined]
    return cmd


def _out_of_range(param: click.Parameter) -> list[str]:
    """Values just outside the range of a ranged click option (nothing for an unranged one)."""
    kind = param.type.resolved() if hasattr(param.type, "resolved") else param.type  # synth emit: lazy
    if not isinstance(kind, click.types._NumberRangeBase):
        return []
    step = 1 if isinstance(kind, click.IntRange) else 0.5
    bad = []
    if kind.min is not None and not math.isinf(kind.min):
        bad.append(kind.min if kind.min_open else kind.min - step)
    if kind.max is not None and not math.isinf(kind.max):
        bad.append(kind.max if kind.max_open else kind.max + step)
    return [str(v) for v in bad]


def _range_cases(command: tuple[str, ...], base: list[str]) -> list:
    cases = []
    for param in _command(*command).params:
        for value in _out_of_range(param):
            name = param.opts[0]
            args = [*command, *base, name, *[value] * param.nargs]
            cases.append(pytest.param(args, name, id=f"{' '.join(command)} {name} {value}"))
    return cases


RANGE_CASES = [
    *_range_cases(("methane", "detect"), ["x.nc", "--out", "{tmp}/o"]),
    *_range_cases(("models", "info"), ["vit_test"]),
    *_range_cases(("synth", "emit"), ["--out", "{tmp}/s"]),
    *_range_cases(("synth", "microscopy"), ["--out", "{tmp}/m"]),
]


def _run(args: list[str], tmp_path: Path):
    (tmp_path / "a-file").write_text("not a folder")
    return CliRunner().invoke(main, [a.replace("{tmp}", str(tmp_path)) for a in args])


def _assert_clear_error(result, names: str | tuple[str, ...]) -> str:
    """Non-zero exit, no traceback, exactly one ``Error:`` line, naming every one of ``names``."""
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [ln for ln in result.output.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1, result.output
    for name in (names,) if isinstance(names, str) else names:
        assert name in errors[0], errors[0]
    return errors[0]


@pytest.mark.parametrize(("args", "name"), RANGE_CASES)
def test_every_ranged_option_rejects_values_outside(args, name, tmp_path):
    result = _run(args, tmp_path)
    assert result.exit_code == 2
    _assert_clear_error(result, name)


def test_there_are_enough_generated_cases():
    names = {c.values[1] for c in RANGE_CASES}
    assert {"--threshold", "--min-pixels", "--sigma", "--dark-fraction", "--workers", "--channels"} <= names
    assert {"--lines", "--samples", "--plumes", "--seed", "--size", "--strength", "--noise"} <= names
    assert len(RANGE_CASES) >= 30


def _ranged_fields():
    from hyperplex.geo.detect.config import DelineationConfig, DetectConfig, MaskConfig

    for cls in (DetectConfig, MaskConfig, DelineationConfig):
        for f in fields(cls):
            rng = f.metadata.get("range")
            if rng is not None:
                yield pytest.param(cls, f.name, rng, id=f"{cls.__name__}.{f.name}")


@pytest.mark.parametrize(("cls", "name", "rng"), list(_ranged_fields()))
def test_configuration_enforces_the_same_ranges_for_python_callers(cls, name, rng):
    bad = [v for v in (None if rng.lo is None else rng.lo - 1, None if rng.hi is None else rng.hi + 1) if v is not None]
    assert bad, name
    for value in [*bad, float("nan")]:
        with pytest.raises(InvalidParameterError, match=f"`{name}`"):
            cls(**{name: value})
    cls()  # the defaults are inside


EMIT = ["synth", "emit", "--out", "{tmp}/s", "--lines", "16", "--samples", "16"]
DETECT = ["methane", "detect", "x.nc", "--out", "{tmp}/o"]
#: Values inside each option's range that the command still cannot honour: (arguments, named in the error).
OTHER_CASES = {
    "fill columns >= samples": ([*EMIT, "--fill-columns", "16"], "--fill-columns"),
    "strength min > max": ([*EMIT, "--strength", "3000", "1000"], "plume_strength"),
    "plumes too large for the scene": ([*EMIT, "--plumes", "1"], "plume_size"),
    "more saturated spots than pixels": ([*EMIT, "--plumes", "0", "--saturated", "300"], "saturated"),
    "stem with a folder": ([*EMIT, "--stem", "a/b"], "--stem"),
    "empty stem": ([*EMIT, "--stem", ""], "--stem"),
    "stem ..": ([*EMIT, "--stem", ".."], "--stem"),
    "not a number": ([*EMIT, "--plumes", "x"], "--plumes"),
    "window reversed": ([*DETECT, "--window", "2400", "2100"], "--window"),
    "window negative": ([*DETECT, "--window", "-5", "2100"], "window"),
    "missing L2A mask": ([*DETECT, "--l2a-mask", "{tmp}/nope.nc"], "--l2a-mask"),
    "scheduler without port": ([*DETECT, "--scheduler", "bogus"], "bogus"),
}


@pytest.mark.parametrize(("args", "names"), OTHER_CASES.values(), ids=OTHER_CASES.keys())
def test_values_the_command_cannot_honour_are_explained(args, names, tmp_path):
    _assert_clear_error(_run(args, tmp_path), names)
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


OUTPUT_COMMANDS = [
    ["methane", "detect", "x.nc", "--out"],
    ["demo", "--out"],
    ["synth", "emit", "--lines", "16", "--samples", "16", "--out"],
    ["synth", "microscopy", "--size", "32", "--out"],
]


@pytest.mark.parametrize("out", UNWRITABLE)
@pytest.mark.parametrize("command", OUTPUT_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_an_unwritable_output_folder_is_refused_before_computing(command, out, tmp_path):
    line = _assert_clear_error(_run([*command, out], tmp_path), ("--out", out.split("/")[-2]))
    assert "not writable" in line


def _write(tmp_path: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)


INPUT_CASES = {
    "missing list": ({}, ["@{tmp}/nope.txt"], "nope.txt"),
    "empty list": ({"empty.txt": ""}, ["@{tmp}/empty.txt"], "empty.txt"),
    "comments-only list": ({"c.txt": "# nothing\n\n"}, ["@{tmp}/c.txt"], "c.txt"),
    "nested empty list": ({"l.txt": "@inner.txt\n", "inner.txt": "\n"}, ["@{tmp}/l.txt"], "inner.txt"),
    "pattern without match": ({}, ["{tmp}/*.nc"], "*.nc"),
    "folder without scene": ({"d/notes.txt": "x"}, ["{tmp}/d"], "d"),
    "same file name twice": ({"a/X.nc": "", "b/X.nc": ""}, ["{tmp}/a/X.nc", "{tmp}/b/X.nc"], ("a/X.nc", "b/X.nc")),
    "same name via list": ({"a/X.nc": "", "b/X.nc": "", "l.txt": "a/X.nc\nb/X.nc\n"}, ["@{tmp}/l.txt"], "X.nc"),
}


@pytest.mark.parametrize(("files", "inputs", "names"), INPUT_CASES.values(), ids=INPUT_CASES.keys())
def test_inputs_that_give_no_scene_or_clash_are_refused(files, inputs, names, tmp_path):
    _write(tmp_path, files)
    result = _run(["methane", "detect", *inputs, "--out", "{tmp}/out"], tmp_path)
    assert result.exit_code == 1
    _assert_clear_error(result, names)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_one_bad_scene_never_stops_a_batch(tmp_path):
    os.symlink(tmp_path / "loop-b.nc", tmp_path / "loop-a.nc")
    os.symlink(tmp_path / "loop-a.nc", tmp_path / "loop-b.nc")
    _write(tmp_path, {"junk.nc": "not a granule"})
    result = _run(["methane", "detect", "{tmp}/loop-a.nc", "{tmp}/junk.nc", "--out", "{tmp}/out", "-q"], tmp_path)
    assert result.exit_code == 1 and "Traceback" not in result.output
    failed = [ln for ln in result.output.splitlines() if ln.startswith("FAILED")]
    assert len(failed) == 2 and "loop-a.nc" in failed[0] and "junk.nc" in failed[1]
    assert "2 scene(s): 0 ok, 2 failed" in result.output


@pytest.fixture(scope="module")
def scene_folder(tmp_path_factory):
    """One small EMIT granule with its companions (``*_truth.nc``, ``*_truth.json``) and a list file."""
    from hyperplex.geo.synth import emit_scene, write_emit_scene

    folder = tmp_path_factory.mktemp("scenes")
    write_emit_scene(emit_scene(lines=32, samples=32, plumes=0, seed=3), folder / "in", stem="EMIT_TINY")
    (folder / "in" / "scenes.txt").write_text("# relative to this list\nEMIT_TINY.nc\n")
    return folder


def test_inputs_resolve_lists_folders_and_skip_companions(scene_folder, monkeypatch):
    from hyperplex.geo.detect.batch import _expand, expand_inputs

    monkeypatch.chdir(scene_folder)  # the list's entries are relative to the list, not to here
    want = [Path("in/EMIT_TINY.nc")]
    assert expand_inputs(["@in/scenes.txt"]) == want
    assert expand_inputs(["in"]) == want
    expansion = _expand(["in/*.nc"])
    assert expansion.paths == want and expansion.skipped == [Path("in/EMIT_TINY_truth.nc")]


def test_companions_are_skipped_with_a_warning(scene_folder, tmp_path):
    pattern = str(scene_folder / "in" / "EMIT_TINY*.nc")
    result = _run(["methane", "detect", pattern, "--out", "{tmp}/out", "--method", "mf", "-q"], tmp_path)
    assert result.exit_code == 0, result.output
    assert "1 scene(s): 1 ok, 0 failed" in result.output and "FAILED" not in result.output
    assert "warning: skipped 1 file(s) that are not scenes" in result.output and "EMIT_TINY_truth.nc" in result.output


def test_the_python_api_checks_the_batch_before_computing(tmp_path):
    from hyperplex.geo.detect import detect_many

    with pytest.raises(InvalidParameterError, match="workers"):
        detect_many(["x.nc"], tmp_path, workers=-1)
    with pytest.raises(InvalidParameterError, match="No input scenes"):
        detect_many([], tmp_path)
    with pytest.raises(InvalidParameterError, match="not writable"):
        detect_many(["x.nc"], "/proc/hyperplex-test/out")
