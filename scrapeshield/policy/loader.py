"""Read a policy file: YAML → schema → compiled runtime form.

Every problem is reported at once, each naming the key path and the line, so an
operator fixes a file in one pass. Loading never half-applies: callers get a
new compiled policy or a PolicyError, and keep running the old one on error.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from scrapeshield.errors import PolicyError
from scrapeshield.policy.compiled import CompiledPolicy, compile_policy
from scrapeshield.policy.schema import Policy, cross_check

MAX_POLICY_BYTES = 1_000_000


def default_policy_text() -> str:
    return resources.files("scrapeshield.policy").joinpath("default.yaml").read_text("utf-8")


def load_policy(path: str | Path | None = None) -> CompiledPolicy:
    """Load and compile a policy file; ``None`` means the embedded default."""
    if path is None:
        return parse_policy(default_policy_text(), "<default policy>")
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise PolicyError(source, [f"cannot read file: {exc.strerror or exc}"]) from exc
    if len(raw) > MAX_POLICY_BYTES:
        raise PolicyError(source, [f"file is larger than {MAX_POLICY_BYTES} bytes"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(source, [f"not UTF-8 text (byte {exc.start})"]) from exc
    return parse_policy(text, source)


def parse_policy(text: str, source: str = "<policy>") -> CompiledPolicy:
    return compile_policy(validate_policy(text, source))


def validate_policy(text: str, source: str = "<policy>") -> Policy:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PolicyError(source, [f"{where}YAML syntax error: {problem}"]) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyError(source, ["line 1: the policy must be a mapping of keys"])
    problems = _duplicate_keys(root, ())
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        problems += [_describe(err, root) for err in exc.errors()]
    else:
        for loc, message in cross_check(policy):
            key = ".".join(str(p) for p in loc)
            problems.append(f"line {_line_of(root, loc)}: {key}: {message}")
    if problems:
        raise PolicyError(source, problems)
    return policy


def _describe(err: Any, root: yaml.Node | None) -> str:
    loc = tuple(err["loc"])
    key = ".".join(str(p) for p in loc) or "(top level)"
    line = _line_of(root, loc)
    msg = str(err["msg"])
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    return f"line {line}: {key}: {msg}"


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int:
    """Line of the deepest YAML node along ``loc`` (1-based)."""
    line = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == str(part):
                    line = key_node.start_mark.line + 1
                    node = value_node
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _duplicate_keys(node: yaml.Node | None, path: tuple[str, ...]) -> list[str]:
    problems: list[str] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            name = str(key_node.value)
            if name in seen:
                key = ".".join((*path, name))
                problems.append(f"line {key_node.start_mark.line + 1}: {key}: duplicate key")
            seen.add(name)
            problems += _duplicate_keys(value_node, (*path, name))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            problems += _duplicate_keys(item, (*path, str(index)))
    return problems
