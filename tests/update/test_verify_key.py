"""Signature before update: signed, unsigned and wrongly signed images through the real registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import run_cli
from tests.update.conftest import Registry, build_version, push, update_once

PREFIX = "dwsig"
# No opt-in label: named on the command line, so update runs of other tests (which manage
# every opted-in container on the shared daemon) leave these alone.
LABEL = {"dockward.test": PREFIX}


def test_only_images_signed_with_the_key_are_taken(
    mine: Any, registry: Registry, tmp_path: Path
) -> None:
    client = mine
    for prefix in ("good", "other"):
        res = run_cli("sign", "--generate-key", str(tmp_path / prefix))
        assert res.code == 0, res.err
    v1, v2 = build_version(client, "v1-sig"), build_version(client, "v2-sig")
    names = {k: f"{PREFIX}-{k}" for k in ("signed", "unsigned", "wrong", "labelled", "free")}
    refs = {}
    for key, name in names.items():
        repo = f"{PREFIX}/{key}"
        push(client, v1, registry, repo, "stable")
        labels = dict(LABEL)
        if key == "labelled":
            labels["dockward.update.verify-key"] = str(tmp_path / "good.pub")
        c = client.create_container(registry.ref(repo, "stable"), name=name, labels=labels)
        client.start(c["Id"])
        push(client, v2, registry, repo, "stable")
        refs[key] = registry.ref(repo, "stable")
        client.remove_image(refs[key], noprune=True)  # untag: a pull would bring the tag back
    for key, signer in (("signed", "good"), ("wrong", "other")):
        res = run_cli("sign", "--key", str(tmp_path / f"{signer}.key"), refs[key])
        assert res.code == 0, res.err

    # --verify-key on every container.
    run = update_once(
        tmp_path / "state",
        "--verify-key",
        str(tmp_path / "good.pub"),
        names["signed"],
        names["unsigned"],
        names["wrong"],
    )
    events = run.events
    assert events[names["signed"]]["status"] == "updated", events[names["signed"]]
    gates = {g["gate"]: g for g in events[names["signed"]]["gates"]}
    assert gates["signature"]["allowed"] is True
    unsigned, wrong = events[names["unsigned"]], events[names["wrong"]]
    assert unsigned["status"] == "refused" and "DW-P008" in unsigned["reason"]
    assert "no signature for" in unsigned["reason"]
    assert (
        wrong["status"] == "refused"
        and "does not verify with the configured key" in wrong["reason"]
    )
    assert run.code == 1  # refused updates are high findings
    assert client.inspect_container(names["signed"])["Image"] == v2
    for key in ("unsigned", "wrong"):
        assert client.inspect_container(names[key])["Image"] == v1
        # Refused before the pull: the tag was never pulled again.
        tags = [
            t for i in client.images(name=refs[key].rsplit(":", 1)[0]) for t in i["RepoTags"] or ()
        ]
        assert refs[key] not in tags

    # The label adds the key for one container; without a key, nothing is required.
    events = update_once(tmp_path / "state", names["labelled"], names["free"]).events
    assert events[names["labelled"]]["status"] == "refused", events[names["labelled"]]
    assert "no signature for" in events[names["labelled"]]["reason"]
    assert events[names["free"]]["status"] == "updated", events[names["free"]]


def test_a_bad_verify_key_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "k.pub").write_text("not a key\n")
    res = run_cli("update", "--once", "--verify-key", str(tmp_path / "k.pub"), f"{PREFIX}-none")
    assert res.code == 2 and "not a PEM public key" in res.err
    assert len(res.err.strip().splitlines()) == 1
