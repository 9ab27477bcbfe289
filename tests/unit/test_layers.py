"""Each folder imports only the folders beneath it on the data's trip (ARCHITECTURE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import mmsearch_cli

PACKAGE = Path(mmsearch_cli.__file__).resolve().parent

# What each part of the package may import, besides itself (ARCHITECTURE.md, "Imports").
ALLOWED: dict[str, set[str]] = {
    "cli": {
        "__version__",
        "api",
        "errors",
        "config",
        "items",
        "search.rows",
        "serve.client",
        "evaluation.report",
    },
    "serve": {"api", "store", "config", "errors", "items"},
    "api": {"*"},
    "evaluation": {"search", "rerank", "store", "items", "config", "errors"},
    "rerank": {"search.rows", "search.explain", "models", "config", "errors"},
    "indexing": {
        "decoders",
        "embedders",
        "store",
        "search.explain",
        "search.calibrate",
        "items",
        "config",
        "errors",
    },
    "search": {"embedders", "decoders", "store", "items", "config", "errors"},
    "embedders": {"decoders", "models", "store.state", "items", "config", "errors"},
    "decoders": {"embedders.yamnet", "embedders.ocr", "models", "items", "config", "errors"},
    "store": {"items", "errors"},
    "models": {"config", "errors"},
    "config": {"errors"},
    "items": set(),
    "errors": set(),
    "__init__": {"api", "errors"},
    "__main__": {"cli"},
}


def part_of(module: str) -> str:
    """'mmsearch_cli.search.rows' -> 'search'; the root package itself -> 'mmsearch_cli'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "mmsearch_cli"


def imports_of(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "mmsearch_cli":
                found += [f"mmsearch_cli.{a.name}" for a in node.names]
            elif node.module.startswith("mmsearch_cli."):
                # `from mmsearch_cli.serve import client` imports the submodule
                folder = PACKAGE.joinpath(*node.module.split(".")[1:])
                subs = [a.name for a in node.names if (folder / f"{a.name}.py").is_file()]
                found += [f"{node.module}.{s}" for s in subs] or [node.module]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("mmsearch_cli")]
    return found


def allowed(importer: str, target: str) -> bool:
    rules = ALLOWED[importer]
    dotted = target.removeprefix("mmsearch_cli.")
    if "*" in rules or part_of(target) == importer:
        return True
    return any(dotted == r or dotted.startswith(r + ".") or target == r for r in rules)


def test_every_import_follows_the_layers() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        importer = rel.parts[0].removesuffix(".py")
        for target in imports_of(path):
            if not allowed(importer, target):
                wrong.append(f"{rel}: {target}")
    assert wrong == []


def test_the_package_root_holds_only_the_six_modules() -> None:
    root = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert root == ["__init__.py", "__main__.py", "api.py", "config.py", "errors.py", "items.py"]
