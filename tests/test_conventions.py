"""The parts of docs/conventions.md a machine can check, on every public name.

(a) Vocabulary of every public signature (functions, classes and their public methods, in
    the ``__all__`` of ``subspaces`` and every subpackage): no retired parameter name, no
    British spelling, ``metric`` only for point distances, ``eps`` only for the coding rate,
    options keyword-only.
(b) American spelling in every text file of src/, docs/ and tests/.
(c) No name that CHANGELOG.md retires still used in src/, docs/ or tests/.
(d) Every public function and class has a docstring with a ``>>>`` example.
(e) Floors: floor 1 imports no family; a family imports neither the face nor another
    family's private module or name.
(f) Retrieval results report ``top_k`` (one dict), not a field per k.

Each test is parametrized by family (``-k geometry``) and lists every offender at once,
grouped by module (or file).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

import subspaces
from tests._public import families

ROOT = Path(__file__).resolve().parents[1]
THIS_FILE = Path(__file__).resolve()

# Retired parameter names and what the contract uses instead.
RETIRED_PARAMETERS = {
    "n_neighbors": "k",
    "n_classes": "num_classes",
    "generator": "seed",
    "ver": "method",
    "mode": "method",
    "of": "method",
    "statistic": "method",
    "k1": "k=(k1, k2)",
    "k2": "k=(k1, k2)",
    "n1": "k=(k1, k2)",
    "n2": "k=(k1, k2)",
    "regularization": "ridge (relative)",
    "block_size": "chunk_size",
}

# Point distances: the only values a parameter named ``metric`` may take.
POINT_DISTANCES = {
    "euclidean",
    "sqeuclidean",
    "cosine",
    "manhattan",
    "cityblock",
    "chebyshev",
    "correlation",
    "minkowski",
    "l1",
    "l2",
    "dot",
    "inner_product",
}

# Data arguments: positional, and may have a default (``y=None``, ``bias=None``); every
# other parameter with a default is an option and must be keyword-only. ``layers`` names
# which of a store's data to read (``store.iter_batches("fc1")``).
DATA_NAMES = {
    "x",
    "y",
    "z",
    "xs",
    "ys",
    "labels",
    "features",
    "anchors",
    "weight",
    "weights",
    "bias",
    "target",
    "shift_x",
    "shift_y",
    "layers",
}

# British spellings (docs/conventions.md: American, as numpy, torch and scikit-learn spell it).
_IZE_STEMS = [
    "normalis",
    "initialis",
    "regularis",
    "minimis",
    "maximis",
    "standardis",
    "serialis",
    "penalis",
    "summaris",
    "recognis",
    "optimis",
    "synchronis",
    "organis",
    "visualis",
    "parallelis",
    "generalis",
    "characteris",
    "randomis",
    "utilis",
    "amortis",
    "vectoris",
    "tokenis",
    "materialis",
    "stabilis",
    "realis",
    "quantis",
    "discretis",
    "finalis",
    "categoris",
    "orthogonalis",
    "orthonormalis",
    "prioritis",
    "customis",
    "specialis",
    "sanitis",
]
BRITISH = re.compile(
    r"(?i)(centred|centring|centre|neighbour|colour|behaviour|honour|favour|labelled"
    r"|labelling|modelling|modelled|licence|artefact|catalogue|judgement"
    r"|analys(?:e|ed|ing)(?![a-z])|emphasis(?:e|ed|es|ing)(?![a-z])"
    r"|(?:" + "|".join(_IZE_STEMS) + r")(?:ations?|ability|able|ers?|ing|ed|es|e)(?![a-z]))"
)

TEXT_SUFFIXES = {
    ".py",
    ".md",
    ".txt",
    ".rst",
    ".j2",
    ".html",
    ".json",
    ".toml",
    ".cfg",
    ".yaml",
    ".yml",
    ".ini",
}
SCANNED_FOLDERS = ("src", "docs", "tests")


# ------------------------------------------------------------------------------ discovery


@cache
def _public() -> tuple[dict[str, list[tuple[str, Any]]], dict[str, str]]:
    """Family -> [(public name, object)] over every ``__all__`` (each object once, under the
    first family that exports it); family -> import error."""
    names: dict[str, list[tuple[str, Any]]] = defaultdict(list)
    errors: dict[str, str] = {}
    seen: set[int] = set()
    for family, package in families():
        if isinstance(package, BaseException):
            errors[family] = f"{type(package).__name__}: {package}"
            continue
        for name in getattr(package, "__all__", ()):
            obj = getattr(package, name, None)
            if obj is None or id(obj) in seen:
                continue
            if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj):
                seen.add(id(obj))
                names[family].append((name, obj))
    return dict(names), errors


def _family_ids() -> list[str]:
    names = ["subspaces"]
    for info in pkgutil.iter_modules(subspaces.__path__):
        if info.ispkg:
            names.append(info.name)
    return names


FAMILIES = _family_ids()


def _members(family: str) -> list[tuple[str, Any]]:
    names, errors = _public()
    if family in errors:
        pytest.fail(f"subspaces.{family} does not import: {errors[family]}")
    return names.get(family, [])


def _report(title: str, offenders: dict[str, list[str]]) -> str:
    lines = [f"{title} ({sum(map(len, offenders.values()))}):"]
    for group in sorted(offenders):
        lines.append(f"  {group}:")
        lines.extend(f"    {line}" for line in offenders[group])
    return "\n".join(lines)


# ------------------------------------------------------------------------------ (a) signatures


def _own_methods(cls: type) -> Iterator[tuple[str, Callable[..., Any], set[str]]]:
    """Public methods (and the constructor) that subspaces defines on ``cls`` or on one of
    its (private) bases, each with the parameter names it inherits from a method of the same
    name outside subspaces (an override keeps torch's or scikit-learn's API:
    ``nn.Module.train(mode)``)."""
    if not issubclass(cls, BaseException):
        yield cls.__name__, cls, set()
    for name in dir(cls):
        if name.startswith("_"):
            continue
        attr = inspect.getattr_static(cls, name)
        fn = attr.__func__ if isinstance(attr, (classmethod, staticmethod)) else attr
        if inspect.isfunction(fn) and fn.__module__.startswith("subspaces"):
            yield f"{cls.__name__}.{name}", fn, _foreign_parameters(cls, name)


def _foreign_parameters(cls: type, name: str) -> set[str]:
    names: set[str] = set()
    for base in cls.__mro__[1:]:
        if base.__module__.startswith("subspaces") or name not in vars(base):
            continue
        attr = vars(base)[name]
        fn = attr.__func__ if isinstance(attr, (classmethod, staticmethod)) else attr
        try:
            names |= set(inspect.signature(fn).parameters)
        except (TypeError, ValueError):
            continue
    return names


def _is_dataclass_result(cls: type) -> bool:
    return hasattr(cls, "__dataclass_fields__")


def _is_coding_rate(obj: Any, where: str) -> bool:
    module = getattr(obj, "__module__", "") or ""
    return (
        "coding_rate" in module or re.search(r"(?i)coding_?rate|rate_?reduction", where) is not None
    )


def _signature_problems(
    where: str, fn: Callable[..., Any], owner: Any, foreign: set[str]
) -> list[str]:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    problems = []
    params = [
        p
        for p in signature.parameters.values()
        if p.name not in ("self", "cls", *foreign)
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    is_result = inspect.isclass(fn) and _is_dataclass_result(fn)
    for p in params:
        if p.name in RETIRED_PARAMETERS:
            problems.append(f"{where}: `{p.name}` is retired, use `{RETIRED_PARAMETERS[p.name]}`")
        if BRITISH.search(p.name):
            problems.append(f"{where}: `{p.name}` is British spelling")
        if p.name == "metric" and not (
            isinstance(p.default, str) and p.default.lower() in POINT_DISTANCES
        ):
            problems.append(
                f"{where}: `metric` (default {p.default!r}) is only for point distances "
                "(euclidean, cosine, ...): use `dissimilarity`, `distance` or `method`"
            )
        if p.name == "eps" and not _is_coding_rate(owner, where):
            problems.append(
                f"{where}: `eps` is only the coding rate's ε: use `ridge` or a clear name"
            )
        if (
            not is_result
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            and p.default is not p.empty
            and p.name not in DATA_NAMES
        ):
            problems.append(f"{where}: option `{p.name}` must be keyword-only (after `*`)")
    return problems


@pytest.mark.parametrize("family", FAMILIES)
def test_signatures_use_the_vocabulary(family: str) -> None:
    offenders: dict[str, list[str]] = defaultdict(list)
    for _name, obj in _members(family):
        own = inspect.isclass(obj)
        targets = list(_own_methods(obj)) if own else [(obj.__name__, obj, set[str]())]
        for where, fn, foreign in targets:
            for problem in _signature_problems(where, fn, obj, foreign):
                offenders[obj.__module__].append(problem)
    if offenders:
        pytest.fail(_report(f"signatures off the vocabulary in {family}", offenders), pytrace=False)


# ------------------------------------------------------------------------------ (b) spelling


@cache
def _text_files() -> tuple[Path, ...]:
    files = []
    for folder in SCANNED_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*")):
            if (
                path.is_file()
                and path.suffix in TEXT_SUFFIXES
                and path.resolve() != THIS_FILE
                and not any(part.startswith(".") or part == "__pycache__" for part in path.parts)
                and ".egg-info" not in str(path)
            ):
                files.append(path)
    return tuple(files)


def _file_family(path: Path) -> str:
    """The family a file belongs to: src/subspaces/<family>/..., tests/<family>/... (files at
    the top of src/subspaces and tests: ``subspaces``; docs: ``docs``)."""
    parts = path.relative_to(ROOT).parts
    if parts[0] == "docs":
        return "docs"
    inner = parts[2:] if parts[:2] == ("src", "subspaces") else parts[1:]
    return inner[0] if len(inner) > 1 and inner[0] in FAMILIES else "subspaces"


SPELLING_GROUPS = sorted({*FAMILIES, "docs"})


@pytest.mark.parametrize("group", SPELLING_GROUPS)
def test_american_spelling_everywhere(group: str) -> None:
    offenders: dict[str, list[str]] = defaultdict(list)
    for path in _text_files():
        if _file_family(path) != group:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            words = sorted({m.group(0) for m in BRITISH.finditer(line)})
            if words:
                offenders[str(path.relative_to(ROOT))].append(f"line {number}: {', '.join(words)}")
    if offenders:
        pytest.fail(_report(f"British spelling in {group}", offenders), pytrace=False)


# ------------------------------------------------------------------------------ (c) CHANGELOG

CHANGELOG = ROOT / "CHANGELOG.md"
# Lines "- `old` -> `new` ..." (or "- old -> new ...", or →), or table rows "| `old` | `new` |".
_RENAME_LINE = re.compile(r"^\s*[-*]\s+`([^`]+)`\s*(?:->|→)\s*`([^`]*)`(.*)$")
_PLAIN_LINE = re.compile(r"^\s*[-*]\s+([\w.]+)\s*(?:->|→)\s*([\w.]+)(.*)$")
_RENAME_ROW = re.compile(r"^\s*\|\s*`([^`]+)`\s*\|\s*`([^`]*)`\s*\|(.*)$")
# A rename of a parameter, option or field is checked by (a): its old name may be a word of
# ordinary use (mode, of, metric...) or a peer library's keyword (n_neighbors in oracles).
_PARAMETER_WORDS = re.compile(
    r"(?i)\b(parameters?|arguments?|keywords?|options?|fields?|kwargs?)\b"
)


def _resolves(old: str) -> bool:
    """Whether ``old`` still names something of subspaces: a module or attribute path
    (``subspaces.io.store``, ``similarity.CCA``), or a name defined in a loaded module."""
    parts = old.split(".")
    if "." not in old:
        return any(
            old in vars(module)
            for name, module in list(sys.modules.items())
            if name.split(".")[0] == "subspaces" and module is not None
        )
    if parts[0] != "subspaces":
        parts = ["subspaces", *parts]
    for i in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except Exception:
            continue
        try:
            for part in parts[i:]:
                obj = getattr(obj, part)
        except AttributeError:
            return False
        return True
    return False


def _retired_names() -> list[tuple[str, str]]:
    """(old identifier, the CHANGELOG line) for each retired name: not a parameter, not
    reused as a new name, and no longer anything of subspaces."""
    if not CHANGELOG.is_file():
        return []
    _public()  # import every family, so that _resolves sees their modules
    entries = []
    for line in CHANGELOG.read_text(encoding="utf-8").splitlines():
        match = _RENAME_LINE.match(line) or _RENAME_ROW.match(line) or _PLAIN_LINE.match(line)
        if match is None:
            continue
        old, new, rest = match.groups()
        if "(" in old or "=" in old or _PARAMETER_WORDS.search(rest):
            continue  # a parameter (`f(n_neighbors)`, `n_neighbors=`): part (a)
        old = old.strip().rstrip("()")
        if old in RETIRED_PARAMETERS or not re.fullmatch(r"[\w.]+", old) or len(old) < 3:
            continue
        entries.append((old, new.strip().rstrip("()"), line.strip()))
    new_names = {new for _, new, _ in entries} | {new.split(".")[-1] for _, new, _ in entries}
    return [(old, line) for old, _, line in entries if old not in new_names and not _resolves(old)]


def _needles(old: str) -> list[re.Pattern[str]]:
    """Whole-word patterns of a retired name: the dotted path as written and, when dotted,
    its last part if that is an identifier of its own (has ``_`` or a capital) that
    subspaces no longer defines anywhere (``TranslationScores`` moved, not retired)."""
    patterns = [old]
    last = old.split(".")[-1]
    distinctive = "_" in last.strip("_") or last.startswith("_") or last != last.lower()
    if last != old and distinctive and not _resolves(last):
        patterns.append(last)
    return [re.compile(r"(?<![\w])" + re.escape(p) + r"(?![\w])") for p in patterns]


@pytest.mark.parametrize("group", SPELLING_GROUPS)
def test_no_retired_name_is_used(group: str) -> None:
    retired = _retired_names()
    if not retired:
        pytest.skip("CHANGELOG.md has no rename lines yet")
    compiled = [(old, line, _needles(old)) for old, line in retired]
    offenders: dict[str, list[str]] = defaultdict(list)
    for path in _text_files():
        if _file_family(path) != group:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        present = [
            (old, needles) for old, _, needles in compiled if any(n.search(text) for n in needles)
        ]
        for number, line in enumerate(text.splitlines() if present else (), start=1):
            used = [old for old, needles in present if any(n.search(line) for n in needles)]
            if used:
                where = str(path.relative_to(ROOT))
                offenders[where].append(f"line {number}: {', '.join(f'`{u}`' for u in used)}")
    if offenders:
        pytest.fail(
            _report(f"names retired by CHANGELOG.md still used in {group}", offenders),
            pytrace=False,
        )


# ------------------------------------------------------------------------------ (d) examples


@pytest.mark.parametrize("family", FAMILIES)
def test_every_public_name_has_an_example(family: str) -> None:
    offenders: dict[str, list[str]] = defaultdict(list)
    for name, obj in _members(family):
        doc = obj.__doc__ or ""  # the object's own docstring, not a base class's
        if ">>>" not in doc:
            what = "no docstring" if not doc.strip() else "no >>> example"
            offenders[getattr(obj, "__module__", family)].append(f"{name}: {what}")
    if offenders:
        pytest.fail(
            _report(f"public names of {family} without an example", offenders), pytrace=False
        )


# ------------------------------------------------------------------------------ (e) floors

FLOOR_1 = {"linalg", "_checks", "_errors", "_base"}  # imports nothing of the floors above
FACE = {"cli", "report", "io", "data", "demo"}  # no family imports these


def _imports(path: Path, module: str) -> Iterator[tuple[int, str, str | None]]:
    """(line, imported module, imported name or None) of every import in a source file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, None
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            for alias in node.names:
                yield node.lineno, base, alias.name


