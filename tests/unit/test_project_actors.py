"""Resolving step actor references through turing.toml: specs, tables, aliases between
entries, provider defaults, module-offered actors, limits, and errors that say what to do."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from turing import ActorError, ConfigError, FakeModel, Message, ModelRequest, Project
from turing.actors.adaptive import DEFAULT_CEILING
from turing.actors.affinity import DEFAULT_MAX_WAIT_S
from turing.actors.managed import ManagedActor
from turing.actors.settings import ActorSettings
from turing.providers import PROVIDERS


@pytest.fixture
def fake_provider() -> Iterator[list[ActorSettings]]:
    """A provider named `fakeprov` whose create() records the settings it was given."""
    made: list[ActorSettings] = []
    module = types.ModuleType("_turing_test_fakeprov")

    def create(settings: ActorSettings) -> FakeModel:
        made.append(settings)
        return FakeModel(["{}"], name=settings.model)

    module.create = create  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    PROVIDERS["fakeprov"] = (module.__name__, "fakeprov")
    yield made
    PROVIDERS.pop("fakeprov")
    sys.modules.pop(module.__name__)


def project(tmp_path: Path, toml: str, module: str = "") -> Project:
    (tmp_path / "flows.py").write_text(textwrap.dedent(module))
    (tmp_path / "turing.toml").write_text(
        '[project]\nworkflows = ["flows"]\n' + textwrap.dedent(toml)
    )
    return Project.load(tmp_path / "turing.toml")


def test_spec_string(tmp_path: Path, fake_provider: list[ActorSettings]) -> None:
    p = project(tmp_path, '[actors]\nwriter = "fakeprov:big-model:7b"\n')
    actor = p.resolve_actor("writer")
    assert isinstance(actor, ManagedActor)
    [settings] = fake_provider
    assert (settings.provider, settings.model, settings.name) == (
        "fakeprov",
        "big-model:7b",
        "writer",
    )
    assert p.resolve_actor("writer") is actor  # built once


def test_table_with_settings_and_provider_defaults(
    tmp_path: Path, fake_provider: list[ActorSettings]
) -> None:
    p = project(
        tmp_path,
        """
        [actors]
        writer = "local"
        [actors.local]
        spec = "fakeprov:m"
        temperature = 0.2
        price_input = 0.5
        price_output = 1.5
        max_concurrency = 3
        [providers.fakeprov]
        base_url = "http://127.0.0.1:9999"
        api_key_env = "FAKE_KEY"
        """,
    )
    p.resolve_actor("writer")
    [s] = fake_provider
    assert (s.temperature, s.price_input, s.price_output, s.max_concurrency) == (0.2, 0.5, 1.5, 3)
    assert (s.base_url, s.api_key_env) == ("http://127.0.0.1:9999", "FAKE_KEY")


def test_provider_url_from_environment(
    tmp_path: Path, fake_provider: list[ActorSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TURING_PROVIDER_FAKEPROV_URL", "http://127.0.0.1:1234")
    monkeypatch.setenv("TURING_ACTOR_WRITER", "fakeprov:from-env")
    p = project(tmp_path, '[actors]\nwriter = "fakeprov:from-file"\n')
    p.resolve_actor("writer")
    assert (fake_provider[0].model, fake_provider[0].base_url) == (
        "from-env",
        "http://127.0.0.1:1234",
    )


def test_module_actors_win(tmp_path: Path, fake_provider: list[ActorSettings]) -> None:
    module = """
    from turing import FakeModel
    ACTORS = {"local:rules": FakeModel(["{}"], name="rules")}
    """
    p = project(tmp_path, '[actors]\nwriter = "local:rules"\n', module)
    assert p.resolve_actor("writer").identity == "fake:rules"
    assert fake_provider == []


@pytest.mark.parametrize(
    ("toml", "ref", "expected"),
    [
        ("", "writer", "actor 'writer' is not configured: add `writer = \"provider:model\"`"),
        ('[actors]\nwriter = "nothing"\n', "writer", "no such actor"),
        ('[actors]\nwriter = "nosuch:model"\n', "writer", "unknown provider 'nosuch'"),
        ("[actors.writer]\ntemperature = 0.1\n", "writer", 'needs spec = "provider:model"'),
    ],
)
def test_errors_say_what_to_do(tmp_path: Path, toml: str, ref: str, expected: str) -> None:
    p = project(tmp_path, toml)
    with pytest.raises(ActorError) as info:
        p.resolve_actor(ref)
    assert expected in str(info.value)


def test_missing_client_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(PROVIDERS, "ghost", ("turing.providers._no_such_module", "ghost"))
    p = project(tmp_path, '[actors]\nwriter = "ghost:m"\n')
    with pytest.raises(ActorError, match=r"pip install 'turing\[ghost\]'"):
        p.resolve_actor("writer")


def test_limits_reach_the_executor(tmp_path: Path) -> None:
    p = project(tmp_path, "[limits]\nrun_tokens = 500\nrun_cost = 0.25\nbatch_cost = 3.0\n")
    limits = p.executor().limits
    assert limits is not None and (limits.tokens, limits.cost) == (500, 0.25)
    assert p.config.limits.batch_cost == 3.0


def test_models_resident_gives_actors_of_one_host_one_scheduler(
    tmp_path: Path, fake_provider: list[ActorSettings]
) -> None:
    p = project(
        tmp_path,
        """
        [actors]
        a = "fakeprov:model-a"
        b = "fakeprov:model-b"
        [providers.fakeprov]
        base_url = "http://127.0.0.1:9999"
        models_resident = 1
        host_concurrency = 1
        """,
    )
    first, second = p.resolve_actor("a"), p.resolve_actor("b")
    assert isinstance(first, ManagedActor) and isinstance(second, ManagedActor)
    assert first.host is not None and first.host is second.host
    assert (first.host.models_resident, first.host.max_concurrency) == (1, 1)
    plain = project(tmp_path, '[actors]\na = "fakeprov:model-a"\n').resolve_actor("a")
    assert isinstance(plain, ManagedActor) and plain.host is None


def test_host_concurrency_alone_gives_a_scheduler_without_residency(
    tmp_path: Path, fake_provider: list[ActorSettings]
) -> None:
    """host_concurrency without models_resident is a per-host cap, not ignored."""
    p = project(
        tmp_path,
        """
        [actors]
        a = "fakeprov:model-a"
        b = "fakeprov:model-b"
        [providers.fakeprov]
        base_url = "http://127.0.0.1:9999"
        host_concurrency = 2
        """,
    )
    first, second = p.resolve_actor("a"), p.resolve_actor("b")
    assert isinstance(first, ManagedActor) and isinstance(second, ManagedActor)
    host = first.host
    assert host is not None and host is second.host
    assert (host.models_resident, host.max_concurrency) == (0, 2)
    assert host.max_wait_s == DEFAULT_MAX_WAIT_S

    in_flight: list[int] = []

    def answer(request: ModelRequest) -> str:
        in_flight.append(host.in_progress)
        return "{}"

    for actor in (first, second):
        actor.inner = FakeModel(answer, name="slow", delay=0.01)

    async def main() -> None:
        request = ModelRequest([Message("user", "hi")], timeout=5)
        await asyncio.gather(*(a.complete(request) for a in [first, second] * 4))

    asyncio.run(main())
    assert len(in_flight) == 8 and max(in_flight) == 2 and host.peak_in_progress == 2
    assert host.switches == 0  # no residency limit: nothing is ever swapped


@pytest.mark.parametrize(("value", "expected"), [("30", 30.0), ('"off"', None), ("0", 0.0)])
def test_max_wait_s_of_a_provider(
    tmp_path: Path, fake_provider: list[ActorSettings], value: str, expected: float | None
) -> None:
    p = project(
        tmp_path,
        f"""
        [actors]
        a = "fakeprov:model-a"
        [providers.fakeprov]
        base_url = "http://127.0.0.1:9999"
        models_resident = 1
        max_wait_s = {value}
        """,
    )
    actor = p.resolve_actor("a")
    assert isinstance(actor, ManagedActor) and actor.host is not None
    assert actor.host.max_wait_s == expected


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("max_wait_s = 30", "set models_resident or host_concurrency"),
        ("models_resident = 1\nmax_wait_s = -1", "max_wait_s"),
        ('models_resident = 1\nmax_wait_s = "never"', "max_wait_s"),
    ],
)
def test_max_wait_s_errors(tmp_path: Path, table: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        project(tmp_path, f"[providers.fakeprov]\n{table}\n")


# -- concurrency = "adaptive": the host's adaptive limit, shared by its actors --------------

ADAPTIVE_TOML = """
[actors.small]
spec = "fakeprov:small"
base_url = "http://127.0.0.1:9001"
concurrency = "adaptive"
max_concurrency = 8

