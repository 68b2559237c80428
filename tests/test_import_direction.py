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


# app/wechat/: the only importer of wechatpy; its modules import one another in one direction
# (errors/results/common ← bills, tokens, limiter, media, keepalive ← mp, push, pay_v2, pay_v3 ← gateway ← __init__),
# never app.extensions at module level (app.extensions imports the package), and code outside the
# package uses its public face (`from app.wechat import …`), not its modules.
WECHAT = ROOT / "app" / "wechat"
WECHAT_LAYERS = {
    "errors": 0, "results": 0, "common": 0,
    "bills": 1, "tokens": 1, "limiter": 1, "media": 1, "keepalive": 1,
    "mp": 2, "push": 2, "pay_v2": 2, "pay_v3": 2,
    "gateway": 3,
    "__init__": 4,
}
PROJECT_CODE = ("app", "rewards", "moderation", "miniprogram_api", "bench")


def find_wechat_violations(overrides=None):
    """overrides: {path: source} read instead of (or besides) the files on disk."""
    overrides = overrides or {}
    paths = {path for package in PROJECT_CODE for path in (ROOT / package).rglob("*.py")} | set(overrides)
    violations = []
    for path in sorted(paths):
        inside = WECHAT in path.parents
        source = overrides[path] if path in overrides else path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        for lineno, name in _imports(tree, module_level_only=False):
            where = f"{path.relative_to(ROOT)}:{lineno}"
            if name.split(".")[0] in ("wechatpy", "wechatpayv3") and not inside:
                violations.append(f"{where} imports {name} outside app/wechat/")
            if name.startswith("app.wechat.") and not inside:
                violations.append(f"{where} imports {name}: use `from app.wechat import …`")
        if not inside:
            continue
        layer = WECHAT_LAYERS.get(path.stem)
        if layer is None:
            violations.append(f"{path.relative_to(ROOT)} is not in WECHAT_LAYERS")
            continue
        for lineno, name in _imports(tree, module_level_only=True):
            where = f"{path.relative_to(ROOT)}:{lineno}"
            if name == "app.extensions" or name.split(".")[0] in FEATURES:
                violations.append(f"{where} imports {name} at module level")
            if name.startswith("app.wechat.") and WECHAT_LAYERS.get(name.split(".")[2], 99) >= layer:
                violations.append(f"{where} imports {name} from its own layer or above")
    return violations


def test_the_wechat_package_is_layered_and_sealed():
    assert find_wechat_violations() == []


def test_the_wechat_checker_catches_a_wrong_arrow():
    bills = WECHAT / "bills.py"
    found = find_wechat_violations({
        bills: bills.read_text(encoding="utf-8") + "\nfrom app.wechat.mp import MiniProgramAPI\n",
        ROOT / "rewards" / "_probe.py": "from app.wechat.pay_v2 import RedPacketPay\nimport wechatpy\n",
    })
    assert any("bills.py" in v and "app.wechat.mp" in v for v in found)
    assert any("_probe.py" in v and "wechatpy" in v for v in found)
    assert any("_probe.py" in v and "app.wechat.pay_v2" in v for v in found)
