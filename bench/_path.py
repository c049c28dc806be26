"""Imported first by every bench script: keep `bench/` itself off the import path.

`python bench/clearing.py` puts `bench/` first on `sys.path`, where `clearing.py` and
`agents.py` would shadow the packages of the same names they measure.
"""

import sys
from pathlib import Path

_here = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
