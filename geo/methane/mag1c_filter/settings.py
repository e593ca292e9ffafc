"""Mag1c's own settings (the shared filter options are :class:`hyperplex.geo.methane.options.FilterOptions`)."""

from __future__ import annotations

from dataclasses import dataclass

from hyperplex.common.errors import InvalidParameterError

__all__ = ["ENGINES", "EPSILON", "Mag1cSettings"]

#: mag1c's epsilon in the reweighting weights w = 1 / (R (alpha + EPSILON)).
EPSILON = 1e-9
#: Values of ``mag1c(engine=...)``: 'auto' picks the compiled CPU engine where it applies, else torch.
ENGINES = ("auto", "torch")


@dataclass(frozen=True)
class Mag1cSettings:
    """How the reweighted iterations run (mag1c 1.2.0's command-line flags in brackets).

    Attributes:
        num_iter: Reweighted-L1 iterations (``--iter``).
        albedo: Apply the albedo factor R (``--noalbedo`` = False).
        nonnegative: Clip the first estimate at 0 (``--nonnegativeoff`` = False); iterations always clip.
        sparsity: Use the reweighting weights (``--no-sparsity`` = False).
        update_scaling: Fraction of the detected signal removed before re-estimating the statistics
            (``--covariance-update-scaling``).
        shrinkage: Covariance shrinkage towards its diagonal (``--covariance-lerp-alpha``).
        what: Method name in warnings and errors.
    """

    num_iter: int = 30
    albedo: bool = True
    nonnegative: bool = True
    sparsity: bool = True
    update_scaling: float = 1.0
    shrinkage: float = 0.0
    what: str = "mag1c"

    def __post_init__(self) -> None:
        if int(self.num_iter) < 0 or not 0.0 <= float(self.shrinkage) <= 1.0:
            raise InvalidParameterError("`num_iter` must be >= 0 and `shrinkage` in [0, 1].")
