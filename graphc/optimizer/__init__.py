"""Compilation works on an immutable Program made from the pruned user graph."""
from .program import Instr, Origin, Program, lower  # noqa: F401
