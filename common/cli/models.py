"""``hyperplex models``: list the registered model presets and describe one.

torch and the model zoo are imported inside the commands, so ``hyperplex --help`` stays fast.
"""

from __future__ import annotations

import json
from typing import Any

import click

__all__ = ["models"]


def _build(name: str) -> Any:
    """Build a preset without allocating weights when possible (meta device), else on CPU."""
    import torch

    from hyperplex.common.models import create_model

    try:
        with torch.device("meta"):
            return create_model(name)
    except Exception:  # some constructors need real tensors (e.g. .tolist()); fall back to CPU
        return create_model(name)


def _describe(name: str, channels: int, img_size: int) -> dict[str, Any]:
    from hyperplex.common.models import preset_info

    model = _build(name)
    preset = preset_info(name)
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "preset": name,
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "summary": preset.summary,
        "input": preset.input,
        "sized_by": preset.sized_by,
        "pretrained": preset.pretrained,
        "parameters": params,
        "trainable_parameters": trainable,
        "channel_adaptive": bool(type(model).channel_adaptive),
        "channels": channels,
        "img_size": img_size,
        "tokens_per_image": model.num_tokens(channels, img_size),
        "config": model.config,
    }


@click.group()
def models() -> None:
    """Model zoo: channel-adaptive and hyperspectral architectures."""


@models.command("list")
@click.argument("pattern", default="*")
@click.option(
    "--input", "kind", type=click.Choice(["microscopy", "hyperspectral", "he"]), help="Only presets for this input."
)
@click.option("--pretrained", is_flag=True, help="Only presets with pretrained weights (none ship yet).")
def list_cmd(pattern: str, kind: str | None, pretrained: bool) -> None:
    """List presets matching PATTERN (shell wildcards, e.g. 'lessvit_*'): input kind, weights, summary.

    Input: microscopy (marker names), hyperspectral (wavelengths), he (RGB H&E in, markers out).
    Weights: "random" until pretrained weights ship for a preset.
    """
    from hyperplex.common.models import list_models, preset_info

    names = list_models(pattern, pretrained=pretrained, input=kind)
    if not names:
        which = " with pretrained weights (none ship yet)" if pretrained else ""
        which += f" for {kind} input" if kind else ""
        raise click.ClickException(f"No model preset{which} matches {pattern!r}; try `hyperplex models list`.")
    width = max(len(n) for n in names)
    for name in names:
        info = preset_info(name)
        tags = f"{info.input or '-':<13}  {'pretrained' if info.pretrained else 'random':<10}"
        click.echo(f"{name:<{width}}  {tags}  {info.summary}".rstrip())


@models.command("info")
@click.argument("name")
@click.option("--channels", "-c", default=8, show_default=True, type=click.IntRange(min=1),
              help="Channel count for the token count.")  # fmt: skip
@click.option("--img-size", "-s", default=224, show_default=True, type=click.IntRange(min=1),
              help="Image side in pixels for the token count.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON.")
def info_cmd(name: str, channels: int, img_size: int, as_json: bool) -> None:
    """Describe preset NAME: class, parameters, tokens per image, configuration."""
    from hyperplex.common.errors import InvalidParameterError

    try:
        info = _describe(name, channels, img_size)
    except InvalidParameterError as err:
        raise click.ClickException(str(err)) from err
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    tokens = info["tokens_per_image"]
    click.echo(f"{info['preset']}: {info['summary']}")
    click.echo(f"  class             {info['class']}")
    click.echo(f"  parameters        {info['parameters']:,} ({info['trainable_parameters']:,} trainable)")
    weights = "pretrained" if info["pretrained"] else "random (no pretrained weights ship yet)"
    click.echo(f"  input             {info['input'] or 'unspecified'}; weights {weights}")
    click.echo(f"  channel-adaptive  {'yes' if info['channel_adaptive'] else 'no (fixed band set)'}")
    shown = "n/a (not token-based)" if tokens is None else f"{tokens:,}"
    click.echo(f"  tokens per image  {shown} for {channels} channels at {img_size}x{img_size}")
    click.echo(f"  config            {json.dumps(info['config'])}")
