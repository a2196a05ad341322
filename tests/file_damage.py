"""Ways a file on disk gets damaged, shared by the checkpoint and model-file tests and their
hypothesis strategies. Each kind once escaped a reader as an exception other than the
format's own error (found by fuzzing thousands of mutated files)."""
from __future__ import annotations

import io
import json
import struct
import zipfile

from hypothesis import strategies as st


def nested_json(depth: int, opener: str = "[") -> str:
    """A JSON document nested ``depth`` deep: ``json.loads`` raises RecursionError."""
    closer = {"[": "]", '{"a":': "}"}[opener]
    return opener * depth + "0" + closer * depth


def npy_with_header(header: str, data: bytes = b"") -> bytes:
    """An .npy (format 1.0) whose header dict is ``header`` as written, padded as NumPy pads."""
    text = header.encode("latin1")
    pad = (-(10 + len(text) + 1)) % 64
    text = text + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + data


# A header NumPy cannot parse as a literal, whose fallback tokenizer then fails
# (tokenize.TokenError: an open parenthesis at the end of the input).
UNTOKENIZABLE_HEADER = "{'descr': '<f4', 'fortran_order': False, 'shape': (4,"


def huge_npy(shape_text: str = "(1099511627776,)", dtype: str = "<f4", data: bytes = b"\0" * 16) -> bytes:
    """A well-formed .npy header declaring far more data than follows (2**40 elements)."""
    return npy_with_header(f"{{'descr': '{dtype}', 'fortran_order': False, 'shape': {shape_text}, }}", data)


def bump_zip_version(data: bytes, member: str, version: int = 0xFF) -> bytes:
    """The zip ``data`` with ``member``'s "version needed to extract" set to ``version`` in
    both its headers: zipfile raises NotImplementedError ("zip file version") opening it."""
    out = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        info = z.getinfo(member)
    out[info.header_offset + 4] = version & 0xFF  # local file header
    central = out.find(b"PK\x01\x02")
    while central != -1:
        (name_len,) = struct.unpack_from("<H", out, central + 28)
        if bytes(out[central + 46:central + 46 + name_len]).decode("utf-8", "replace") == member:
            out[central + 6] = version & 0xFF
            break
        central = out.find(b"PK\x01\x02", central + 4)
    return bytes(out)


def rezip(members: dict) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, value in members.items():
            z.writestr(name, value if isinstance(value, (bytes, str)) else json.dumps(value))
    return out.getvalue()


# --- hypothesis: the kinds of damage above, with random parameters -----------------------------------
NPY_FRAGMENTS = ["{", "}", "(", ")", "[", "]", ",", ":", "'", '"', " ", "descr", "'<f4'", "'<i8'", "'|O'",
                 "fortran_order", "True", "False", "shape", "0", "4", "1099511627776", "-1", "None", "\\",
                 "#", "\n", "lambda", "__import__", "1e308", "(4,)", "(2, 2)"]


def npy_headers():
    """Header texts from plausible and broken fragments, plausible headers declaring shapes
    up to 2**62 elements, and plausible headers cut short."""
    broken = st.lists(st.sampled_from(NPY_FRAGMENTS), min_size=0, max_size=24).map("".join)
    dims = st.lists(st.integers(0, 2 ** 62), min_size=0, max_size=4).map(
        lambda ds: "(" + ", ".join(map(str, ds)) + ("," if len(ds) == 1 else "") + ")")
    plausible = st.tuples(st.sampled_from(["'<f4'", "'<f8'", "'<i8'", "'|b1'", "'>f4'", "'|O'", "'<U4'"]),
                          st.booleans(), dims).map(
        lambda t: f"{{'descr': {t[0]}, 'fortran_order': {t[1]}, 'shape': {t[2]}, }}")
    cut = plausible.flatmap(lambda h: st.integers(0, len(h)).map(lambda n: h[:n]))  # open brackets at the end
    return broken | plausible | cut


def json_nesting():
    return st.tuples(st.integers(50, 200_000), st.sampled_from(["[", '{"a":'])).map(lambda t: nested_json(*t))
