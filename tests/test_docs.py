"""docs/API.md agrees with what the project serves, and the project stands on its own.

docs/API.md is the reference the mini-program team, department systems and operators read; the
served OpenAPI document (/api/openapi.json) is the machine-readable source. These tests read both
and the running code, and fail with what to add (or move) when they drift apart:

- HTTP: every operation of the OpenAPI document, every other route of the app (console, Open311,
  health, /metrics, /media, /wechat/push) and every route of the WeChat sandbox is a row of a table
  in docs/API.md, and every row names a route that exists. A row is a table line whose first cell
  is `METHOD /full/path` in backticks; path parameters are written {name}.
- Environment variables: every variable app/config.py reads (found by running load_config on a
  recording environment, in development and in production, and by reading its source), every one
  the sandbox reads, and every os.environ read elsewhere in the project appears in backticks.
- CLI: every command the project registers on `flask --app wsgi` has a row in the "Operator
  commands" section whose first cell starts with the command and names each of its options.
- Error codes the code raises, and the status words of tips, tickets and payouts, appear in backticks.
- Rows under the heading "Planned" are the contract's parts not built yet: they do not count as
  documentation, and a planned item the code now serves fails until it is moved to its section.
"""
from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parent.parent
API_MD = ROOT / "docs" / "API.md"
# Packages whose source is the project's (commands, env reads, error codes are looked for here).
PROJECT_PACKAGES = ("app", "rewards", "moderation", "miniprogram_api")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# Served by flask-smorest itself: the document and its HTML viewer are not operations of the document.
OPENAPI_SELF = {"/api/openapi.json", "/api/docs"}
ROW = re.compile(r"^\|\s*`((?:GET|POST|PUT|PATCH|DELETE)(?:\s*[,|/]\s*(?:GET|POST|PUT|PATCH|DELETE))*)\s+(/[^`\s?]*)[^`]*`")


# --- reading docs/API.md ------------------------------------------------------------------------

def read_sections(text: str) -> list[tuple[str, str]]:
    """(## heading, body) pairs; text before the first ## heading is under ""."""
    sections, heading, lines = [], "", []
    for line in text.splitlines():
        if line.startswith("## "):
            sections.append((heading, "\n".join(lines)))
            heading, lines = line[3:].strip(), []
        else:
            lines.append(line)
    sections.append((heading, "\n".join(lines)))
    return sections


def is_planned(heading: str) -> bool:
    return heading.lower().startswith("planned")


def is_sandbox(heading: str) -> bool:
    return "sandbox" in heading.lower()


def normalize_path(path: str) -> str:
    """Flask's <int:tip_id> and OpenAPI's {tip_id} both become {}; names are for readers."""
    return re.sub(r"<[^>]*>|\{[^}]*\}", "{}", path)


def http_rows(body: str) -> set[tuple[str, str]]:
    rows = set()
    for line in body.splitlines():
        match = ROW.match(line.strip())
        if match:
            for method in re.split(r"\s*[,|/]\s*", match.group(1)):
                rows.add((method, normalize_path(match.group(2))))
    return rows


def backticked(body: str) -> set[str]:
    return set(re.findall(r"`([^`\n]+)`", body))


@pytest.fixture(scope="module")
def api_md() -> dict:
    assert API_MD.is_file(), "docs/API.md is missing: it is the project's API reference (see README.md)"
    sections = read_sections(API_MD.read_text(encoding="utf-8"))
    doc = {"app": set(), "sandbox": set(), "planned": set(), "words": set(), "planned_words": set(),
           "commands": [], "planned_commands": []}
    for heading, body in sections:
        planned = is_planned(heading)
        rows = http_rows(body)
        doc["planned" if planned else "sandbox" if is_sandbox(heading) else "app"] |= rows
        doc["planned_words" if planned else "words"] |= backticked(body)
        if planned or "command" in heading.lower():
            for line in body.splitlines():
                cell = re.match(r"^\|\s*`([a-z][a-z0-9-]*(?: [^`]*)?)`", line.strip())
                if cell:
                    doc["planned_commands" if planned else "commands"].append(cell.group(1))
    return doc


