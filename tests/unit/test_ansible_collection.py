"""The Ansible collection (ansible/) without hosts: ansible-lint's production profile,
ansible-doc reading the module's and the role's documentation, the role's item options
kept equal to the module's, and the module's YAML-to-config translation checked against
``lxcsd config apply`` itself. tests/sandbox/test_fleet.py runs it against two hosts."""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from lxcsd.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
COLLECTION = ROOT / "ansible"
MODULE = COLLECTION / "plugins/modules/lxcsd_container.py"
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def _tool(name: str) -> str:
    found = shutil.which(name, path=SYSTEM_PATH)
    if found is None:
        pytest.skip(f"{name} is not installed (packaging/setup.sh test installs Debian's)")
    return found


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The collection as ansible-galaxy installs it (build included), in a private path."""
    galaxy = _tool("ansible-galaxy")
    home = tmp_path_factory.mktemp("ansible-home")
    subprocess.run([galaxy, "collection", "install", "--offline", "-p", str(home / "c"),
                    str(COLLECTION)], check=True, capture_output=True, timeout=120,
                   env={"HOME": str(home), "PATH": SYSTEM_PATH})
    return home


def _env(home: Path) -> dict[str, str]:
    return {"HOME": str(home), "PATH": SYSTEM_PATH, "ANSIBLE_COLLECTIONS_PATH": str(home / "c"),
            "LANG": "C.UTF-8", "NO_COLOR": "1"}


def test_ansible_lint_production_profile_is_clean(installed: Path) -> None:
    lint = _tool("ansible-lint")
    result = subprocess.run([lint, "--offline", "--profile", "production", "--nocolor"],
                            cwd=COLLECTION, capture_output=True, text=True, timeout=300,
                            env=_env(installed), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 failure(s), 0 warning(s)" in result.stderr + result.stdout


@pytest.mark.parametrize(("kind", "name", "expect"), [
    ("module", "lxcsd.lxcsd.lxcsd_container", "restart_on_change"),
    ("role", "lxcsd.lxcsd.lxcsd", "lxcsd_containers"),
])
def test_ansible_doc_reads_the_documentation(installed: Path, kind: str, name: str,
                                             expect: str) -> None:
    doc = _tool("ansible-doc")
    result = subprocess.run([doc, "-t", kind, "--json", name], capture_output=True, text=True,
                            timeout=120, env=_env(installed), check=False)
    assert result.returncode == 0, result.stderr
    assert expect in result.stdout and "[WARNING]" not in result.stderr, result.stderr


# --- the module's code, imported (Debian's ansible, seen through the venv's system site) ---


@pytest.fixture(scope="module")
def module() -> ModuleType:
    pytest.importorskip("ansible.module_utils.basic")
    spec = importlib.util.spec_from_file_location("lxcsd_container", MODULE)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def _yaml(path: Path) -> Any:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load(path.read_text())


def test_the_roles_item_options_are_the_modules(module: ModuleType) -> None:
    specs = _yaml(COLLECTION / "roles/lxcsd/meta/argument_specs.yml")
    items = specs["argument_specs"]["main"]["options"]["lxcsd_containers"]["options"]
    documented = _yaml_doc(module)["options"]
    assert set(items) == set(module.ARGUMENTS) == set(documented)
    for name, spec in module.ARGUMENTS.items():
        for field in ("type", "choices", "elements", "default", "required"):
            assert items[name].get(field) == spec.get(field), (name, field)
            assert documented[name].get(field) == spec.get(field), (name, field)
    tasks = (COLLECTION / "roles/lxcsd/tasks/main.yml").read_text()
    assert all(f"    {name}: " in tasks for name in module.ARGUMENTS)


def _yaml_doc(module: ModuleType) -> Any:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load(module.DOCUMENTATION)


def params(**given: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"config": {}, "network": None, "autostart": None,
                            "start_order": None, "start_delay": None, "groups": None}
    return {**base, **given}


def test_the_fragment_the_module_writes(module: ModuleType) -> None:
    text = module.fragment(params(
        config={"lxc.tty.max": 2, "lxc.mount.entry": ["/a a none bind 0 0", "/b b none bind 0 0"],
                "lxc.cap.drop": [], "lxc.no_new_privs": True, "lxc.apparmor.profile": None},
        network=[{"link": "lxcbr0", "type": "veth", "ipv4.address": ["10.0.3.5/24"]}],
        autostart=True, start_order=10, groups=["onboot", "web"]))
    assert text.splitlines() == [
        "lxc.tty.max = 2",
        "lxc.mount.entry = /a a none bind 0 0", "lxc.mount.entry = /b b none bind 0 0",
        "lxc.cap.drop =", "lxc.no_new_privs = 1", "lxc.apparmor.profile =",
        "lxc.start.auto = 1", "lxc.start.order = 10",
        "lxc.group = onboot", "lxc.group = web",
        "lxc.net =", "lxc.net.0.type = veth", "lxc.net.0.link = lxcbr0",
        "lxc.net.0.ipv4.address = 10.0.3.5/24"]
    assert module.fragment(params()) == ""


@pytest.mark.parametrize(("given", "message"), [
    ({"config": {"lxc.start.auto": 1}, "autostart": True}, "given twice"),
    ({"config": {"lxc.net.0.link": "br0"}, "network": []}, "not both"),
    ({"network": [{"link": "br0"}]}, "network 0 has no type"),
    ({"config": {"lxc.environment": [{"A": "1"}]}}, "not a single value"),
])
def test_what_the_module_refuses_before_touching_the_host(module: ModuleType,
                                                           given: dict[str, Any],
                                                           message: str) -> None:
    with pytest.raises(ValueError, match=message):
        module.fragment(params(**given))


def test_the_fragment_applied_by_lxcsd_then_changes_nothing(
        module: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The module's fragment through the real `lxcsd config apply`: the keys take effect,
    and the same task again is a no-op (what makes a second playbook run report ok)."""
    monkeypatch.setenv("LXCSD_LXCPATH", str(tmp_path))
    (tmp_path / "web1").mkdir()
    config = tmp_path / "web1" / "config"
    config.write_text("# lxcsd create\nlxc.rootfs.path = dir:/srv/web1\nlxc.net.0.type = veth\n"
                      "lxc.net.0.link = lxcbr0\nlxc.net.0.flags = up\nlxc.cap.drop = mknod\n")
    text = module.fragment(params(
        config={"lxc.cap.drop": ["sys_module", "sys_time"]}, groups=["web"],
        network=[{"type": "veth", "link": "br0"}, {"type": "veth", "link": "br1"}]))

    def apply() -> dict[str, Any]:
        monkeypatch.setattr("sys.stdin", io.StringIO(text))
        assert main(["config", "apply", "web1", "-", "--format", "json"]) == 0
        result: dict[str, Any] = json.loads(capsys.readouterr().out)
        return result

    assert apply()["keys"] == ["lxc.cap.drop", "lxc.group", "lxc.net"]
    assert apply()["changed"] is False
    for key, wanted in (("lxc.cap.drop", ["sys_module", "sys_time"]), ("lxc.group", ["web"]),
                        ("lxc.net.0.link", ["br0"]), ("lxc.net.1.link", ["br1"]),
                        ("lxc.net.0.flags", [])):
        assert main(["config", "get", "web1", key]) == 0
        assert capsys.readouterr().out.split() == wanted, key
