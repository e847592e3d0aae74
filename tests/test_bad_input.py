"""A corpus of broken stack files and service specs, run through the real CLI (`python -m offline preview`).

Every case must end the same way: exit code 2, exactly one line on stderr that names the key (or the
file and line where there is no key), no traceback, no resource declared past the stack, and neither a
secret's ciphertext nor the offline placeholder in the message. The cases run in-process (`main()`), so
the corpus stays fast; `test_config.py` runs one through a subprocess end to end.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from offline.__main__ import main
from offline.exitcodes import ExitCode
from offline.stackfile import SECRET_PLACEHOLDER, provider_config_keys
from tests.conftest import ROOT
from tests.secrets import ciphertext

DEV = (ROOT / "Pulumi.dev.yaml").read_text()
SECRET = ciphertext("s3cr3t-plaintext")


def replace(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, f"the dev stack file no longer contains {old!r}: update the corpus"
        return text.replace(old, new, 1)

    return edit


def append(lines: str) -> Callable[[str], str]:
    return lambda text: text.rstrip("\n") + "\n" + lines


def whole(content: str) -> Callable[[str], str]:
    return lambda _text: content


@dataclass(frozen=True)
class Case:
    id: str
    edit: Callable[[str], str]
    named: str
    """What the one line must name: the key (or file:line:column where there is no key)."""


STACK_CASES = [
    # --- YAML the CLI cannot parse -------------------------------------------------------------------
    Case("tab-indentation", replace("    azCount: 2", "\tazCount: 2"), "Pulumi.dev.yaml:8:1: invalid YAML"),
    Case("unclosed-flow-list", append("  microservices:tags: [a, b\n"), "invalid YAML"),
    Case("unclosed-quote", replace("aws:region: us-east-1", 'aws:region: "us-east-1'), "invalid YAML"),
    Case("bad-indentation", replace("    azCount: 2", "      azCount: 2"), "Pulumi.dev.yaml:8:14: invalid YAML"),
    Case("two-documents", append("---\nconfig: {}\n"), "invalid YAML"),
    Case("python-tag", append("  microservices:tags: !!python/object:os.system {}\n"), "invalid YAML"),
    Case("binary-value", append("  microservices:tags: !!binary aGVsbG8=\n"), "config microservices:tags"),
    Case("infinite-number", replace("azCount: 2", "azCount: .inf"), "config microservices:network"),
    # --- duplicate keys -----------------------------------------------------------------------------
    Case("duplicate-config-key", append("  aws:region: eu-west-1\n"), "duplicate key 'aws:region'"),
    Case("duplicate-nested-key", replace("    azCount: 2\n", "    azCount: 2\n    azCount: 3\n"), "'azCount'"),
    Case("duplicate-top-level", append("config:\n  aws:region: us-east-1\n"), "duplicate key 'config'"),
    Case("duplicate-service", append("    order:\n      maxCount: 3\n"), "duplicate key 'order'"),
    # --- the shape of the file ----------------------------------------------------------------------
    Case("empty-file", whole(""), "Pulumi.dev.yaml: is empty"),
    Case("only-comments", whole("# nothing here yet\n"), "Pulumi.dev.yaml: is empty"),
    Case("top-level-list", whole("- aws:region: us-east-1\n"), "the top level must be a mapping"),
    Case("top-level-string", whole("config\n"), "the top level must be a mapping"),
    Case("config-is-a-list", whole("config:\n  - aws:region: us-east-1\n"), "`config:` must be a mapping"),
    Case("config-is-a-string", whole("config: us-east-1\n"), "`config:` must be a mapping"),
    Case("config-is-empty", whole("config:\n"), "`config:` must be a mapping"),
    Case("misspelled-config", replace("config:", "confg:"), "unknown top-level key 'confg' (did you mean 'config'?)"),
    Case("no-config-section", whole("secretsprovider: passphrase\n"), "has no `config:` mapping"),
    Case("non-string-key", append("  123: x\n"), "config key 123"),
    Case("key-with-two-colons", append("  microservices:a:b: 1\n"), "config key 'microservices:a:b'"),
    Case("key-without-value", replace("aws:region: us-east-1", "aws:region:"), "config aws:region: has no value"),
    # --- unknown keys in every namespace --------------------------------------------------------------
    Case("aws-typo", append("  aws:regoin: us-west-2\n"), "config aws:regoin: not a configuration key"),
    Case("aws-unknown", append("  aws:definitelyNotAKey: 1\n"), "config aws:definitelyNotAKey"),
    Case("tls-unknown", append("  tls:region: x\n"), "config tls:region"),
    Case("awsx-takes-none", append("  awsx:region: x\n"), "config awsx:region"),
    Case("unknown-namespace", append("  datadog:apiKey: x\n"), "config datadog:apiKey: unknown namespace 'datadog'"),
    Case("namespace-typo", append("  microservice:environment: dev\n"), "config microservice:environment"),
    Case("project-key-typo", replace("microservices:network:", "microservices:netwrok:"), "microservices:netwrok"),
    Case("bare-project-key-typo", append("  netwrok: {}\n"), "microservices:netwrok"),
    Case("nested-key-typo", replace("natGateways: single", "natGateway: single"), "microservices:network.natGateway"),
    Case("unknown-service", append("    ordr:\n      maxCount: 3\n"), "microservices:services.ordr"),
    Case(
        "unknown-sizing-key",
        replace("      maxCount: 2", "      maxCount: 2\n      memroy: 1024"),
        "services.order.memroy",
    ),
    # --- secure values ------------------------------------------------------------------------------
    Case("secure-truncated", append("  aws:secretKey:\n    secure: v1:abc\n"), "config aws:secretKey: malformed"),
    Case("secure-not-base64", append("  aws:secretKey:\n    secure: not base64!\n"), "config aws:secretKey"),
    Case("secure-short-nonce", append("  aws:secretKey:\n    secure: v1:AAAA:" + "A" * 24 + "\n"), "aws:secretKey"),
    Case("secure-number", append("  aws:secretKey:\n    secure: 12\n"), "config aws:secretKey: `secure:`"),
    Case("secure-extra-key", append(f"  aws:secretKey:\n    secure: {SECRET}\n    plain: x\n"), "aws:secretKey"),
    Case(
        "secure-nested-malformed",
        replace("      maxCount: 2", "      maxCount: 2\n      image:\n        secure: v1:xyz"),
        "config microservices:services.order.image: malformed",
    ),
    Case(
        "secret-region-invalid",
        replace("aws:region: us-east-1", f"aws:region:\n    secure: {SECRET}"),
        "aws:region = [secret]",
    ),
    Case(
        "secret-nested-invalid",
        replace("    azCount: 2", f"    azCount:\n      secure: {SECRET}"),
        "microservices:network.azCount = [secret]",
    ),
    # --- values the program refuses, located in the file --------------------------------------------
    Case(
        "az-count",
        replace("azCount: 2", "azCount: 9"),
        "Pulumi.dev.yaml:8:5: stack 'dev': config microservices:network.azCount = 9",
    ),
    Case("public-cidr", replace("cidr: 10.10.0.0/16", "cidr: 8.8.0.0/16"), 'microservices:network.cidr = "8.8.0.0/16"'),
    Case("environment", replace("environment: dev", "environment: qa"), 'microservices:environment = "qa"'),
    Case("environment-date", replace("environment: dev", "environment: 2024-01-01"), "microservices:environment"),
    Case(
        "missing-environment",
        replace("  microservices:environment: dev\n", ""),
        "microservices:environment: is required",
    ),
    Case("missing-region", replace("  aws:region: us-east-1\n", ""), "aws:region is required"),
    Case("bad-region", replace("aws:region: us-east-1", "aws:region: moon-1"), 'aws:region = "moon-1"'),
    Case(
        "section-not-a-mapping",
        replace("microservices:edge:\n    wafRateLimit: 1000", "microservices:edge: fast"),
        "microservices:edge",
    ),
    Case("tags-a-list", append("  microservices:tags: [a, b]\n"), "microservices:tags"),
    Case("capacity", replace("capacity: spot", "capacity: cheap"), 'microservices:compute.capacity = "cheap"'),
    Case(
        "cert-renewal",
        replace(
            "certificateAuthority: selfManaged",
            "certificateAuthority: selfManaged\n    certValidityHours: 48\n    certRenewalHours: 48",
        ),
        "config microservices:mesh: certRenewalHours (48) must be less than certValidityHours (48)",
    ),
    Case(
        "jwt-issuer-alone",
        replace("wafRateLimit: 1000", "wafRateLimit: 1000\n    jwtIssuer: https://id.example.com"),
        "config microservices:edge: jwtAudience must list",
    ),
    Case(
        "alarm-email",
        replace("    logRetentionDays: 14", "    logRetentionDays: 14\n    alarmEmail: nobody"),
        'microservices:observability.alarmEmail = "nobody"',
    ),
    Case(
        "log-retention",
        replace("logRetentionDays: 14", "logRetentionDays: 10"),
        "microservices:observability.logRetentionDays = 10",
    ),
    Case(
        "memory-for-spec-cpu",
        replace("      maxCount: 2", "      maxCount: 2\n      memory: 512"),
        "microservices:services.order.memory = 512: is not a Fargate memory size for cpu = 512 (services/order.py",
    ),
    Case(
        "min-over-max",
        replace("      maxCount: 2", "      maxCount: 2\n      minCount: 5"),
        "microservices:services.order.minCount = 5",
    ),
    Case(
        "cpu-size",
        replace("      maxCount: 2", "      maxCount: 2\n      cpu: 300"),
        "microservices:services.order.cpu = 300",
    ),
    Case(
        "count-a-string",
        replace("      maxCount: 2", "      maxCount: many"),
        'microservices:services.order.maxCount = "many"',
    ),
]


SPEC_HEADER = "from model.spec import DynamoStore, ServiceSpec, Subscription\n"
GOOD_SPEC = "SPEC = ServiceSpec(name='zzledger', description='ledger', image='public.ecr.aws/x/y:1'{extra})\n"


def spec(extra: str = "") -> str:
    return SPEC_HEADER + GOOD_SPEC.format(extra=extra)


SPEC_CASES = [
    ("syntax-error", SPEC_HEADER + "SPEC = ServiceSpec(name='zzledger',\n", "services/{module}.py:2: SyntaxError"),
    ("name-error", SPEC_HEADER + "\nSPEC = ServiceSpec(nmae=zzledger)\n", "services/{module}.py:3: NameError"),
    ("import-error", "from model.spec import ServiceSpecs\n", "services/{module}.py:1: ImportError"),
    (
        "module-not-found",
        "from servces.spec import ServiceSpec\n",
        "services/{module}.py:1: ModuleNotFoundError: No module named 'servces'",
    ),
    (
        "old-spec-import",
        "from services.spec import ServiceSpec\n",
        "services/{module}.py:1: ModuleNotFoundError: No module named 'services.spec' (the spec models live in "
        "model.spec: `from model.spec import ServiceSpec, ...`)",
    ),
    ("not-a-spec", "SPEC = {'name': 'zzledger'}\n", "services/{module}.py: SPEC = dict"),
    (
        "missing-field",
        SPEC_HEADER + "SPEC = ServiceSpec(name='zzledger')\n",
        "services/{module}.py: description: is required",
    ),
    ("unknown-field", spec(", port=8080"), "services/{module}.py: port: unknown field"),
    ("root-user", spec(", run_as_user='0'"), "services/{module}.py: run_as_user = '0'"),
    (
        "bad-name",
        SPEC_HEADER + GOOD_SPEC.replace("zzledger", "Ledger_1").format(extra=""),
        "services/{module}.py: name = 'Ledger_1'",
    ),
    ("unknown-callee", spec(", calls=('paymnt',)"), "services/{module}.py: calls = 'paymnt': unknown service"),
    ("calls-itself", spec(", calls=('zzledger',)"), "services/{module}.py: calls = 'zzledger'"),
    (
        "event-never-published",
        spec(", subscribes=(Subscription(source='order', detail_types=('OrderShipped',)),)"),
        "services/{module}.py: subscribes.detailTypes = 'OrderShipped'",
    ),
    (
        "direct-delivery-to-fargate",
        spec(", subscribes=(Subscription(source='order', detail_types=('OrderPlaced',), delivery='direct'),)"),
        "services/{module}.py: subscribes.delivery = 'direct'",
    ),
    (
        "shared-store",
        spec(", data_stores=(DynamoStore(name='orders-table', hash_key='id'),)"),
        "data store name 'orders-table' is declared by more than one service (services/order.py, services/{module}.py)",
    ),
    (
        "duplicate-name",
        SPEC_HEADER + GOOD_SPEC.replace("zzledger", "order").format(extra=""),
        "'order' is defined more than once",
    ),
    (
        "spec-memory",
        spec(", sizing={'cpu': 256, 'memory': 4096}"),
        "service spec services/{module}.py: sizing.memory = 4096",
    ),
    (
        "spec-sizing-typo",
        spec(", sizing={'memroy': 1024}"),
        "service spec services/{module}.py: sizing.memroy: unknown",
    ),
    (
        "spec-counts",
        spec(", sizing={'minCount': 3, 'maxCount': 2}"),
        "services/{module}.py: sizing.minCount = 3: must be at most",
    ),
    (
        "no-image",
        SPEC_HEADER + "SPEC = ServiceSpec(name='zzledger', description='x')\n",
        "microservices:services.zzledger.image",
    ),
]


def run_cli(project: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    code = main(["preview", "--stack", "dev", "--project-dir", str(project), "--no-policy"])
    out, err = capsys.readouterr()
    return code, err.splitlines(), out


def assert_one_clean_line(code: int, lines: list[str], out: str, named: str) -> None:
    assert code == ExitCode.INPUT, (code, lines, out[-2000:])
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("error: "), line
    assert named in line, f"expected {named!r} in: {line}"
    for leak in (SECRET_PLACEHOLDER, SECRET, SECRET.split(":")[-1], "s3cr3t", "Traceback"):
        assert leak not in line + out, f"{leak!r} leaked: {line}"
    assert "Previewing update" not in out, "nothing may be printed as planned after an input error"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def test_the_corpus_is_large_enough() -> None:
    assert len(STACK_CASES) + len(SPEC_CASES) >= 40
    assert len({c.id for c in STACK_CASES}) == len(STACK_CASES)


@pytest.mark.parametrize("case", STACK_CASES, ids=[c.id for c in STACK_CASES])
def test_a_broken_stack_file_is_one_line_with_exit_2(
    case: Case, project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)  # messages name the file relative to the working directory
    (project / "Pulumi.dev.yaml").write_text(case.edit(DEV))
    assert_one_clean_line(*run_cli(project, capsys), named=case.named)


@pytest.fixture
def extra_spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Callable[[str], str]]:
    """Write one more spec module into the `services` package (a second search path) for one test."""
    import services

    package = tmp_path / "extra_services"
    package.mkdir()
    monkeypatch.setattr(services, "__path__", [*services.__path__, str(package)])
    written: list[str] = []

    def write(source: str) -> str:
        module = re.sub(r"\W", "_", f"zz_{request.node.callspec.id}")
        (package / f"{module}.py").write_text(source)
        written.append(module)
        return module

    yield write
    for module in written:
        sys.modules.pop(f"services.{module}", None)


@pytest.mark.parametrize(("case", "source", "named"), SPEC_CASES, ids=[c[0] for c in SPEC_CASES])
def test_a_broken_service_spec_is_one_line_with_exit_2(
    case: str,
    source: str,
    named: str,
    extra_spec: Callable[[str], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    module = extra_spec(source)
    assert_one_clean_line(*run_cli(ROOT, capsys), named=named.format(module=module))


def test_allowed_aws_keys_come_from_the_installed_provider() -> None:
    import importlib.util

    package = importlib.util.find_spec("pulumi_aws")
    assert package is not None and package.origin
    source = (Path(package.origin).parent / "config" / "vars.py").read_text()
    keys = provider_config_keys()["aws"]
    assert {"region", "profile", "defaultTags", "assumeRoles", "skipCredentialsValidation"} <= keys
    assert keys == set(re.findall(r"__config__\.get\w*\('(\w+)'\)", source))
    assert "regoin" not in keys and "definitelyNotAKey" not in keys