def _pairs(pairs) -> str:
    return ", ".join(f"{m} {p}" for m, p in sorted(pairs, key=lambda x: (x[1], x[0])))


# --- what the project serves ----------------------------------------------------------------------

def route_pairs(flask_app, skip=("static",)) -> set[tuple[str, str]]:
    pairs = set()
    for rule in flask_app.url_map.iter_rules():
        if rule.endpoint in skip:
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            pairs.add((method, normalize_path(rule.rule)))
    return pairs


@pytest.fixture(scope="module")
def openapi_pairs(app) -> set[tuple[str, str]]:
    spec = app.test_client().get("/api/openapi.json").get_json()
    return {(method.upper(), normalize_path(path)) for path, ops in spec["paths"].items()
            for method in ops if method.upper() in METHODS}


@pytest.fixture(scope="module")
def sandbox_app(tmp_path_factory):
    from app.wechat_sandbox import create_sandbox_app

    return create_sandbox_app({"SANDBOX_STATE": str(tmp_path_factory.mktemp("sandbox-docs") / "state.db")})


def test_every_openapi_operation_is_documented(api_md, openapi_pairs):
    missing = openapi_pairs - api_md["app"]
    assert not missing, (
        f"/api/openapi.json has operations docs/API.md does not document: {_pairs(missing)}. Add a row per "
        "operation to the table of its API in docs/API.md, first cell `METHOD /full/path` (path parameters "
        "as {name}), with the body or query, the answer and the error codes"
        + (" (and move it out of the Planned section)" if missing & api_md["planned"] else "") + ".")


def test_every_documented_api_path_is_in_openapi(api_md, openapi_pairs):
    api_rows = {(m, p) for m, p in api_md["app"] if p.startswith("/api/") and p not in OPENAPI_SELF}
    stale = api_rows - openapi_pairs
    assert not stale, (
        f"docs/API.md documents operations /api/openapi.json does not have: {_pairs(stale)}. Either the path "
        "or method in docs/API.md is wrong (fix the row), or the view is not registered through flask-smorest "
        "(register it so the OpenAPI document lists it), or it is not built yet (move the row to Planned).")


def test_every_other_route_of_the_app_is_documented(api_md, app, openapi_pairs):
    others = {(m, p) for m, p in route_pairs(app) if not p.startswith("/api/") or p in OPENAPI_SELF}
    missing = others - api_md["app"]
    assert not missing, (
        f"The app serves routes docs/API.md does not document: {_pairs(missing)}. Add a row for each to the "
        "matching table of docs/API.md (console pages under 'Staff console', others under 'Other HTTP "
        "endpoints'), first cell `METHOD /full/path`.")
    undeclared = {(m, p) for m, p in route_pairs(app) if p.startswith("/api/") and p not in OPENAPI_SELF} - openapi_pairs
    assert not undeclared, (
        f"Routes under /api/ missing from /api/openapi.json: {_pairs(undeclared)}. Register them through "
        "flask-smorest (a Blueprint with @bp.arguments/@bp.response) so the document lists them.")


def test_every_documented_route_outside_openapi_exists(api_md, app):
    rows = {(m, p) for m, p in api_md["app"] if not p.startswith("/api/") or p in OPENAPI_SELF}
    stale = rows - route_pairs(app)
    assert not stale, (
        f"docs/API.md documents routes the app does not serve: {_pairs(stale)}. Fix the method or path in "
        "docs/API.md, or move the row to the Planned section if it is not built yet.")


def test_sandbox_routes_and_documentation_agree(api_md, sandbox_app):
    served = route_pairs(sandbox_app)
    missing = served - api_md["sandbox"]
    assert not missing, (
        f"The WeChat sandbox serves routes docs/API.md does not document: {_pairs(missing)}. Add a row for "
        "each to a table of the 'WeChat sandbox' section of docs/API.md (WeChat's own APIs, or the control "
        "endpoints), first cell `METHOD /full/path`.")
    stale = api_md["sandbox"] - served
    assert not stale, (
        f"docs/API.md's sandbox section documents routes the sandbox does not serve: {_pairs(stale)}. Fix the "
        "row, or move it to the Planned section if it is not built yet.")


