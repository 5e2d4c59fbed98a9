"""The access rules are decided in one place, and forgetting them fails here.

Two readings of the service code (its syntax tree, not its behaviour):
- no service outside `app/services/access/` looks at a principal's roles, scopes or admin flag:
  who may do which action is `actions.require` / `actions.allowed`;
- a function that reads a dossier-owned table (dossiers, persons and everything that hangs from
  them) goes through the access policy (`load_dossier`, `visible`, a `DossierAccess` it was
  given…), or says on the line, or on its `def`, why it need not: `# access: <reason>`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import app.services.access.policy as policy_module
from app.models import Base

SERVICES = Path(__file__).resolve().parents[2] / "app" / "services"
ACCESS = SERVICES / "access"
MARK = "# access:"
PRINCIPAL_FIELDS = {"roles", "scopes", "is_org_admin"}


def _owned_models() -> set[str]:
    """Models whose rows are a dossier's content: the dossier, its person, and every table
    that points at one of them."""
    owned_tables = {"dossier", "person", "household"}
    owned_tables |= {
        table.name
        for table in Base.metadata.tables.values()
        if {"dossier_id", "person_id", "pre_assessment_id"} & set(table.columns.keys())
    }
    return {
        mapper.class_.__name__
        for mapper in Base.registry.mappers
        if getattr(mapper.class_, "__tablename__", None) in owned_tables
    }


OWNED = _owned_models()
# What the policy defines (not what it imports): meeting one of these is going through it.
POLICY_NAMES = {
    name
    for name, value in vars(policy_module).items()
    if not name.startswith("_") and getattr(value, "__module__", None) == policy_module.__name__
} - {
    "DossierNotFound",
    "SectionForbidden",
    "SectionNotModifiable",
    "Visibility",
    "Party",
}  # errors and types are no gate
POLICY_NAMES |= {"policy"}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def _service_files(*, outside_access: bool) -> Iterator[Path]:
    for path in sorted(SERVICES.rglob("*.py")):
        if outside_access and ACCESS in path.parents:
            continue
        yield path


def _name(path: Path) -> str:
    return str(path.relative_to(SERVICES))


def _marked(lines: list[str], line: int) -> bool:
    return MARK in lines[line - 1]


def _function_marked(lines: list[str], function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """`# access: <why>` on the comment line just above the function (and its decorators)."""
    first = min([function.lineno, *(d.lineno for d in function.decorator_list)])
    return first >= 2 and lines[first - 2].strip().startswith(MARK)


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)
    }


def _is_read(call: ast.Call) -> bool:
    func = call.func
    if isinstance(func, ast.Name) and func.id == "select":
        return True
    return isinstance(func, ast.Attribute) and func.attr in {"get", "get_one"} and bool(call.args)


def role_checks(source: str, name: str) -> list[Finding]:
    """A principal's roles, scopes or admin flag read outside the access package."""
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in PRINCIPAL_FIELDS
            and isinstance(node.value, ast.Name)
            and "principal" in node.value.id
            and not _marked(lines, node.lineno)
        ):
            found.append(Finding(name, node.lineno, f"principal.{node.attr}"))
    return found


def _calls(function: ast.AST) -> set[str]:
    """The names a function calls (plain or as an attribute: `f(...)`, `module.f(...)`)."""
    called = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name):
                called.add(node.func.id)
            elif isinstance(node.func, ast.Attribute):
                called.add(node.func.attr)
    return called


def _guarded(functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef], lines: list[str]) -> set[str]:
    """The module's functions that go through the policy: they meet one of its names (or are
    marked); or call such a function of the module; or are private helpers that only such
    functions call. To a fixpoint."""
    guarded = {
        name
        for name, function in functions.items()
        if _function_marked(lines, function) or POLICY_NAMES & _names(function)
    }
    callers: dict[str, set[str]] = {name: set() for name in functions}
    for name, function in functions.items():
        for called in _calls(function) & functions.keys():
            callers[called].add(name)
    while True:
        more = {
            name
            for name, function in functions.items()
            if name not in guarded
            and (
                _calls(function) & guarded
                or (name.startswith("_") and callers[name] and callers[name] <= guarded)
            )
        }
        if not more:
            return guarded
        guarded |= more


def unguarded_reads(source: str, name: str) -> list[Finding]:
    """Reads of dossier-owned tables in functions that never meet the access policy."""
    lines = source.splitlines()
    functions = {
        node.name: node
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    guarded = _guarded(functions, lines)
    found = []
    for function in functions.values():
        if function.name in guarded:
            continue
        for call in ast.walk(function):
            if not (isinstance(call, ast.Call) and _is_read(call)):
                continue
            models = OWNED & {n.id for arg in call.args for n in ast.walk(arg) if isinstance(n, ast.Name)}
            if models and not _marked(lines, call.lineno):
                where = f"{function.name} reads {', '.join(sorted(models))} without the policy"
                found.append(Finding(name, call.lineno, where))
    return found


def test_the_owned_tables_are_found() -> None:
    assert {"Dossier", "Person", "Consent", "DossierRouting", "PreAssessmentAnswer", "BreakGlass"} <= OWNED
    assert not {"Pool", "Organization", "User"} & OWNED


def test_no_service_checks_a_role_outside_the_action_table() -> None:
    findings = [
        f for path in _service_files(outside_access=True) for f in role_checks(path.read_text(), _name(path))
    ]
    assert not findings, "use actions.require / actions.allowed:\n" + "\n".join(map(str, findings))


def test_no_service_reads_dossier_content_around_the_policy() -> None:
    findings = [
        f
        for path in _service_files(outside_access=True)
        for f in unguarded_reads(path.read_text(), _name(path))
    ]
    assert not findings, "go through app.services.access.policy, or say why not:\n" + "\n".join(
        map(str, findings)
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f(principal):\n    return Role.dpo in principal.roles\n", 1),
        ("def f(principal):\n    return principal.is_org_admin  # access: shown on /me\n", 0),
        ("def f(p):\n    return p.kind\n", 0),
    ],
)
def test_the_role_check_reading_finds_what_it_should(source: str, expected: int) -> None:
    assert len(role_checks(source, "probe.py")) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("async def f(session, i):\n    return await session.get(Dossier, i)\n", 1),
        ("async def f(session, i):\n    return await session.scalar(select(Consent.id))\n", 1),
        ("async def f(session, p, i, now):\n    return await load_dossier(session, p, i, now=now)\n", 0),
        ("async def f(session, i):\n    return await session.get(Dossier, i)  # access: a worker's ids\n", 0),
        ("# access: ids only\nasync def f(session, i):\n    return await session.get(Dossier, i)\n", 0),
        ("async def f(session, i):\n    return await session.get(Pool, i)\n", 0),
        (
            "async def _rows(s):\n    return await s.scalars(select(Consent))\n"
            "async def f(s, p, i, now):\n    await load_dossier(s, p, i, now=now)\n"
            "    return await _rows(s)\n",
            0,
        ),
        (
            "async def _rows(s):\n    return await s.scalars(select(Consent))\n"
            "async def f(s, p, i, now):\n    await load_dossier(s, p, i, now=now)\n"
            "    return await _rows(s)\n"
            "async def g(s):\n    return await _rows(s)\n",
            1,
        ),
        ("async def f(access: DossierAccess, s):\n    return await s.scalar(select(Consent.id))\n", 0),
    ],
)
def test_the_read_reading_finds_what_it_should(source: str, expected: int) -> None:
    assert len(unguarded_reads(source, "probe.py")) == expected
