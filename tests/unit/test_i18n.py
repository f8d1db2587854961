"""Simplified Chinese (--lang zh-CN): every check and control has its zh-CN title and remediation
for its current English text, every UI text of the template and the code has its translation, a
zh-CN report lets no English heading or label through, and IDs, host names and evidence stay as
they are. The browser half (CJK glyphs, not tofu) is tests/unit/test_report_browser_zh.py."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import string
from html.parser import HTMLParser
from pathlib import Path

import jinja2
import pytest
from babel.messages.pofile import read_po

from fleetcare import catalog, cli, i18n, lifecycle, reports
from fleetcare.errors import InputError
from fleetcare.history import History
from fleetcare.reports import html as html_report
from fleetcare.reports import markdown
from fleetcare.reports.view import evidence_text
from fleetcare.results import Finding, HostResult, Run

from .conftest import finding, ok_event, stats_event

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("gen_catalogs", ROOT / "docs" / "gen_catalogs.py")
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)

ZH = "zh-CN"
CJK = re.compile(r"[\u4e00-\u9fff]")


def _po(domain: str) -> dict[tuple[str | None, str], object]:
    with open(i18n.catalog_path(ZH, domain), "rb") as fh:
        return {(m.context, m.id): m for m in read_po(fh) if m.id}


def _records() -> list[dict]:
    return [r for _, r in catalog._role_checks()] + catalog.load()


# -- the catalogs --------------------------------------------------------------------------------------
def test_every_check_and_control_has_its_zh_title_and_remediation():
    po = _po("checks")
    records = _records()
    assert len(records) == len(catalog.finding_ids()) >= 375  # health, patching, backup, drift, hardening
    missing, fuzzy, english = [], [], []
    for r in records:
        for key in ("title", "remediation"):
            message = po.get((r["id"], r[key]))
            if message is None or not message.string:
                missing.append(f"{r['id']} {key}: {r[key]!r}")
            elif message.fuzzy:
                fuzzy.append(f"{r['id']} {key}")
            elif not CJK.search(message.string):
                english.append(f"{r['id']} {key}: {message.string!r}")
    hint = " (run python docs/gen_catalogs.py and translate the empty entries)"
    assert not missing, f"{len(missing)} texts without zh-CN translation{hint}: {missing[:10]}"
    assert not fuzzy and not english, (fuzzy, english)
    # nothing stale: a changed English text leaves no orphan behind
    wanted = {(r["id"], r[k]) for r in records for k in ("title", "remediation")}
    assert set(po) == wanted, f"entries for texts no check has: {sorted(set(po) - wanted)[:10]}"


_KEPT = re.compile(r"(?:/[\w.*\-\[\]]+)+|(?<!\w)'[^']+'(?!\w)|\b[\w.]+=\S+|\b(?:[a-z]+_)+[a-z]+\b|--[a-z][\w-]+")


def test_translations_keep_paths_options_and_commands():
    """File paths, quoted settings, key=value, option names and --flags are copied, not translated."""
    po = _po("checks")
    changed = []
    for (fid, english), message in po.items():
        for token in _KEPT.findall(english):
            if token.rstrip(".,") not in message.string:
                changed.append(f"{fid}: {token!r} not in {message.string!r}")
    assert not changed, changed[:10]


def test_a_changed_english_text_is_untranslated():
    t = i18n.translator(ZH)
    r = catalog.get("HARD-SSH-001")
    assert CJK.search(t.check(r["id"], r["title"]))
    assert t.check(r["id"], r["title"] + " (changed)") == r["title"] + " (changed)"
    # the ID is part of the key: the same text under another ID is not found
    assert t.check("HARD-SSH-002", r["title"]) == r["title"]
    assert i18n.translator("en").check(r["id"], r["title"]) == r["title"]


def test_every_ui_text_of_the_template_and_code_is_translated():
    """What gen_catalogs.py extracts (the template's `t`/`label` literals, the `_`/`tr` calls of
    the report and CLI modules, titles, exit meanings, labels) is in ui.po with the same fields."""
    po = _po("ui")
    messages = gen.ui_messages()
    texts = {text for text, _ in messages}
    assert {"Findings needing attention ({count})", "Remediation: {text}", "exit {code}: {why} ({seen})",
            "Inspection report", "not applicable", "Changes made"} <= texts  # the extraction sees them all
    missing = [f"{text!r} ({where})" for text, where in messages
               if not getattr(po.get((None, text)), "string", "")]
    assert not missing, f"untranslated UI texts (python docs/gen_catalogs.py, then translate): {missing}"
    fields = string.Formatter()
    for text in texts:
        wanted = {f for _, f, _, _ in fields.parse(text) if f}
        got = {f for _, f, _, _ in fields.parse(po[(None, text)].string) if f}
        assert got == wanted, f"{text!r}: fields {got} in the translation, {wanted} in English"
    assert gen.update(ZH, check=True) == []  # the catalogs are what the generator would write


def test_catalogs_are_read_with_babel_and_cached():
    assert i18n.translator(ZH) is i18n.translator(ZH)
    assert i18n.translator(ZH)("Host status") == "主机状态"
    assert i18n.translator("en")("Host status") == "Host status"
    assert i18n.translator(ZH)("a text no catalog has") == "a text no catalog has"


# -- choosing the language -----------------------------------------------------------------------------
@pytest.mark.parametrize(("environ", "lang"), [
    ({}, "en"),
    ({"LANG": "zh_CN.UTF-8"}, ZH),
    ({"LANG": "zh-CN"}, ZH),
    ({"LC_MESSAGES": "zh_Hans"}, ZH),
    ({"LANGUAGE": "zh_CN:en", "LANG": "en_US.UTF-8"}, ZH),
    ({"LANGUAGE": "en", "LANG": "zh_CN.UTF-8"}, "en"),
    ({"LC_ALL": "C.UTF-8", "LANG": "zh_CN.UTF-8"}, "en"),  # LC_ALL overrides LANG
    ({"LANG": "zh_TW.UTF-8"}, "en"),  # traditional Chinese is not zh-CN
    ({"LANG": "de_DE.UTF-8"}, "en"),
])
def test_the_locale_chooses_the_language(environ, lang):
    assert i18n.choose(None, environ) == lang


def test_lang_option_wins_and_is_checked():
    assert i18n.choose("en", {"LANG": "zh_CN.UTF-8"}) == "en"
    assert i18n.choose("zh_CN", {}) == ZH and i18n.choose("ZH-cn", {}) == ZH
    with pytest.raises(InputError, match="--lang: 'fr' is not one of en, zh-CN"):
        i18n.choose("fr", {})


# -- a zh-CN report of several roles -------------------------------------------------------------------
def _real(fid: str, host: str, status: str, role: str, **evidence) -> Finding:
    r = catalog.health_check(fid) or catalog.get(fid)
    return Finding(id=fid, title=r["title"], severity=r["severity"], status=status, host=host, role=role,
                   evidence=evidence, remediation=r["remediation"], references=list(r.get("references") or []))


def fleet_run(check: bool = False) -> Run:
    """Findings of health, hardening, patching, backup and drift with their real texts; every
    status; a host unreachable, one failed, changes; compared with an earlier run."""
    run = Run(id="20261201-080000-beef", command="audit", inventory="inventories/kunde.yml",
              started="2026-12-01T08:00:00+00:00", check=check)
    for name in ("db-1", "web-1", "web-2"):
        run.hosts[name] = HostResult(name, status="ok")
    run.hosts["db-1"].findings += [
        _real("HLTH-DISK-001", "db-1", "fail", "health", mount="/var", used_pct=97.1, threshold_pct=90),
        _real("HARD-SSH-001", "db-1", "fail", "hardening", option="permitrootlogin", expected="no", actual="yes"),
        _real("PTCH-SEC-001", "db-1", "fail", "patching", pending=3, packages=["openssl", "libssl3"]),
        _real("BKUP-AGE-001", "db-1", "error", "backup", reason="status record unreadable: /var/lib/x"),
        _real("DRFT-FILE-001", "db-1", "fail", "drift", item="/etc/hosts", change="modified"),
        _real("HARD-KERN-001", "db-1", "pass", "hardening"),
    ]
    run.hosts["web-1"].findings += [
        _real("HLTH-DISK-001", "web-1", "pass", "health"),
        _real("HARD-SSH-001", "web-1", "waived", "hardening"),
        _real("HARD-KERN-001", "web-1", "not_applicable", "hardening", reason="container"),
        _real("HARD-MNT-001", "web-1", "pass", "hardening"),
    ]
    run.hosts["web-1"].changes += ["sysctl kernel.randomize_va_space=2"]
    run.hosts["web-2"].findings += [_real("HARD-AUDIT-040", "web-2", "fail", "hardening", line="-e 2")]
    run.hosts["cache-1"] = HostResult("cache-1", status="unreachable", message="ssh: connect to host cache-1 "
                                      "port 22: Connection timed out")
    run.hosts["mail-1"] = HostResult("mail-1", status="failed", message="MODULE FAILURE: python3 not found")
    run.finish()
    before = Run(id="20261130-080000-cafe", command="audit", started="2026-11-30T08:00:00+00:00")
    before.hosts["db-1"] = HostResult("db-1", status="ok")
    before.hosts["db-1"].findings += [_real("HARD-KERN-001", "db-1", "fail", "hardening")]
    before.finish()
    run.comparison = lifecycle.compare(run, before)
    return run


def lifecycle_run(check: bool = False) -> Run:
    """fleet_run with everything the lifecycle and trends add to a report, made by the real code:
    a waiver in force and expiring soon, one lapsed, service levels with an overdue finding, a
    recurring finding with a note, capacity forecasts and memory/load trends."""
    from datetime import datetime, timedelta

    from fleetcare import policy, service_levels, trends, waivers

    run = fleet_run(check)
    at = datetime.fromisoformat(run.started)
    # HARD-SSH-001 failed on db-1 long ago: overdue; web-2's audit rule is waived until soon
    for e in run.comparison["findings"]:
        if e["id"] == "HARD-SSH-001" and e["host"] == "db-1":
            e["first_seen"] = "2026-10-01T08:00:00+00:00"
            e["recurring"], e["recurrences"] = True, 3
    run.comparison["recurring_rule"] = {"times": 3, "days": 30}
    chosen = policy.defaults()
    waivers.apply(run, [
        waivers.Waiver("HARD-AUDIT-*", "web-*", "vendor agent rewrites the rules", "ops-team",
                       at + timedelta(days=3), "history", "7"),
        waivers.Waiver("HLTH-DISK-001", "db-1", "migration to a bigger volume", "dba",
                       at - timedelta(days=1), "file", "waivers.yml#1"),
    ], chosen)
    service_levels.annotate(run, chosen)
    run.notes = [{"id": 1, "finding": "HARD-SSH-001", "host": "db-*", "cause": "image built by hand",
                  "fix": "rebuild from the golden image", "author": "li.wei", "created": "2026-11-20T09:00:00+00:00",
                  "failing_hosts": 1}]
    settings = trends.Settings()
    days = [(at - timedelta(days=d)).isoformat(timespec="seconds") for d in (4, 3, 2, 1, 0)]
    run.trends = {"settings": settings.to_dict(), "runs": 5, "filesystems": [
        trends.forecast_filesystem("db-1", "/var", [(t, 50e9 - i * 4e9, 100e9, 50 + i * 4)
                                                   for i, t in enumerate(days)], settings),
        trends.forecast_filesystem("web-1", "/", [(t, 30e9, 40e9, 25) for t in days[-3:]], settings)],
        "resources": [trends.resource_trend("db-1", "mem_used_pct", [(t, 40 + i) for i, t in enumerate(days)],
                                            settings)]}
    run.rejudge()
    return run


def _data(run: Run) -> list[str]:
    """What comes from the run, not from fleetcare: shown as it is in every language; and the
    checks' own texts in zh-CN (commands in them stay English: HOST, root; their translation is
    proven complete above)."""
    t = i18n.translator(ZH)
    values = {run.id, run.command, run.inventory, run.started, run.finished or "", run.fleetcare_version,
              "report.json", "report.html"}
    for h in run.hosts.values():
        values |= {h.name, h.message, *h.changes}
        for f in h.findings:
            values |= {f.id, f.role, f.severity, *f.references, evidence_text(f.evidence, 300),
                       t.check(f.id, f.title), t.check(f.id, f.remediation)}
            values |= {str(v) for v in f.evidence.values()} | set(f.evidence)
    comparison = run.comparison or {}
    values |= {comparison.get("against") or "", comparison.get("against_started") or ""}
    values |= {e["first_seen"] or "" for e in comparison.get("findings", ())}
    # what people wrote (waiver reasons and owners, notes), patterns and references they gave, and
    # what history measured (trend reasons are evidence: "3 points, need 4")
    for w in [*(run.waivers or {}).get("used", ()), *(run.waivers or {}).get("lapsed", ())]:
        values |= {w["finding"], w["host"], w["reason"], w["owner"], w["expires"], str(w["ref"])}
    for n in run.notes or ():
        values |= {n["finding"], n["host"], n["cause"], n["fix"], n["author"]}
    for item in [*(run.trends or {}).get("filesystems", ()), *(run.trends or {}).get("resources", ())]:
        values |= {item.get("reason") or "", item.get("mount") or "", item.get("metric") or ""}
    if run.trends:
        values.add("HLTH-CAP-001")
    return sorted((v for v in values if v), key=len, reverse=True)


_WORD = re.compile(r"[A-Za-z]{2,}")
# English that stays in a zh-CN report: the product, the column "ID", format names
ALLOWED = {"fleetcare", "id", "json", "html"}


def _template_texts() -> list[str]:
    """The template's own English: its text between tags (CSS and markup removed) and every
    string literal that reads like words, wherever it stands, piped into `t` or not. A heading a
    branch adds without `t` is in here, so the leak test catches it."""
    out = []
    env = jinja2.Environment()
    for path in gen.TEMPLATES:
        tree = env.parse(re.sub(r"(?s)<style>.*?</style>", "", path.read_text(encoding="utf-8")))
        for node in tree.find_all(jinja2.nodes.TemplateData):
            text = re.sub(r"(?s)<style.*?</style>|<[^>]*>|<[^>]*$|^[^<]*>", " ", node.data)
            out.append(text)
        for node in tree.find_all(jinja2.nodes.Const):
            if isinstance(node.value, str) and re.search(r"[A-Za-z]{2,}", node.value) and (
                    " " in node.value.strip() or node.value[:1].isupper()):
                out.append(node.value)
    return out


def _code_texts() -> list[str]:
    """String literals of the report modules that read like words (not docstrings)."""
    out = []
    for path in (ROOT / "fleetcare" / "reports" / "markdown.py", ROOT / "fleetcare" / "reports" / "html.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
        out += [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
                and id(n) not in docs and " " in n.value.strip() and re.search(r"[A-Za-z]{3,}", n.value)
                and not n.value.lstrip().startswith(("#", "{", "<"))]
    return out


def ui_words() -> set[str]:
    """Every English word of every UI text: the catalog's messages, the template, the code."""
    texts = [text for text, _ in gen.ui_messages()] + _template_texts() + _code_texts() + list(i18n.LABELS)
    words = {w.lower() for text in texts for w in _WORD.findall(re.sub(r"\{[^}]*\}", " ", text))}
    return words - ALLOWED