def test_planned_routes_are_not_served(api_md, app, openapi_pairs, sandbox_app):
    built = api_md["planned"] & (route_pairs(app) | openapi_pairs | route_pairs(sandbox_app))
    assert not built, (
        f"docs/API.md lists as Planned routes that are now served: {_pairs(built)}. Move each row from the "
        "Planned section to its API's table and describe what the code does.")


# --- environment variables -------------------------------------------------------------------------

class RecordingEnv(dict):
    """An environment that remembers every name asked for."""

    def __init__(self, values):
        super().__init__(values)
        self.asked: set[str] = set()

    def get(self, key, default=None):
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        self.asked.add(key)
        return super().__contains__(key)


ENV_NAME = r"['\"]([A-Z][A-Z0-9_]+)['\"]"
# os.environ and load_config's `env` parameter; not request.environ (WSGI's, not the process's).
ENV_READ = re.compile(r"(?:\bos\.environ|(?<![\w.])env)(?:\.get\(|\.setdefault\(|\[)\s*" + ENV_NAME
                      + r"|\bgetenv\(\s*" + ENV_NAME + r"|_env_\w+\(\s*env\s*,\s*" + ENV_NAME)


def project_python_files():
    for name in PROJECT_PACKAGES:
        yield from sorted((ROOT / name).rglob("*.py"))
    for extra in ("wsgi.py", "dev.py", "deploy/gunicorn.conf.py"):
        if (ROOT / extra).is_file():
            yield ROOT / extra


def env_reads_in_source() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in project_python_files():
        for match in ENV_READ.finditer(path.read_text(encoding="utf-8")):
            name = next(g for g in match.groups() if g)
            found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def env_reads_of_config() -> set[str]:
    from app.config import REQUIRED_IN_PRODUCTION, load_config

    asked = set()
    for values in ({}, {"APP_ENV": "testing"},
                   {"APP_ENV": "production", **{name: "x" for name in REQUIRED_IN_PRODUCTION}}):
        env = RecordingEnv(values)
        try:
            load_config(env=env)
        except Exception:  # a production rule refusing the dummy values still shows what it read
            pass
        asked |= env.asked
    return asked


def env_reads_of_sandbox() -> set[str]:
    from app.wechat_sandbox import ENV_KEYS, sandbox_settings

    env = RecordingEnv({})
    sandbox_settings({}, env=env)
    return env.asked | set(ENV_KEYS)


def test_recording_env_sees_what_config_reads():
    """The detector itself: a known read is seen (else the test below could pass on nothing)."""
    asked = env_reads_of_config()
    assert {"DATABASE_URL", "SECRET_KEY", "WECHAT_APPID", "WECHAT_TEMPLATE_TIP_RESULT"} <= asked
    assert "DATABASE_URL" in env_reads_in_source() and "SANDBOX_STATE" in env_reads_of_sandbox()


def test_every_environment_variable_is_documented(api_md):
    sources = {name: {"app/config.py"} for name in env_reads_of_config()}
    for name in env_reads_of_sandbox():
        sources.setdefault(name, set()).add("app/wechat_sandbox (sandbox_settings)")
    for name, files in env_reads_in_source().items():
        sources.setdefault(name, set()).update(files)
    missing = {name: files for name, files in sources.items() if name not in api_md["words"]}
    assert not missing, (
        "Environment variables the code reads but docs/API.md does not document: "
        + "; ".join(f"{name} (read in {', '.join(sorted(files))})" for name, files in sorted(missing.items()))
        + ". Add each, in backticks, to a table of the Configuration section of docs/API.md with its default "
        "and meaning (and say whether production requires it)"
        + (" — and take it out of the Planned section" if set(missing) & api_md["planned_words"] else "") + ".")
    built = (set(sources) & api_md["planned_words"]) - api_md["words"]
    assert not built, f"docs/API.md lists as Planned variables the code reads: {sorted(built)}"


