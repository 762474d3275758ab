"""calc: desired state → backend-neutral IR, computed once for every backend."""

from dataplane.calc.compiler import Compiler
from dataplane.calc.ir import DataplaneIR, IRDelta

__all__ = ["Compiler", "DataplaneIR", "IRDelta"]