@pytest.mark.parametrize("family", FAMILIES)
def test_floors(family: str) -> None:
    """docs/conventions.md, "Files and floors": floor 1 imports no family; a family imports
    neither the face (cli, report, io, data) nor another family's private module or name."""
    offenders: dict[str, list[str]] = defaultdict(list)
    source = ROOT / "src" / "subspaces"
    for path in sorted(source.rglob("*.py")):
        parts = path.relative_to(source).with_suffix("").parts
        mine = parts[0]  # "similarity", or a top-level module: "cli", "_checks"...
        if (mine if len(parts) > 1 else "subspaces") != family:
            continue
        module = ".".join(["subspaces", *parts]).removesuffix(".__init__")
        for line, target, name in _imports(path, module):
            if not target.startswith("subspaces."):
                continue
            other = target.split(".")[1]
            if other == mine:
                continue
            private = any(p.startswith("_") for p in target.split(".")[2:]) or (
                name is not None and name.startswith("_") and not name.startswith("__")
            )
            what = f"{target}.{name}" if name else target
            if mine in FLOOR_1 and other not in FLOOR_1:
                problem = f"floor 1 imports {what}"
            elif mine not in FLOOR_1 | FACE and other in FACE:
                problem = f"a family imports the face: {what}"
            elif other not in FLOOR_1 and private:
                problem = f"imports {what}, private to {other}"
            else:
                continue
            offenders[str(path.relative_to(ROOT))].append(f"line {line}: {problem}")
    if offenders:
        pytest.fail(_report(f"imports across the floors in {family}", offenders), pytrace=False)


# ------------------------------------------------------------------------------ (f) top_k


@pytest.mark.parametrize("family", FAMILIES)
def test_retrieval_results_report_top_k(family: str) -> None:
    """docs/conventions.md: retrieval results report ``top_k`` (a dict from k to the
    fraction), not one field per k (``top1``, ``top5``)."""
    offenders: dict[str, list[str]] = defaultdict(list)
    for name, obj in _members(family):
        fields = getattr(obj, "__dataclass_fields__", {}) if inspect.isclass(obj) else {}
        per_k = sorted(f for f in fields if re.fullmatch(r"top_?\d+", f))
        if per_k:
            offenders[obj.__module__].append(
                f"{name}: fields {per_k}, use `top_k: dict[int, Tensor]`"
            )
    if offenders:
        pytest.fail(_report(f"retrieval results of {family}", offenders), pytrace=False)


def test_discovery_walks_every_family() -> None:
    names, errors = _public()
    assert not errors, errors
    assert {"similarity", "geometry", "align"} <= set(FAMILIES)
    assert any(name == "linear_cka" for name, _ in names["similarity"])