class _Texts(HTMLParser):
    """Text nodes (not CSS) and the attributes a reader sees (title, aria-label)."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self._skip = False

    def handle_starttag(self, tag, attrs):
        self._skip = tag == "style"
        self.texts += [v for k, v in attrs if k in ("title", "aria-label", "alt", "placeholder") and v]

    def handle_endtag(self, tag):
        self._skip = False

    def handle_data(self, data):
        if not self._skip:
            self.texts.append(data)


def _leaks(texts: list[str], data: list[str], words: set[str]) -> list[str]:
    leaks = []
    for text in texts:
        for value in data:
            text = text.replace(value, " ")
        leaks += [f"{w!r} in {text.strip()[:80]!r}" for w in _WORD.findall(text) if w.lower() in words]
    return leaks


def _html_texts(page: str) -> list[str]:
    parser = _Texts()
    parser.feed(page)
    parser.close()
    return parser.texts


def test_the_ui_vocabulary_is_found_in_template_and_code():
    words = ui_words()
    # headings of the template, labels of the code, words of the footer: all known
    assert {"findings", "attention", "remediation", "evidence", "unreachable", "generated", "waived",
            "regressed", "inventory"} <= words
    assert len(words) > 120


@pytest.mark.parametrize("build", [fleet_run, lifecycle_run])
@pytest.mark.parametrize("check", [False, True])
def test_zh_html_report_leaks_no_english_ui_text(check, build):
    run = build(check)
    words, data = ui_words(), _data(run)
    english = _leaks(_html_texts(html_report.render(run, "en")), data, words)
    assert len(english) > 100, "the English report should be full of UI words: the test sees none"
    page = html_report.render(run, ZH)
    assert '<html lang="zh-CN">' in page
    leaks = _leaks(_html_texts(page), data, words)
    assert not leaks, f"English UI text in the zh-CN HTML report: {leaks[:15]}"


@pytest.mark.parametrize("build", [fleet_run, lifecycle_run])
@pytest.mark.parametrize("check", [False, True])
def test_zh_markdown_report_leaks_no_english_ui_text(check, build):
    run = build(check)
    words = ui_words()
    data = sorted({*_data(run), *(markdown.cell(v) for v in _data(run))}, key=len, reverse=True)
    english = _leaks(markdown.render(run, "en").splitlines(), data, words)
    assert len(english) > 50
    leaks = _leaks(markdown.render(run, ZH).splitlines(), data, words)
    assert not leaks, f"English UI text in the zh-CN Markdown report: {leaks[:15]}"


def test_the_leak_test_catches_a_heading_added_without_t(monkeypatch):
    """A branch adds `<h2>Waivers expiring</h2>` to the template without translating it."""
    template = html_report._template()
    source = template.environment.loader.get_source(template.environment, "report.html.j2")[0]
    patched = source.replace("<h2>{{ \"Run\" | t }}</h2>", "<h2>Waivers expiring</h2>\n<h2>{{ \"Run\" | t }}</h2>")
    assert patched != source
    env = template.environment.overlay(loader=jinja2.ChoiceLoader([  # the template's includes stay found
        jinja2.DictLoader({"report.html.j2": patched}), template.environment.loader]))
    run = fleet_run()
    page = env.get_template("report.html.j2").render(**html_report.context(run, ZH))
    words = ui_words() | {w.lower() for t in [patched] for w in _WORD.findall(
        re.sub(r"(?s)<style.*?</style>|<[^>]*>", " ", t))}
    leaks = _leaks(_html_texts(page), _data(run), words)
    assert any("Waivers" in leak for leak in leaks), leaks


def test_zh_reports_keep_ids_hosts_and_evidence():
    run = fleet_run()
    page = html_report.render(run, ZH)
    text = "\n".join(_html_texts(page))
    md = markdown.render(run, ZH)
    for h in run.hosts.values():
        assert h.name in text and markdown.cell(h.name) in md
        for f in h.findings:
            assert f.id in text
            if f.status in ("fail", "error"):
                assert f.id in md
                assert evidence_text(f.evidence, 300) in text, f.evidence
                assert markdown.cell(evidence_text(f.evidence), 120) in md, f.evidence
    # the checks' texts are the catalog's Chinese, never the English
    r = catalog.get("HARD-SSH-001")
    zh_title = i18n.translator(ZH).check("HARD-SSH-001", r["title"])
    assert zh_title in text and zh_title in md and r["title"] not in text and r["title"] not in md
    zh_fix = i18n.translator(ZH).check("HARD-SSH-001", r["remediation"])
    assert zh_fix in text and markdown.cell(zh_fix, 400) in md
    assert "PermitRootLogin no" in zh_fix and "sudo" in zh_fix  # commands and options unchanged
    assert "ssh: connect to host cache-1 port 22: Connection timed out" in text  # messages are data


def test_json_report_stays_english():
    """JSON is data: English texts in every language (docs/translations.md)."""
    run = fleet_run()
    english = reports.render(run, "json")
    with i18n.use(ZH):
        assert reports.render(run, "json") == english
        assert CJK.search(reports.render(run, "html")) and CJK.search(reports.render(run, "md"))
    assert not CJK.search(english)


# -- the CLI -------------------------------------------------------------------------------------------
def _events():
    def real(*args, **kwargs):  # the texts the health module sends: its check data's
        record = catalog.health_check(args[0])
        return {**finding(*args, **kwargs), "title": record["title"], "remediation": record["remediation"]}

    return [
        ok_event("web-1", [real("HLTH-DISK-001"), real("HLTH-MEM-001", status="pass")]),
        ok_event("db-1", [real("HLTH-DISK-001", severity="critical", used_pct=99.0),
                          real("HLTH-MEM-001", "pass")]),
        stats_event(["web-1", "db-1"]),
    ]


@pytest.fixture
def inventory(tmp_path):
    path = tmp_path / "fleet.yml"
    path.write_text("all:\n  hosts:\n    web-1:\n    db-1:\n")
    return path


def test_a_run_in_zh_writes_zh_reports_and_lines(capsys, fake_runner, inventory, data_home):
    fake_runner(_events())
    code = cli.main(["inspect", "-i", str(inventory), "--lang", "zh-CN"])
    out = capsys.readouterr().out
    assert code == 1
    lines = out.strip().splitlines()
    assert lines[0].startswith("inspect · 2 台主机 · 运行 ")
    assert any(ln.startswith(" 严重 ") and "HLTH-DISK-001" in ln and "db-1" in ln for ln in lines), out
    assert any(ln.startswith("报告：") for ln in lines)  # noqa: RUF001 (Chinese punctuation)
    assert lines[-1] == "退出码 1：存在重要及以上级别的检查结果（2 台主机已完成）"  # noqa: RUF001 (Chinese punctuation)
    run_dir = next((data_home / "fleetcare" / "runs").iterdir())
    assert "需要处理的检查结果" in (run_dir / "report.html").read_text()
    assert "## 未通过的检查结果" in (run_dir / "report.md").read_text()
    report = json.loads((run_dir / "report.json").read_text())
    assert report["findings"][0]["title"] == "Filesystem space"  # data stays English


def test_the_locale_chooses_and_lang_wins(capsys, fake_runner, inventory, monkeypatch):
    fake_runner(_events())
    # whether or not that locale is installed here (when not, check_locale sets LC_ALL for
    # Ansible: the language was read before; monkeypatch undoes LC_ALL after the test)
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    assert cli.main(["inspect", "-i", str(inventory), "-q"]) == 1
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("退出码 1：")  # noqa: RUF001 (Chinese punctuation)
    monkeypatch.delenv("LC_ALL", raising=False)
    code = cli.main(["report", "latest", "--format", "md"])
    assert code == 0 and "# fleetcare inspect 报告" in capsys.readouterr().out
    monkeypatch.delenv("LC_ALL", raising=False)
    code = cli.main(["report", "latest", "--format", "md", "--lang", "en"])
    assert code == 0 and capsys.readouterr().out.startswith("# fleetcare inspect report")
    monkeypatch.delenv("LANG")
    code = cli.main(["report", "latest", "--format", "html", "--lang", "zh-CN"])
    assert code == 0 and "文件系统空间" in capsys.readouterr().out
    with History() as h:
        assert next(h.load("latest").findings()).title == "Filesystem space"  # history: English


@pytest.mark.parametrize("argv", [["inspect", "-i", "INV"], ["report", "latest"], ["audit", "-i", "INV"]])
def test_an_unknown_lang_is_one_line_and_exit_2(capsys, fake_runner, inventory, argv):
    fake = fake_runner(_events())
    code = cli.main([a.replace("INV", str(inventory)) for a in argv] + ["--lang", "klingon"])
    _, err = capsys.readouterr()
    assert code == 2 and err.strip() == "fleetcare: --lang: 'klingon' is not one of en, zh-CN"
    assert fake.jobs == []  # before any host is contacted
