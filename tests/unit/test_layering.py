"""The layering rules, read from the source: kfcore never imports Streamlit, the web process's modules never
import TensorFlow at module level, and no module reaches into another kfcore module's private names."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KFCORE = sorted((ROOT / "kfcore").rglob("*.py"))
WEB = [
    ROOT / "app.py",
    *sorted((ROOT / "kfstudio").glob("*.py")),
    *sorted((ROOT / "app_pages").glob("*.py")),
    *sorted((ROOT / "ui").rglob("*.py")),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(tree: ast.AST, top_level_only: bool = False) -> list[tuple[str, list[str]]]:
    """(module, names) for each import; with top_level_only, those that run when the module is imported."""
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [a.name for a in node.names]))
    return found


def test_kfcore_never_imports_streamlit():
    offenders = [
        module_name(p)
        for p in KFCORE
        if any(m.split(".")[0] == "streamlit" for m, _ in imports(ast.parse(p.read_text())))
    ]
    assert not offenders, offenders


def test_the_web_process_imports_no_tensorflow_when_its_modules_load():
    offenders = [
        module_name(p)
        for p in WEB
        if any(
            m.split(".")[0] in ("tensorflow", "keras")
            for m, _ in imports(ast.parse(p.read_text()), top_level_only=True)
        )
    ]
    assert not offenders, offenders


def test_no_module_imports_another_kfcore_modules_private_names():
    offenders = []
    for path in [*KFCORE, *WEB]:
        for module, names in imports(ast.parse(path.read_text())):
            if module.startswith("kfcore") and module != module_name(path):
                offenders += [
                    f"{module_name(path)}: from {module} import {n}"
                    for n in names
                    if n.startswith("_") and not n.startswith("__")
                ]
    assert not offenders, offenders


def test_no_module_reads_a_private_attribute_of_a_kfcore_module():
    """`store._lock`-style reads through an imported kfcore module (attributes of objects are not checked here)."""
    offenders = []
    for path in [*KFCORE, *WEB]:
        tree = ast.parse(path.read_text())
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kfcore"):
                aliases.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
            elif isinstance(node, ast.Import):
                aliases.update({a.asname or a.name: a.name for a in node.names if a.name.startswith("kfcore")})
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and aliases[node.value.id] != module_name(path)
            ):
                offenders.append(f"{module_name(path)}: {node.value.id}.{node.attr}")
    assert not offenders, offenders


def test_pages_are_named_through_ui_pages_never_by_a_path_relative_to_the_entry_script():
    """st.page_link("app_pages/x.py") only works when the repository's app.py is the entry script: not for the
    installed kfstudio command, which runs kfstudio/app.py."""
    quoted = re.compile(r"""[fr]?["']app_pages/""")
    offenders = [module_name(p) for p in WEB if quoted.search(p.read_text())]
    assert not offenders, offenders
