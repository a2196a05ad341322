"""The type of every op attribute, by attribute name: what a model file's attributes are
checked against before any op sees them.

Attribute names mean the same thing in every op that has them (``axis`` is always an int,
``dtype`` always a DType), so one table by name covers the catalog. Saving an attribute that
is not here fails (tests/export/test_model_file.py saves every op sample), so a new
attribute cannot ship without its type. Op inference then checks the values' meaning.
"""
from __future__ import annotations

from typing import Any, Callable, Dict

import numpy as np

from ..dtypes import DType
from ..ops.control_flow import Body


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return _is_int(v) or isinstance(v, float)


def _is_bool(v) -> bool:
    return isinstance(v, bool)


def _is_str(v) -> bool:
    return isinstance(v, str)


def _is_dtype(v) -> bool:
    return isinstance(v, DType)


def _ints(v) -> bool:
    return isinstance(v, tuple) and all(_is_int(x) for x in v)


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or check(v)


def _shape_spec(v) -> bool:
    """Output shapes: ints (-1: inferred), None (unknown, placeholders), ("dim", input, axis) or
    ("all", input) (every dim of an input of unknown rank)."""
    return isinstance(v, tuple) and all(
        e is None or _is_int(e) or (isinstance(e, tuple) and len(e) == 3 and e[0] == "dim" and _is_int(e[1])
                                    and _is_int(e[2]))
        or (isinstance(e, tuple) and len(e) == 2 and e[0] == "all" and _is_int(e[1])) for e in v)


def _index_spec(v) -> bool:
    """strided_slice entries: ("new",), ("int", i), ("slice", start, stop, step)."""
    def entry(e):
        if not isinstance(e, tuple) or not e:
            return False
        if e[0] == "new":
            return len(e) == 1
        if e[0] == "int":
            return len(e) == 2 and _is_int(e[1])
        return e[0] == "slice" and len(e) == 4 and all(x is None or _is_int(x) for x in e[1:]) and e[3] != 0
    return isinstance(v, tuple) and all(entry(e) for e in v)


def _pairs(v) -> bool:
    return isinstance(v, tuple) and all(isinstance(p, tuple) and len(p) == 2 and _ints(p) for p in v)


def _seed(v) -> bool:
    return isinstance(v, tuple) and len(v) == 2 and all(x is None or _is_int(x) for x in v)


ATTR_TYPES: Dict[str, tuple] = {
    # name: (check, what it must be: for messages)
    "alpha": (_is_number, "a number"),
    "approximate": (_is_bool, "a bool"),
    "axes": (_optional(_ints), "a tuple of ints or null"),
    "axis": (_optional(_is_int), "an int or null"),
    "back_prop": (_is_bool, "a bool"),
    "body": (lambda v: isinstance(v, Body), "a body (a traced function)"),
    "cond": (lambda v: isinstance(v, Body), "a body (a traced function)"),
    "constant_values": (_is_number, "a number"),
    "depth": (_is_int, "an int"),
    "descending": (_is_bool, "a bool"),
    "dilations": (_ints, "a tuple of ints"),
    "dtype": (_is_dtype, "a dtype"),
    "epsilon": (_is_number, "a number"),
    "else": (lambda v: isinstance(v, Body), "a body (a traced function)"),
    "exclusive": (_is_bool, "a bool"),
    "has_limit": (_is_bool, "a bool"),
    "high": (_is_number, "a number"),
    "high_open": (_is_bool, "a bool"),
    "history": (_is_bool, "a bool"),
    "index": (_index_spec, "a strided-slice index spec"),
    "k": (lambda v: _is_int(v) and v >= 0, "an int >= 0"),
    "keepdims": (_is_bool, "a bool"),
    "key": (_is_str, "a string"),
    "ksize": (_ints, "a tuple of ints"),
    "low": (_is_number, "a number"),
    "low_open": (_is_bool, "a bool"),
    "made_at": (_is_str, "a string"),
    "mode": (_is_str, "a string"),
    "multiples": (_ints, "a tuple of ints"),
    "n_vars": (lambda v: _is_int(v) and v >= 1, "an int >= 1"),
    "n_stacked": (lambda v: _is_int(v) and v >= 0, "an int >= 0"),
    "num": (_optional(_is_int), "an int or null"),
    "num_segments": (lambda v: _is_int(v) and v >= 0, "an int >= 0"),
    "off_value": (_is_number, "a number"),
    "on_value": (_is_number, "a number"),
    "out_type": (_is_dtype, "a dtype"),
    "output_type": (_is_dtype, "a dtype"),
    "padding": (lambda v: _is_str(v) and v in ("SAME", "VALID"), '"SAME" or "VALID"'),
    "paddings": (_pairs, "a tuple of (before, after) int pairs"),
    "perm": (_ints, "a tuple of ints"),
    "radius": (_is_int, "an int"),
    "reduction": (lambda v: v in ("average", "sum"), '"average" or "sum"'),
    "reverse": (_is_bool, "a bool"),
    "root_rank": (lambda v: _is_int(v) and v >= 0, "an int >= 0"),
    "seed": (_seed, "a pair of ints or nulls"),
    "shape": (_shape_spec, "a shape (ints, nulls or [\"dim\", input, axis] entries)"),
    "sizes": (_optional(_ints), "a tuple of ints or null"),
    "sorted": (_is_bool, "a bool"),
    "stream": (_is_int, "an int"),
    "strides": (_ints, "a tuple of ints"),
    "then": (lambda v: isinstance(v, Body), "a body (a traced function)"),
    "transpose_a": (_is_bool, "a bool"),
    "transpose_b": (_is_bool, "a bool"),
    "unknown_rank": (_is_bool, "a bool"),
    "value": (lambda v: isinstance(v, np.ndarray), "an array"),
    "var": (_is_str, "a string"),
    "what": (_is_str, "a string"),
}


def check_attr(name: str, value) -> str | None:
    """None if ``value`` is a valid ``name`` attribute, else what it should be."""
    entry = ATTR_TYPES.get(name)
    if entry is None:
        return "a known attribute name"
    check, what = entry
    return None if check(value) else what