def test_planned_variables_are_not_read_yet(api_md):
    read = env_reads_of_config() | env_reads_of_sandbox() | set(env_reads_in_source())
    planned = {w for w in api_md["planned_words"] if re.fullmatch(r"[A-Z][A-Z0-9_]{3,}", w)}
    now_read = planned & read
    assert not now_read, (
        f"docs/API.md lists as Planned environment variables the code now reads: {sorted(now_read)}. "
        "Document them in the Configuration section and take them out of Planned.")


# --- CLI commands --------------------------------------------------------------------------------

def project_commands(flask_app) -> dict[str, click.Command]:
    """'staff create' → command, for every leaf command whose code is the project's own."""
    found = {}

    def walk(command, path):
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, [*path, name])
            return
        module = getattr(command.callback, "__module__", "") or ""
        if module.split(".")[0] in PROJECT_PACKAGES:
            found[" ".join(path)] = command

    walk(flask_app.cli, [])
    return found


def all_commands(flask_app) -> dict[str, click.Command]:
    found = {}

    def walk(command, path):
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, [*path, name])
        else:
            found[" ".join(path)] = command

    walk(flask_app.cli, [])
    return found


def option_flags(command: click.Command) -> list[str]:
    """The long flag of each visible option (`--department`)."""
    flags = []
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            longs = [o for o in param.opts + param.secondary_opts if o.startswith("--")]
            flags.append(longs[0] if longs else param.opts[0])
    return flags


def rows_for(command_path: str, cells: list[str]) -> list[str]:
    return [c for c in cells if c == command_path or c.startswith(command_path + " ")]


def test_every_cli_command_and_option_is_documented(api_md, app):
    commands = project_commands(app)
    assert {"init", "worker", "staff create"} <= set(commands)  # the walk itself works
    problems = []
    for path, command in sorted(commands.items()):
        rows = rows_for(path, api_md["commands"])
        if not rows:
            usage = " ".join([path, *(f"{f} …" for f in option_flags(command))])
            problems.append(f"`{path}` has no row: add `| `{usage}` | what it does |` to the Operator commands "
                            "table")
            continue
        text = " ".join(rows)
        absent = [f for f in option_flags(command) if not re.search(re.escape(f) + r"(?![a-z-])", text)]
        if absent:
            problems.append(f"`{path}`: options {', '.join(absent)} are not in its row's first cell")
    assert not problems, "docs/API.md and `flask --app wsgi` disagree:\n- " + "\n- ".join(problems)


def test_every_documented_cli_command_exists(api_md, app):
    commands = all_commands(app)
    problems = []
    for cell in api_md["commands"]:
        words = cell.split()
        path = next((" ".join(words[:n]) for n in (3, 2, 1) if " ".join(words[:n]) in commands), None)
        if path is None:
            problems.append(f"`{cell}`: no such command")
            continue
        flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", cell))
        unknown = flags - {o for p in commands[path].params for o in p.opts + p.secondary_opts}
        if unknown:
            problems.append(f"`{cell}`: `{path}` has no option {', '.join(sorted(unknown))}")
    assert not problems, ("docs/API.md documents commands or options `flask --app wsgi` does not have (fix the "
                          "row, or move it to Planned):\n- " + "\n- ".join(problems))


def test_planned_commands_are_not_built_yet(api_md, app):
    commands = all_commands(app)
    built = []
    for cell in api_md["planned_commands"]:
        words = cell.split()
        path = next((" ".join(words[:n]) for n in (3, 2, 1) if " ".join(words[:n]) in commands), None)
        if path is None:
            continue
        flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", cell))
        known = {o for p in commands[path].params for o in p.opts + p.secondary_opts}
        if flags <= known:
            built.append(cell)
    assert not built, (f"docs/API.md lists as Planned commands that now exist: {built}. Move them to the "
                       "Operator commands table.")


# --- error codes and status words -----------------------------------------------------------------

def error_classes() -> dict[str, type]:
    """AppError and its subclasses in the project's packages (create_app has imported them all;
    a test module's own subclasses are left out)."""
    from app.errors import AppError

    found, todo = {}, [AppError]
    while todo:
        cls = todo.pop()
        if cls.__module__.split(".")[0] in PROJECT_PACKAGES:
            found[cls.__name__] = cls
        todo.extend(cls.__subclasses__())
    return found


