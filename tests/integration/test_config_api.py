"""ConfigMaps and Secrets through the API: bad input refused with every field and nothing
stored, the 1 MiB limit, stringData folded and never returned, immutable objects, and the real
kubectl's `create configmap|secret` (protobuf bodies), `get cm,secrets` and `explain`."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from api.client import Client
from tests.integration.test_cli_apply import Run, kl
from tests.integration.test_kubectl import Kubectl, kubectl

__all__ = ["kl", "kubectl"]

CMS = "/api/v1/namespaces/default/configmaps"
SECRETS = "/api/v1/namespaces/default/secrets"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def fields(status: dict[str, Any]) -> list[str]:
    return sorted(c["field"] for c in status["details"]["causes"])


async def test_bad_configmaps_and_secrets_name_every_field_and_store_nothing(http):
    code, status = await http.post(CMS, {"metadata": {"name": "Bad_Name"},
                                         "data": {"ok": "1", "no spaces": "x", "both": "y"},
                                         "binaryData": {"both": b64("z"), "..dots": b64("z")}})
    assert code == 422, status
    assert fields(status) == ["binaryData[..dots]", "data[both]", "data[no spaces]", "metadata.name"]
    assert status["reason"] == "Invalid" and status["details"]["kind"] == "ConfigMap"
    code, status = await http.post(CMS, {"metadata": {"name": "huge"}, "data": {"a": "x" * (2 << 20)}})
    assert code == 422 and fields(status) == ["[]"], status
    assert status["message"] == 'ConfigMap "huge" is invalid: []: Too long: must have at most 1048576 bytes'
    code, status = await http.post(SECRETS, {"metadata": {"name": "s"}, "type": "kubernetes.io/tls",
                                             "data": {"tls.crt": "not base64!", "bad key": b64("v")}})
    assert code == 422
    assert fields(status) == ["data[bad key]", "data[tls.crt]", "data[tls.key]"]
    assert "<secret contents redacted>" in status["message"] and "not base64!" not in status["message"]
    code, status = await http.post(SECRETS, {"metadata": {"name": "reg"}, "type": "kubernetes.io/dockerconfigjson",
                                             "stringData": {".dockerconfigjson": "{not json"}})
    assert code == 422 and fields(status) == ["data[.dockerconfigjson]"]
    for path in (CMS, SECRETS):
        code, listed = await http.get(path)
        assert code == 200 and listed["items"] == []


async def test_string_data_is_folded_and_never_stored_or_returned(http):
    code, created = await http.post(SECRETS, {"metadata": {"name": "db"}, "data": {"user": b64("old")},
                                              "stringData": {"user": "admin", "password": "s3cret"}})
    assert code == 201, created
    assert "stringData" not in created and created["type"] == "Opaque"
    assert created["data"] == {"user": b64("admin"), "password": b64("s3cret")}
    code, got = await http.get(f"{SECRETS}/db")
    assert "stringData" not in got and got["data"] == created["data"]
    code, patched = await http.patch(f"{SECRETS}/db", {"stringData": {"password": "rotated"}})
    assert code == 200, patched
    assert "stringData" not in patched and patched["data"]["password"] == b64("rotated")
    code, status = await http.patch(f"{SECRETS}/db", {"type": "kubernetes.io/basic-auth"})
    assert code == 422 and fields(status) == ["type"]


async def test_immutable_objects_keep_their_data(http):
    code, cm = await http.post(CMS, {"metadata": {"name": "frozen"}, "data": {"a": "1"}, "immutable": True})
    assert code == 201
    code, status = await http.patch(f"{CMS}/frozen", {"data": {"a": "2"}, "immutable": False})
    assert code == 422 and fields(status) == ["data", "immutable"], status
    assert "field is immutable when `immutable` is set" in status["message"]
    code, status = await http.patch(f"{CMS}/frozen", {"binaryData": {"b": b64("x")}})
    assert code == 422 and fields(status) == ["binaryData"]
    code, labelled = await http.patch(f"{CMS}/frozen", {"metadata": {"labels": {"tier": "db"}}})
    assert code == 200 and labelled["data"] == {"a": "1"}  # metadata still changes
    code, s = await http.post(SECRETS, {"metadata": {"name": "frozen"}, "stringData": {"k": "v"}, "immutable": True})
    assert code == 201
    code, status = await http.patch(f"{SECRETS}/frozen", {"stringData": {"k": "w"}})
    assert code == 422 and fields(status) == ["data"]
    code, got = await http.get(f"{SECRETS}/frozen")
    assert got["data"] == {"k": b64("v")}
    # Not yet immutable: anything may change, and immutable may be set.
    code, cm = await http.post(CMS, {"metadata": {"name": "later"}, "data": {"a": "1"}})
    code, cm = await http.patch(f"{CMS}/later", {"data": {"a": "2"}, "immutable": True})
    assert code == 200 and cm["immutable"] is True


async def test_kubectl_create_get_and_explain(kubectl: Kubectl, tmp_path: Path):
    (tmp_path / "app.properties").write_text("color=blue\n")
    (tmp_path / "env").write_text("# a comment\nMODE=prod\nLEVEL=3\n")
    out = await kubectl.run("create", "configmap", "web", "--from-literal=greeting=hello",
                            f"--from-file={tmp_path / 'app.properties'}", f"--from-file=renamed={tmp_path / 'env'}")
    assert out.stdout.strip() == "configmap/web created"
    await kubectl.run("create", "configmap", "envs", f"--from-env-file={tmp_path / 'env'}")
    out = await kubectl.run("create", "secret", "generic", "db", "--from-literal=password=s3cret")
    assert out.stdout.strip() == "secret/db created"
    await kubectl.run("create", "secret", "docker-registry", "reg", "--docker-server=registry.example",
                      "--docker-username=u", "--docker-password=p")
    cm = json.loads((await kubectl.run("get", "cm", "web", "-o", "json")).stdout)
    assert cm["data"] == {"greeting": "hello", "app.properties": "color=blue\n",
                          "renamed": "# a comment\nMODE=prod\nLEVEL=3\n"}
    envs = json.loads((await kubectl.run("get", "configmap", "envs", "-o", "json")).stdout)
    assert envs["data"] == {"MODE": "prod", "LEVEL": "3"}
    db = json.loads((await kubectl.run("get", "secret", "db", "-o", "json")).stdout)
    assert db["type"] == "Opaque" and base64.b64decode(db["data"]["password"]) == b"s3cret"
    reg = json.loads((await kubectl.run("get", "secret", "reg", "-o", "json")).stdout)
    assert reg["type"] == "kubernetes.io/dockerconfigjson"
    auths = json.loads(base64.b64decode(reg["data"][".dockerconfigjson"]))["auths"]
    assert auths["registry.example"]["username"] == "u"
    rows = [line.split() for line in (await kubectl.run("get", "cm,secrets")).stdout.splitlines() if line.strip()]
    assert ["NAME", "DATA", "AGE"] in rows and ["NAME", "TYPE", "DATA", "AGE"] in rows
    assert any(r[:2] == ["configmap/web", "3"] for r in rows)
    assert any(r[:3] == ["secret/db", "Opaque", "1"] for r in rows)
    assert any(r[:3] == ["secret/reg", "kubernetes.io/dockerconfigjson", "1"] for r in rows)
    out = await kubectl.run("create", "configmap", "web", "--from-literal=a=b", ok=False)
    assert 'configmaps "web" already exists' in out.stderr
    explained = (await kubectl.run("explain", "configmap.binaryData")).stdout
    assert "binaryData" in explained


async def test_kubelite_create_configmap_and_secrets(kl: Run, client: Client, tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "a.conf").write_text("a\n")
    (tmp_path / "dir" / "blob").write_bytes(b"\xff\x00")
    (tmp_path / "dir" / "bad name").write_text("skipped")
    (tmp_path / "vars").write_text("\n# comment\nMODE=prod\n  LEVEL=3=x\n")
    code, out, err = await kl("create", "configmap", "app", "--from-literal", "k=v", "--from-file",
                              str(tmp_path / "dir"), "--from-file", f"renamed={tmp_path / 'vars'}",
                              "--from-env-file", str(tmp_path / "vars"))
    assert (code, out, err) == (0, "configmap/app created\n", "")
    cm = await client.request("GET", f"{CMS}/app")
    assert cm["data"] == {"k": "v", "a.conf": "a\n", "renamed": "\n# comment\nMODE=prod\n  LEVEL=3=x\n",
                          "MODE": "prod", "LEVEL": "3=x"}
    assert cm["binaryData"] == {"blob": "/wA="}
    code, out, err = await kl("create", "cm", "dup", "--from-literal", "k=1", "--from-literal", "k=2")
    assert code == 1 and err == ('error: cannot add key "k", another key by that name already exists in Data for '
                                 'ConfigMap "dup"\n')
    code, out, err = await kl("create", "secret", "generic", "db", "-n", "default", "--from-literal", "pw=s3cret",
                              "--type", "example.com/db")
    assert (code, out) == (0, "secret/db created\n"), err
    db = await client.request("GET", f"{SECRETS}/db")
    assert db["type"] == "example.com/db" and db["data"] == {"pw": b64("s3cret")}
    (tmp_path / "tls.crt").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    (tmp_path / "tls.key").write_text("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n")
    code, out, err = await kl("create", "secret", "tls", "web-tls", "--cert", str(tmp_path / "tls.crt"),
                              "--key", str(tmp_path / "tls.key"))
    assert (code, out) == (0, "secret/web-tls created\n"), err
    assert (await client.request("GET", f"{SECRETS}/web-tls"))["type"] == "kubernetes.io/tls"
    code, out, err = await kl("create", "secret", "docker-registry", "reg", "--docker-server", "localhost:5000",
                              "--docker-username", "u", "--docker-password", "p")
    assert (code, out) == (0, "secret/reg created\n"), err
    reg = await client.request("GET", f"{SECRETS}/reg")
    assert json.loads(base64.b64decode(reg["data"][".dockerconfigjson"])) == {
        "auths": {"localhost:5000": {"username": "u", "password": "p", "auth": b64("u:p")}}}
    code, out, err = await kl("create", "secret", "tls", "x", "--cert", str(tmp_path / "vars"), "--key",
                              str(tmp_path / "tls.key"))
    assert (code, err) == (1, "error: tls: failed to find any PEM data in certificate input\n")
    code, out, err = await kl("get", "cm,secrets")
    assert code == 0 and "NAME" in out and "kubernetes.io/dockerconfigjson" in out
