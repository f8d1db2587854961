"""The hardening role's filters: select_controls over the shared selection code, and the sshd
lock-out judgement. The selection itself is tested in test_hardening_controls.py."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

ROOT = Path(__file__).resolve().parents[3]
# The filters import ansible_collections.fleetcare.ops.plugins.plugin_utils; the in-repo
# collections path (.collections -> repository root) makes that resolvable.
if str(ROOT / ".collections") not in sys.path:
    sys.path.insert(0, str(ROOT / ".collections"))


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "plugins" / "filter" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


select = _load("select_controls").select_controls
sshd = _load("sshd_access")

CATALOG = [
    {"id": "HARD-SSH-001", "kind": "sshd_option", "params": {"option": "PermitRootLogin", "value": "prohibit-password"},
     "tags": ["ssh"], "disruptive": False},
    {"id": "HARD-SSH-002", "kind": "sshd_option", "params": {"option": "PermitRootLogin", "value": "no"},
     "tags": ["ssh"], "disruptive": True},
    {"id": "HARD-PASS-001", "kind": "config_line", "params": {"path": "/etc/login.defs", "key": "PASS_MAX_DAYS",
                                                              "value": "365"}, "tags": ["pass"], "disruptive": False},
]


def ids(records):
    return [r["id"] for r in records]


def test_the_filter_is_the_shared_selection():
    from ansible_collections.fleetcare.ops.plugins.plugin_utils import controls

    kwargs = {"skip": ["pass"], "enable_disruptive": ["HARD-SSH-002"], "overrides": {"HARD-SSH-002": {"value": "x"}}}
    assert select(CATALOG, **kwargs) == controls.select_controls(CATALOG, **kwargs)


def test_a_bad_switch_is_a_filter_error_naming_the_filter():
    with pytest.raises(AnsibleFilterError, match=r"^select_controls: no control of the catalog matches"):
        select(CATALOG, skip=["HARD-SHH-*"])


SSHD_T = """port 22
permitrootlogin without-password
pubkeyauthentication yes
passwordauthentication no
kbdinteractiveauthentication no
authenticationmethods any
authorizedkeysfile .ssh/authorized_keys .ssh/authorized_keys2
"""


def judge(text=SSHD_T, **kwargs):
    args = {"user": "root", "method": "publickey", "groups": ["root"], "addr": "10.0.0.9", "port": 22,
            "home": "/root", "key_files": ["/root/.ssh/authorized_keys"]}
    args.update(kwargs)
    return sshd.sshd_lockout_reasons(text, **args)


def test_root_with_a_key_stays_allowed_by_prohibit_password():
    assert judge() == []


def test_root_refused_names_the_control():
    controls = [{"id": "HARD-SSH-002", "params": {"option": "PermitRootLogin", "value": "no"}}]
    (reason,) = judge(SSHD_T.replace("without-password", "no"), controls=controls)
    assert "PermitRootLogin no" in reason and "HARD-SSH-002" in reason


def test_root_by_password_refused_by_prohibit_password_and_password_auth_off():
    reasons = judge(method="password")
    assert len(reasons) == 2
    assert any("PermitRootLogin" in r for r in reasons) and any("PasswordAuthentication" in r for r in reasons)


@pytest.mark.parametrize(("extra", "user", "groups", "word"), [
    ("allowusers admin\n", "fleetcare", ["fleetcare", "sudo"], "AllowUsers"),
    ("denyusers fleet*\n", "fleetcare", ["fleetcare", "sudo"], "DenyUsers"),
    ("allowgroups wheel\n", "fleetcare", ["fleetcare", "sudo"], "AllowGroups"),
    ("denygroups sudo\n", "fleetcare", ["fleetcare", "sudo"], "DenyGroups"),
])
def test_access_lists(extra, user, groups, word):
    (reason,) = judge(SSHD_T + extra, user=user, groups=groups, home=f"/home/{user}",
                      key_files=[f"/home/{user}/.ssh/authorized_keys"])
    assert reason.startswith(word)


def test_allow_lists_that_name_the_user_pass():
    text = SSHD_T + "allowusers admin fleetcare@10.0.0.0/8\nallowgroups sudo\n"
    assert judge(text, user="fleetcare", groups=["fleetcare", "sudo"], home="/home/fleetcare",
                 key_files=["/home/fleetcare/.ssh/authorized_keys"]) == []


def test_authentication_methods_needing_two_factors_refuse_a_key_alone():
    (reason,) = judge(SSHD_T.replace("authenticationmethods any", "authenticationmethods publickey,password"))
    assert reason.startswith("AuthenticationMethods")


def test_port_and_authorized_keys_file():
    text = SSHD_T.replace("port 22", "port 2222").replace(
        "authorizedkeysfile .ssh/authorized_keys .ssh/authorized_keys2", "authorizedkeysfile /etc/ssh/keys/%u")
    reasons = judge(text)
    assert [r.split()[0] for r in reasons] == ["Port", "AuthorizedKeysFile"]


def test_value_spelling_and_effective_options():
    assert sshd.sshd_value({"option": "X11Forwarding", "value": False}) == "no"
    assert sshd.sshd_value({"option": "Ciphers", "value": ["a", "b"]}) == "a,b"
    assert sshd.sshd_value({"option": "AllowGroups", "value": ["a", "b"]}) == "a b"
    assert sshd.sshd_option_arg({"option": "MaxAuthTries", "value": 3}) == "MaxAuthTries=3"
    assert ids(sshd.sshd_effective_options(CATALOG[:2])) == ["HARD-SSH-002"]


DEBIAN_SSHD_CONFIG = """# This is the sshd server system-wide configuration file.

Include /etc/ssh/sshd_config.d/*.conf

#PermitRootLogin prohibit-password
KbdInteractiveAuthentication no
UsePAM yes
X11Forwarding yes
PrintMotd no
AcceptEnv LANG LC_*
Subsystem\tsftp\t/usr/lib/openssh/sftp-server
Match User anoncvs
\tX11Forwarding yes
"""


def test_sshd_main_config_carries_the_options_first_and_is_stable():
    controls = [{"id": "HARD-SSH-004", "params": {"option": "x11forwarding", "value": False}},
                {"id": "HARD-SSH-011", "params": {"option": "clientalivecountmax", "value": "2"}},
                {"id": "HARD-SSH-099", "params": {"option": "clientalivecountmax", "value": "3"}}]
    out = sshd.sshd_main_config(DEBIAN_SSHD_CONFIG, controls)
    lines = out.splitlines()
    # the block comes first, before the Include: sshd and scanners read the same (first) values
    assert lines[1:3] == ["x11forwarding no", "clientalivecountmax 3"]
    assert lines.index(sshd.MAIN_END) < lines.index("Include /etc/ssh/sshd_config.d/*.conf")
    # the later global X11Forwarding is commented out; the Match block's one is left alone
    assert "X11Forwarding yes" not in [line.strip() for line in lines[:lines.index("Match User anoncvs")]]
    assert lines[-1] == "\tX11Forwarding yes"
    assert "UsePAM yes" in lines and "#PermitRootLogin prohibit-password" in lines
    assert sshd.sshd_main_config(out, controls) == out  # idempotent
    # a control gone: its line leaves the block
    assert "x11forwarding no" not in sshd.sshd_main_config(out, controls[1:])