def error_codes_in_source() -> dict[str, set[str]]:
    """Codes the code can answer: class attributes of AppError subclasses, `code="…"` keywords, and the
    tables (code → (ErrorClass, message)) and (status → (code, message)) that feed them."""
    classes = error_classes()
    found: dict[str, set[str]] = {}

    def add(code, path):
        found.setdefault(code, set()).add(str(path.relative_to(ROOT)))

    for cls in classes.values():
        module = __import__(cls.__module__, fromlist=["_"])
        add(cls.code, Path(module.__file__))
    for path in project_python_files():
        if "wechat_sandbox" in path.parts:
            continue  # the sandbox answers WeChat's codes, documented with it
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                for kw in node.keywords:
                    if kw.arg == "code" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                        add(kw.value.value, path)
            elif isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values):
                    if not (isinstance(value, ast.Tuple) and value.elts):
                        continue
                    first = value.elts[0]
                    if isinstance(key, ast.Constant) and isinstance(key.value, str) and \
                            isinstance(first, ast.Name) and first.id in classes:
                        add(key.value, path)
                    elif isinstance(key, ast.Constant) and isinstance(key.value, int) and \
                            isinstance(first, ast.Constant) and isinstance(first.value, str) and \
                            re.fullmatch(r"[a-z][a-z0-9_]+", first.value):
                        add(first.value, path)
    return found


def test_every_error_code_is_documented(api_md, app):
    codes = error_codes_in_source()
    assert {"validation_error", "idempotency_conflict", "image_corrupt"} <= set(codes)  # the scan works
    missing = {code: files for code, files in codes.items() if code not in api_md["words"]}
    assert not missing, (
        "Error codes the code answers but docs/API.md does not list: "
        + "; ".join(f"{code} (in {', '.join(sorted(files))})" for code, files in sorted(missing.items()))
        + ". Add each, in backticks, to the Error codes table of docs/API.md with its HTTP status, the "
        "Chinese message and when it happens.")


def test_every_status_word_is_documented(api_md):
    from app.hazards.models import HAZARD_STATUSES
    from app.models.tip import TIP_STATUSES
    from rewards.models import PAYOUT_STATUSES

    missing = [s for s in (*TIP_STATUSES, *HAZARD_STATUSES, *PAYOUT_STATUSES) if s not in api_md["words"]]
    assert not missing, (f"Status values not in docs/API.md: {missing}. Add them, in backticks, to the status "
                         "table of tips, tickets or rewards, with the Chinese label the apps show.")


# --- the project stands alone --------------------------------------------------------------------

def project_files() -> list[Path]:
    try:
        names = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                               capture_output=True, text=True).stdout.splitlines()
        return [ROOT / n for n in names if (ROOT / n).is_file()]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an unpacked archive)
        skip = {".git", ".venv", "instance", "node_modules", "__pycache__"}
        return [p for p in ROOT.rglob("*") if p.is_file() and not skip & set(p.relative_to(ROOT).parts)]


def test_no_file_points_outside_the_project():
    needle = "../" + "shared"  # spelled apart so this file does not match itself
    offenders = []
    for path in project_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        offenders += [f"{path.relative_to(ROOT)}:{n}" for n, line in enumerate(text.splitlines(), 1) if needle in line]
    assert not offenders, (
        f"These lines point at {needle}/, which a clone of the repository does not have: {offenders}. Point "
        "them at the project's own docs instead (docs/API.md for the interface, docs/DESIGN.md for the domain).")
    assert len(project_files()) > 20  # the walk found the project


def test_documentation_links_resolve():
    """Links between the project's documents, and the docs/*.md files they name, exist."""
    documents = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for document in documents:
        text = document.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:|#", target):
                continue
            if not (document.parent / target.split("#")[0]).exists():
                broken.append(f"{document.relative_to(ROOT)} → {target}")
        for named in set(re.findall(r"\bdocs/[A-Za-z_-]+\.md\b", text)):
            if not (ROOT / named).is_file():
                broken.append(f"{document.relative_to(ROOT)} names {named}")
    assert not broken, f"Links to documents that do not exist: {broken}"
    assert len(documents) > 3
