"""Flow versions in the engine: the content id covers the YAML, the templates and the catalog
entries a flow uses (and nothing else), and a stored version compiles back into the same
screens, with its own texts, even after the files changed."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from server.config import REPO_ROOT
from server.engine.engine import Engine, Subscriber
from server.engine.loader import load_flow_dir
from server.engine.versions import (VersionUnavailable, compile_source, decode_source, encode_source,
                                    source_of)
from server.render.environment import Renderer

from ..conftest import fixture_registry as build_registry


def project(tmp_path: Path) -> Path:
    for name in ("flows", "templates", "locales"):
        shutil.copytree(REPO_ROOT / name, tmp_path / name)
    return tmp_path


def versions(root: Path) -> dict[str, str]:
    renderer = Renderer(root / "templates", root / "locales")
    return {f.name: source_of(f, renderer).id for f in load_flow_dir(root / "flows", renderer, build_registry())}


def test_the_content_id_follows_what_defines_the_flow(tmp_path):
    root = project(tmp_path)
    before = versions(root)
    assert before == versions(root)  # stable: the same files give the same ids
    # a Bengali translation of a demo text changes the demo only
    po = root / "locales/bn/LC_MESSAGES/messages.po"
    po.write_text(po.read_text().replace('msgstr "আলাপে স্বাগতম"', 'msgstr "আলাপে আবার স্বাগতম"'))
    after = versions(root)
    assert after["demo"] != before["demo"]
    assert {k: v for k, v in after.items() if k != "demo"} == {k: v for k, v in before.items() if k != "demo"}
    # the template the about screen uses belongs to the demo too
    (root / "templates/about.j2").write_text((root / "templates/about.j2").read_text() + "\n")
    assert versions(root)["demo"] != after["demo"]
    # a comment in the YAML is part of the file, so of the version
    recharge = root / "flows/recharge.yaml"
    recharge.write_text(recharge.read_text() + "\n# note\n")
    assert versions(root)["recharge"] != before["recharge"]


async def test_a_stored_version_renders_its_own_texts_after_the_files_changed(tmp_path):
    root = project(tmp_path)
    registry = build_registry()
    renderer = Renderer(root / "templates", root / "locales")
    demo = next(f for f in load_flow_dir(root / "flows", renderer, registry) if f.name == "demo")
    stored = encode_source(source_of(demo, renderer))
    po = root / "locales/bn/LC_MESSAGES/messages.po"
    po.write_text(po.read_text().replace('msgstr "আলাপে স্বাগতম"', 'msgstr "আলাপে আবার স্বাগতম"'))
    current = Renderer(root / "templates", root / "locales")
    runtime = compile_source(decode_source(stored), registry, current)
    engine = Engine(load_flow_dir(root / "flows", current, registry), current, registry)
    engine.versions.older[("demo", runtime.version)] = runtime
    subscriber = Subscriber("s1", "tel:8801812345678", "01812345678")
    new_session, new_screen = await engine.start(subscriber, "*213#", "bn")
    assert new_screen.text.startswith("আলাপে আবার স্বাগতম")
    new_session.ver["demo"] = runtime.version  # a session that started before the change
    new_session.page = 1
    reply = await engine.advance(new_session, subscriber, "0")
    assert reply.text.startswith("আলাপে স্বাগতম")


def test_a_stored_version_naming_a_removed_action_is_unavailable(tmp_path):
    root = project(tmp_path)
    renderer = Renderer(root / "templates", root / "locales")
    registry = build_registry()
    demo = next(f for f in load_flow_dir(root / "flows", renderer, registry) if f.name == "demo")
    source = source_of(demo, renderer)
    with pytest.raises(VersionUnavailable, match="unknown action 'operator.detect'"):
        compile_source(source, type(registry)(), renderer)
