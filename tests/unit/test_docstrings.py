"""Every public module-level function of the services says, in its docstring, what it does."""

import ast
from pathlib import Path

SERVICES = Path(__file__).resolve().parents[2] / "app" / "services"


def test_every_public_service_function_has_a_docstring() -> None:
    missing = [
        f"{path.relative_to(SERVICES.parent.parent)}:{node.lineno} {node.name}"
        for path in sorted(SERVICES.rglob("*.py"))
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and not node.name.startswith("_")
        and ast.get_docstring(node) is None
    ]
    assert not missing, "public service functions without a docstring:\n" + "\n".join(missing)
