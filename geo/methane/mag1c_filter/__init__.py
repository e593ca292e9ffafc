"""Mag1c: the albedo-corrected, reweighted-L1 matched filter (Foote et al. 2020), faithful to mag1c 1.2.0.

``ALGORITHM.md`` next to this file describes the algorithm (reweighted iterations, Woodbury updates, the
bound that skips pixels), the data layout and how equality with mag1c 1.2.0 is tested. In short:

* :mod:`.api`: the public :func:`mag1c` and the engine choice; :mod:`.settings`: Mag1c's own settings;
* :mod:`.engine`: the engine interface; :mod:`.compiled_engine` (CPU, numba kernels in
  :mod:`.compiled_reader`, :mod:`.compiled_first_pass`, :mod:`.compiled_iterations`) and
  :mod:`.torch_engine` (GPU, tiles, ``engine="torch"``, with :mod:`.packed_candidates`);
* :mod:`.filter_vectors` and :mod:`.cramer`: C^-1 t per group and iteration; :mod:`.resident`: the
  pixel-major cube; :mod:`.jit`: how kernels are compiled and cached.
"""

from hyperplex.geo.methane.mag1c_filter.api import mag1c, run_mag1c, select_engine
from hyperplex.geo.methane.mag1c_filter.engine import Mag1cEngine, Mag1cResult
from hyperplex.geo.methane.mag1c_filter.settings import ENGINES, EPSILON, Mag1cSettings

__all__ = ["ENGINES", "EPSILON", "Mag1cEngine", "Mag1cResult", "Mag1cSettings", "mag1c", "run_mag1c", "select_engine"]