[actors.large]
spec = "fakeprov:large"
base_url = "http://127.0.0.1:9001/v1"
concurrency = "adaptive"
max_concurrency = 24

[actors.elsewhere]
spec = "fakeprov:other"
base_url = "http://127.0.0.1:9002"
concurrency = "adaptive"

[actors.fixed]
spec = "fakeprov:fixed"
base_url = "http://127.0.0.1:9001"
max_concurrency = 4
"""


def test_adaptive_actors_share_their_hosts_limit(
    tmp_path: Path,
    fake_provider: list[ActorSettings],
) -> None:
    p = project(tmp_path, ADAPTIVE_TOML)
    small, large = p.resolve_actor("small"), p.resolve_actor("large")
    other, fixed = p.resolve_actor("elsewhere"), p.resolve_actor("fixed")
    assert isinstance(small, ManagedActor) and isinstance(large, ManagedActor)
    assert isinstance(other, ManagedActor) and isinstance(fixed, ManagedActor)
    assert small.adaptive is not None and small.adaptive is large.adaptive
    assert small.adaptive.ceiling == 24  # the larger max_concurrency of the host's actors
    assert other.adaptive is not None and other.adaptive is not small.adaptive
    assert other.adaptive.ceiling == DEFAULT_CEILING
    assert fixed.adaptive is None


def test_a_misspelled_concurrency_is_a_config_error(
    tmp_path: Path,
    fake_provider: list[ActorSettings],
) -> None:
    with pytest.raises(ConfigError, match="concurrency"):
        project(tmp_path, '[actors.x]\nspec = "fakeprov:m"\nconcurrency = "adaptiv"\n')
