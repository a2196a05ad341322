"""Writing Python source for generated kernels."""
from __future__ import annotations

import contextlib


class SourceWriter:
    def __init__(self, indent: int = 0):
        self.lines: list = []
        self.level = indent

    def __call__(self, line: str = "") -> None:
        self.lines.append(("    " * self.level + line) if line else "")

    @contextlib.contextmanager
    def block(self, header: str):
        self(header)
        self.level += 1
        try:
            yield
        finally:
            self.level -= 1

    def extend_lines(self, lines) -> None:
        for line in lines:
            self(line)

    def extend(self, other: "SourceWriter") -> None:
        self.lines.extend(other.lines)

    def text(self) -> str:
        return "\n".join(self.lines)


def product(terms) -> str:
    terms = [str(t) for t in terms]
    return " * ".join(terms) if terms else "1"
