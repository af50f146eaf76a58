"""Sphinx configuration of the multimix documentation (MyST Markdown pages, autodoc API pages,
the command and configuration references generated from the code)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))

import multimix  # noqa: E402

project = "multimix"
author = "the multimix authors"
copyright = "2026, the multimix authors"
release = version = multimix.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinxarg.ext",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
# pages included by other pages, not documents of their own
exclude_patterns = ["_build", "README.md", "results/*/table.md", "generated/commands.md", "generated/configuration.md"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
html_theme = "furo"
html_title = f"multimix {release}"
html_static_path: list[str] = []

autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
napoleon_google_docstring = True
napoleon_numpy_docstring = False

nitpicky = True
# types of other libraries: no inventory can be fetched where the docs are built offline
nitpick_ignore_regex = [
    (r"py:.*", r"(torch|numpy|np|PIL|matplotlib|monai|albumentations|fastapi|pydicom|onnx|onnxruntime)(\..*)?"),
    (r"py:.*", r"(pathlib|collections|typing|argparse|dataclasses|logging|concurrent|threading|os|io|enum)\..*"),
    (r"py:.*", r"(Path|Tensor|Module|Any|Callable|Iterable|Iterator|Sequence|Mapping|TypeVar|Generator)"),
    (r"py:.*", r"(ndarray|NDArray|Namespace|ArgumentParser|Dataset|DataLoader|Optimizer|LRScheduler|Figure)"),
    (r"py:.*", r"(nn\..*|optim\..*|np\..*|npt\..*|T|T_co|Self|Literal|Protocol|FileLock|Lock|Event|Logger)"),
    (r"py:.*", r"(int|float|str|bool|bytes|dict|list|tuple|set|frozenset|type|object|None|BaseException)"),
]

# --- generated pages -----------------------------------------------------------------------------
GENERATED = DOCS / "generated"


def _public_modules() -> list[str]:
    names = ["multimix"]
    for info in pkgutil.walk_packages(multimix.__path__, "multimix."):
        parts = info.name.split(".")
        if any(p.startswith("_") for p in parts[1:]):
            continue
        names.append(info.name)
    return sorted(names)


def _write(path: Path, text: str) -> None:
    # rewritten only when changed, so an incremental build reads only what moved
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _api_pages() -> None:
    modules = _public_modules()
    for name in modules:
        if name == "multimix.serve.app":
            importlib.import_module(name)  # needs the serve extra; the docs extra installs it
        _write(GENERATED / "api" / f"{name}.md", f"# `{name}`\n\n```{{automodule}} {name}\n:members:\n```\n")


def _command_pages() -> None:
    from multimix.runs.cli import COMMANDS

    lines = []
    for name, (module, about) in COMMANDS.items():
        lines += [
            f"## `multimix {name}`",
            "",
            f"{about[0].upper()}{about[1:]}.",
            "",
            "```{argparse}",
            f":module: multimix.runs.commands.{module}",
            ":func: build_parser",
            f":prog: multimix {name}",
            ":nodescription:",
            "```",
            "",
        ]
    _write(GENERATED / "commands.md", "\n".join(lines))


def _config_page() -> None:
    from multimix.config.reference import config_reference

    _write(GENERATED / "configuration.md", config_reference())


_api_pages()
_command_pages()
_config_page()
