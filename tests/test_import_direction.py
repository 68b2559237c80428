"""Imports flow one way (docs/DESIGN.md): app ← rewards ← moderation, app ← rewards ← miniprogram_api,
app ← hazards. The two blueprints never import each other; app imports no feature package at
module level (inside a function is allowed: that is how create_app wires them)."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FEATURES = {"miniprogram_api", "moderation", "rewards"}
# package -> packages it must never import
FORBIDDEN = {
    "app": FEATURES,
    "rewards": {"moderation", "miniprogram_api"},
    "moderation": {"miniprogram_api"},
    "miniprogram_api": {"moderation"},
}


def _imports(tree, module_level_only):
    nodes = tree.body if module_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
        elif isinstance(node, (ast.If, ast.Try)) and module_level_only:
            yield from _imports(ast.Module(body=node.body, type_ignores=[]), True)


def find_violations():
    violations = []
    for package, banned in FORBIDDEN.items():
        folder = ROOT / package
        for path in folder.rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            # app/ may import features lazily inside functions; features may not import banned ones at all
            for lineno, name in _imports(tree, module_level_only=(package == "app")):
                if name.split(".")[0] in banned:
                    violations.append(f"{path.relative_to(ROOT)}:{lineno} imports {name}")
    return violations


def test_imports_flow_one_way():
    assert find_violations() == []


def test_the_checker_catches_a_wrong_arrow(tmp_path, monkeypatch):
    bad = ROOT / "app" / "_probe_bad_import.py"
    bad.write_text("import moderation\n", encoding="utf-8")
    try:
        assert any("_probe_bad_import" in v for v in find_violations())
    finally:
        bad.unlink()
