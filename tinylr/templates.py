"""The Jinja2 environment over `firmware_templates/` (and board linker scripts).

StrictUndefined always: a missing context value is an error, never an empty string.
Templates only loop and substitute; every number they print was computed in Python.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = ROOT / "firmware_templates"


@cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(TEMPLATES_DIR), str(ROOT)]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render(template: str | Path, **context) -> str:
    """Render a template named relative to firmware_templates/ (or the repository root)."""
    name = Path(template)
    if name.is_absolute():
        name = name.relative_to(ROOT)
    return environment().get_template(name.as_posix()).render(**context)
