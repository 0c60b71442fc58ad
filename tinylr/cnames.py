"""Making text from model files safe to put in C: identifiers, comments, literals.

Nothing read from a model file reaches generated code except through these helpers.
"""

from __future__ import annotations

import re

import numpy as np

from .errors import TinylrError


def identifier(name: str) -> str:
    """A lower-case C identifier from a user or model name ('Digits-MLP v2' -> 'digits_mlp_v2')."""
    ident = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")
    ident = re.sub(r"_+", "_", ident)[:40].rstrip("_")
    if not ident:
        raise TinylrError(f"cannot make a C identifier from the name {name!r}; use letters, digits and _")
    return ident if ident[0].isalpha() else f"m_{ident}"


def comment(text: str, limit: int = 100) -> str:
    """Text safe inside /* ... */: printable ASCII only, one line, no comment
    delimiters or backslashes, and no '??' (C99 trigraphs such as '??/' would still be translated)."""
    text = "".join(ch if " " <= ch <= "~" else "_" for ch in str(text))
    text = text.replace("*/", "*_").replace("/*", "_*").replace("\\", "_")
    while "??" in text:
        text = text.replace("??", "?_")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def float_literal(value: float) -> str:
    """A float32 as a C literal that reads back to the same float32."""
    text = np.format_float_positional(np.float32(value), unique=True, trim="0")
    if "." not in text:
        text += ".0"
    return text + "f"


def rows(values, per_row: int = 16) -> list[str]:
    """Values as initializer rows: '1, -2, 3'."""
    values = [str(int(v)) for v in values]
    return [", ".join(values[i: i + per_row]) for i in range(0, len(values), per_row)]
