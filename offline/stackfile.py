"""Read `Pulumi.yaml` and `Pulumi.<stack>.yaml` strictly, as the Pulumi CLI and the providers would.

Without the CLI and the providers, the offline preview must itself refuse what they refuse, and say so
in one line naming the file, the line and column, the key and what is allowed:

- YAML the CLI cannot parse (syntax errors, tabs used for indentation, several documents), with the
  parser's own position;
- duplicate keys at any depth (the CLI's YAML parser, gopkg.in/yaml.v3, rejects them: "mapping key
  already defined"); PyYAML would silently keep the last one;
- a stack file that is missing, empty, not a mapping, without a `config:` mapping, or with top-level
  keys the CLI does not know (`workspace.ProjectStack`: config, environment, secretsprovider,
  encryptedkey, encryptionsalt);
- config keys in a namespace nobody reads: the project's namespace is checked by the program itself
  (model/config.py); a provider's namespace (`aws:`, `tls:`, ...) accepts exactly the keys the
  installed provider package declares in its generated `config/vars.py`; any other namespace is unknown;
- `secure:` values whose ciphertext cannot be what `pulumi config set --secret` wrote: `v1:<nonce>:<ct>`
  with a 12-byte nonce and at least the 16-byte GCM tag (passphrase and cloud KMS secrets managers,
  `symmetricCrypter` in pulumi/sdk/go/common/resource/config/crypt.go) or one standard base64 string
  (the Pulumi Cloud secrets manager).

Values are read with the YAML 1.2 core schema the CLI uses (yaml.v3): `yes`, `no`, `on`, `off` and
dates stay strings. Neither a secret's ciphertext nor its placeholder is ever put in a message.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

SECRET_PLACEHOLDER = "offline-preview-secret-placeholder"
"""The value a `secure:` config entry takes offline (it cannot be decrypted without the stack's key)."""

STACK_FILE_KEYS = ("config", "encryptedkey", "encryptionsalt", "environment", "secretsprovider")
"""Top-level keys of a stack settings file (`ProjectStack` in pulumi/sdk/go/common/workspace/project.go)."""

_GCM_NONCE_BYTES, _GCM_TAG_BYTES = 12, 16


class StackFileError(Exception):
    """A stack or project file the CLI would refuse; the message is one line."""


@dataclass
class StackFiles:
    project: str
    config: dict[str, str]
    secret_keys: list[str]
    region: str
    stack_file: str = ""
    """How to name the stack file in messages (relative to the working directory when it is below it)."""
    locations: dict[str, tuple[int, int]] = field(default_factory=dict)
    """`namespace:key.sub.key` -> (line, column), 1-based, of every key in the stack file's config."""

    def locate(self, key_path: str) -> str | None:
        """`file:line:column` of the deepest key of `key_path` that the stack file sets."""
        parts = key_path.split(".")
        for end in range(len(parts), 0, -1):
            where = self.locations.get(".".join(parts[:end]))
            if where:
                return f"{self.stack_file}:{where[0]}:{where[1]}"
        return None


# --- YAML as the CLI reads it ---------------------------------------------------------------------------


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema booleans and no timestamps (what gopkg.in/yaml.v3 does)."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _where(name: str, mark: yaml.Mark | None) -> str:
    return f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name


def _load_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    """The document and its node tree; one-line StackFileError on anything yaml.v3 would reject."""
    name = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise StackFileError(f"{name}: is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise StackFileError(f"{name}: cannot be read ({exc.strerror})") from None
    try:
        node = yaml.compose(text, Loader=_Yaml12Loader)
        if node is not None:
            _reject_duplicate_keys(name, node)
        value = yaml.load(text, Loader=_Yaml12Loader) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        problem = " ".join(f"{exc.problem or exc.context or 'invalid YAML'}".split())
        if "\t" in text and "'\\t'" in problem:
            problem += " (YAML indentation must use spaces, not tabs)"
        raise StackFileError(f"{_where(name, exc.problem_mark or exc.context_mark)}: invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise StackFileError(f"{name}: invalid YAML: {' '.join(str(exc).split())}") from None
    return value, node


def _scalar_key(node: yaml.Node) -> str | None:
    return node.value if isinstance(node, yaml.ScalarNode) else None


def _reject_duplicate_keys(name: str, node: yaml.Node) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, yaml.Mark] = {}
        for key_node, value_node in node.value:
            key = _scalar_key(key_node)
            if key is not None and key != "<<":
                if key in seen:
                    raise StackFileError(
                        f"{_where(name, key_node.start_mark)}: duplicate key {key!r} (first set on line "
                        f"{seen[key].line + 1}); each key may appear once in a mapping"
                    )
                seen[key] = key_node.start_mark
            _reject_duplicate_keys(name, value_node)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _reject_duplicate_keys(name, item)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return type(value).__name__


def _mapping_items(node: yaml.Node | None) -> Iterator[tuple[str, yaml.Node, yaml.Node]]:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            yield str(key_node.value), key_node, value_node


def _suggest(word: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(word, allowed, n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --- provider config keys, from the installed provider packages --------------------------------------------


@cache
def provider_config_keys() -> dict[str, frozenset[str]]:
    """`{namespace: keys}` of every installed Pulumi provider SDK, read from the package itself.

    A provider SDK ships `pulumi-plugin.json` (`"resource": true`, its `name` is the config namespace)
    and a generated `config/vars.py` (or `vars.py`) with one `__config__.get*('<key>')` per key its
    provider schema declares. The modules are parsed, not imported: importing `pulumi_aws` costs seconds.
    """
    import ast
    import importlib.util
    import pkgutil

    found: dict[str, frozenset[str]] = {}
    for module in pkgutil.iter_modules():
        if not (module.ispkg and module.name.startswith("pulumi_")):
            continue
        spec = importlib.util.find_spec(module.name)
        if spec is None or not spec.submodule_search_locations:
            continue
        package = Path(next(iter(spec.submodule_search_locations)))
        try:
            plugin = json.loads((package / "pulumi-plugin.json").read_text())
        except (OSError, ValueError):
            continue
        if not (isinstance(plugin, dict) and plugin.get("resource") and isinstance(plugin.get("name"), str)):
            continue
        keys: set[str] = set()
        for candidate in (package / "config" / "vars.py", package / "vars.py"):
            if candidate.is_file():
                for call in ast.walk(ast.parse(candidate.read_text())):
                    if (
                        isinstance(call, ast.Call)
                        and isinstance(call.func, ast.Attribute)
                        and call.func.attr.startswith("get")
                        and isinstance(call.func.value, ast.Name)
                        and call.func.value.id == "__config__"
                        and call.args
                        and isinstance(call.args[0], ast.Constant)
                        and isinstance(call.args[0].value, str)
                    ):
                        keys.add(call.args[0].value)
        found.setdefault(plugin["name"], frozenset(keys))
    return found


# --- secure values --------------------------------------------------------------------------------------


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def ciphertext_problem(ciphertext: Any) -> str | None:
    """Why `ciphertext` cannot be a Pulumi secret's ciphertext, or None when its form is right."""
    if not isinstance(ciphertext, str) or not ciphertext:
        return (
            f"`secure:` must hold the ciphertext string `pulumi config set --secret` wrote, found {_kind(ciphertext)}"
        )
    if ciphertext.startswith("v1:"):
        parts = ciphertext.split(":")
        nonce, sealed = (_b64(parts[1]), _b64(parts[2])) if len(parts) == 3 else (None, None)
        if nonce is None or sealed is None or len(nonce) != _GCM_NONCE_BYTES or len(sealed) < _GCM_TAG_BYTES:
            return (
                "malformed ciphertext: a `v1:` value must be `v1:<base64 12-byte nonce>:<base64 AES-256-GCM "
                "ciphertext and tag>`; set it again with `pulumi config set --secret`"
            )
        return None
    if _b64(ciphertext) is None:
        return (
            "malformed ciphertext: expected `v1:<nonce>:<ciphertext>` (passphrase or cloud KMS secrets "
            "provider) or one base64 string (Pulumi Cloud); set it again with `pulumi config set --secret`"
        )
    return None


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and "secure" in value


# --- the files ----------------------------------------------------------------------------------------------


def list_stacks(project_dir: Path) -> list[str]:
    """The stacks that have a `Pulumi.<stack>.yaml` in `project_dir`, sorted by name."""
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in Path(project_dir).glob("Pulumi.*.yaml"))


def read_stack_files(project_dir: Path, stack: str) -> StackFiles:
    """Read Pulumi.yaml and Pulumi.<stack>.yaml the way the CLI hands config to a program.

    Keys without a namespace get the project's; structured values become JSON strings and scalars
    strings (PULUMI_CONFIG carries strings only); project-level declarations supply defaults. A
    `secure:` value anywhere becomes `SECRET_PLACEHOLDER` and its top-level key is secret.
    """
    project_file = project_dir / "Pulumi.yaml"
    stack_file = project_dir / f"Pulumi.{stack}.yaml"
    if not project_file.is_file():
        raise StackFileError(f"no Pulumi.yaml in {project_dir}")
    if not stack_file.is_file():
        known = list_stacks(project_dir)
        raise StackFileError(
            f"unknown stack {stack!r}: no {stack_file.name}; stacks here: {', '.join(known) or 'none'}"
        )
    project_name = _display(project_file)
    project_doc, _ = _load_yaml(project_file)
    if not isinstance(project_doc, dict):
        raise StackFileError(f"{project_name}: must be a mapping with at least `name:` and `runtime:`")
    if not isinstance(project_doc.get("name"), str) or not project_doc["name"]:
        raise StackFileError(f"{project_name}: `name:` must be the project's name (a string)")
    project = project_doc["name"]

    name = _display(stack_file)
    stack_doc, stack_node = _load_yaml(stack_file)
    if stack_doc is None:
        raise StackFileError(
            f"{name}: is empty; a stack file needs a `config:` mapping (this project needs at least "
            f"aws:region and {project}:environment)"
        )
    if not isinstance(stack_doc, dict):
        raise StackFileError(
            f"{_where(name, stack_node.start_mark if stack_node else None)}: the top level must be a mapping "
            f"with a `config:` key, found {_kind(stack_doc)}"
        )
    for key, key_node, _ in _mapping_items(stack_node):
        if key not in STACK_FILE_KEYS:
            raise StackFileError(
                f"{_where(name, key_node.start_mark)}: unknown top-level key {key!r}{_suggest(key, list(STACK_FILE_KEYS))}; "
                f"allowed: {', '.join(STACK_FILE_KEYS)}"
            )
    if "config" not in stack_doc:
        raise StackFileError(
            f"{name}: has no `config:` mapping (this project needs at least aws:region and {project}:environment)"
        )
    config_node = next((v for k, _, v in _mapping_items(stack_node) if k == "config"), None)
    if not isinstance(stack_doc["config"], dict):
        raise StackFileError(
            f"{_where(name, config_node.start_mark if config_node else None)}: `config:` must be a mapping of "
            f"`namespace:key: value`, found {_kind(stack_doc['config'])}"
        )

    def full_key(key: str) -> str:
        return key if ":" in key else f"{project}:{key}"

    files = StackFiles(project=project, config={}, secret_keys=[], region="us-east-1", stack_file=name)
    for key, declaration in (project_doc.get("config") or {}).items():
        if isinstance(declaration, dict) and "default" in declaration:
            files.config[full_key(str(key))] = _config_string(declaration["default"])
        elif not isinstance(declaration, dict):
            files.config[full_key(str(key))] = _config_string(declaration)

    providers = provider_config_keys()
    assert config_node is not None  # the document has a `config` mapping, so its node tree has one
    nodes = {key: (key_node, value_node) for key, key_node, value_node in _mapping_items(config_node)}
    for key in stack_doc["config"]:
        # A key merged in with `<<:` has no node of its own: point at the `config:` mapping.
        key_node, value_node = nodes.get(str(key), (config_node, config_node))
        here = _where(name, key_node.start_mark)
        if not isinstance(key, str):
            raise StackFileError(f"{here}: config key {key!r} must be a string `namespace:key`")
        full = full_key(key)
        _record_locations(files.locations, full, key_node, value_node)
        namespace, _, short = full.partition(":")
        if not short or ":" in short:
            raise StackFileError(f"{here}: config key {key!r} must be `namespace:key` or a bare key of the project")
        if namespace != project:
            if namespace not in providers:
                known = sorted({project, *providers})
                raise StackFileError(
                    f"{here}: config {full}: unknown namespace {namespace!r}{_suggest(namespace, known)}; "
                    f"this program reads config in: {', '.join(known)}"
                )
            allowed = sorted(providers[namespace])
            if short not in providers[namespace]:
                hint = (
                    f"{_suggest(short, allowed)}; allowed keys: {', '.join(allowed)}"
                    if allowed
                    else (f"; the installed {namespace} provider takes no configuration")
                )
                raise StackFileError(
                    f"{here}: config {full}: not a configuration key of the {namespace} provider{hint}"
                )
        value = stack_doc["config"][key]
        if value is None:
            raise StackFileError(f"{here}: config {full}: has no value; give it one or remove the key")
        secret = False
        for path, secure_node, secure_value in _secure_values(full, value_node, value):
            where = _where(name, secure_node.start_mark)
            if set(secure_value) != {"secure"}:
                raise StackFileError(
                    f"{where}: config {path}: a `secure:` mapping must hold only `secure: <ciphertext>`, found "
                    f"keys {', '.join(sorted(map(str, secure_value)))}"
                )
            problem = ciphertext_problem(secure_value["secure"])
            if problem:
                raise StackFileError(f"{where}: config {path}: {problem}")
            secret = True
        if secret:
            files.secret_keys.append(full)
        files.config[full] = _config_string(_with_placeholders(value), where=here, key=full)
    files.region = files.config.get("aws:region", "us-east-1")
    return files


def _record_locations(sink: dict[str, tuple[int, int]], path: str, key_node: yaml.Node, value_node: yaml.Node) -> None:
    sink.setdefault(path, (key_node.start_mark.line + 1, key_node.start_mark.column + 1))
    for key, sub_key_node, sub_value_node in _mapping_items(value_node):
        _record_locations(sink, f"{path}.{key}", sub_key_node, sub_value_node)


def _secure_values(path: str, node: yaml.Node, value: Any) -> Iterator[tuple[str, yaml.Node, dict[str, Any]]]:
    """Every `{secure: ...}` mapping inside `value`, with its key path and node (for the location)."""
    if _is_secure(value):
        yield path, node, value
        return
    if isinstance(value, dict) and isinstance(node, yaml.MappingNode):
        for (key_node, child_node), (key, child) in zip(node.value, value.items(), strict=False):
            yield from _secure_values(f"{path}.{key}" if key_node.value == str(key) else path, child_node, child)
    elif isinstance(value, list) and isinstance(node, yaml.SequenceNode):
        for index, (child_node, child) in enumerate(zip(node.value, value, strict=False)):
            yield from _secure_values(f"{path}[{index}]", child_node, child)


def _with_placeholders(value: Any) -> Any:
    if _is_secure(value):
        return SECRET_PLACEHOLDER
    if isinstance(value, dict):
        return {k: _with_placeholders(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_placeholders(v) for v in value]
    return value


def _config_string(value: Any, *, where: str = "Pulumi.yaml", key: str = "") -> str:
    """A config value as the CLI passes it (PULUMI_CONFIG holds strings; objects and lists as JSON)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)

    def refuse(item: Any) -> Any:
        raise StackFileError(f"{where}: config {key}: holds {_kind(item)}, which config cannot carry")

    try:
        return json.dumps(value, default=refuse, allow_nan=False)
    except ValueError:
        raise StackFileError(f"{where}: config {key}: .inf and .nan are not allowed in config") from None


def mask_secrets(message: str) -> str:
    """Replace the offline placeholder of a secret with `[secret]` wherever a message quotes it."""
    return message.replace(json.dumps(SECRET_PLACEHOLDER), "[secret]").replace(SECRET_PLACEHOLDER, "[secret]")


def located(message: str, files: StackFiles, overridden: Mapping[str, str] | None = None) -> str:
    """Prefix `file:line:column` to a program's config error that names a key the stack file sets."""
    match = re.search(r"\bconfig ([A-Za-z0-9_-]+:[A-Za-z0-9_.\-]+)", message)
    if match:
        key = match.group(1).rstrip(".")
        if key.split(".")[0] not in (overridden or {}):
            where = files.locate(key)
            if where:
                return f"{where}: {message}"
    return message
