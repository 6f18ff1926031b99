"""``agent deploy``'s usage errors (one line, exit 2, before any SSH) and its SSH parsing."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest
from typer.testing import CliRunner

from statusdash.cli.main import app
from statusdash.deploy import remote
from statusdash.deploy.ssh import Ssh, Target, explain_ssh_failure
from statusdash.errors import Invalid


def run(*args: str) -> object:
    return CliRunner().invoke(app, ["agent", "deploy", *args, "--no-wait"])


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((), "give one TARGET or --all FILE"),
        (("h1", "--host-id", "Bad Host"), "is not a valid host id"),
        (("h1", "--host-id", "h1", "--start", "cron"), "--start must be one of"),
        (("h1", "--host-id", "h1", "--token", "t", "--tag", "a=b"), "the token carries its tags"),
        (("h1", "--host-id", "h1", "--prefix", "opt/x"), "must be an absolute path"),
        (("h1", "--host-id", "h1", "--tag", "novalue"), "must be KEY=VALUE"),
        (("h1;rm -rf /", "--host-id", "h1"), "is not [USER@]HOST[:PORT]"),
    ],
)
def test_usage_errors_are_one_line(
    args: tuple[str, ...], says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run(*args, "--wheelhouse", str(tmp_path))
    assert result.exit_code == 2, result.output  # type: ignore[attr-defined]
    assert says in result.stderr and "Traceback" not in result.output  # type: ignore[attr-defined]


def test_hosts_file_errors_name_the_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    hosts = tmp_path / "hosts"
    hosts.write_text("# fleet\nweb-1 web-1\nweb-2 web-1\n")
    result = run("--all", str(hosts))
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert f"{hosts}:3: host id 'web-1' appears twice" in result.stderr  # type: ignore[attr-defined]
    hosts.write_text("web-1 prefix=relative\n")
    result = run("--all", str(hosts))
    assert f"{hosts}:1: prefix 'relative' must be an absolute path" in result.stderr  # type: ignore[attr-defined]


def test_targets_parse() -> None:
    assert Target.parse("root@web-1:2222") == Target("web-1", "root", 2222)
    assert Target.parse("[::1]:22") == Target("::1", None, 22)
    assert str(Target("::1", "a", 2200)) == "a@[::1]:2200"
    for bad in ("", "a b", "x@", "host:99999", "-oFoo", "h;rm"):
        with pytest.raises(Invalid):
            Target.parse(bad)


def test_ssh_never_prompts_and_ends_options_before_the_host() -> None:
    argv = Ssh(Target("web-1", "root", 2222), identity=Path("/k")).argv("true")
    assert argv[:3] == ["ssh", "-p", "2222"] and "BatchMode=yes" in argv
    assert argv[-3:] == ["--", "web-1", "true"] and argv[argv.index("-i") + 1] == "/k"


def test_ssh_failures_read_as_one_line() -> None:
    t = Target("web-1", "root", 2222)
    assert explain_ssh_failure(t, "root@web-1: Permission denied (publickey).\n").startswith(
        "SSH refused the login (root@web-1: Permission denied (publickey).)"
    )
    assert "no SSH server on port 2222" in explain_ssh_failure(
        t, "ssh: connect to host web-1 port 2222: Connection refused\n"
    )
    assert explain_ssh_failure(t, "weird\n") == "ssh failed: weird"


def test_remote_values_are_quoted() -> None:
    layout = remote.Layout(PurePosixPath("/opt/a b;x"))
    script = remote.install(layout, "python3", "0.1.0")
    assert "'/opt/a b;x/venv'" in script and " statusdash==0.1.0 " in script
    assert "'no /opt/a b;x/venv/bin/statusdash after the install'" in script
