"""The policy packs: every pack loads strictly, and every citation quotes the French
original in ../shared/seeds/ word for word (the seeds are the authority)."""

from __future__ import annotations

import re
import tomllib
import unicodedata

import pytest

from helpdesk.policy import packs
from helpdesk.base.paths import data_dir
from tests.conftest import ROOT

SEEDS = ROOT.parent / "shared" / "seeds"
KEYS = ["communesplone", "indigos", "le-pic", "weentime", "wigii"]


def norm(text: str) -> str:
    text = unicodedata.normalize("NFC", text).replace("’", "'").replace("•", " ")
    text = text.replace("*", "")
    return re.sub(r"\s+", " ", text).strip()


def test_the_five_packs_are_there():
    assert packs.available() == KEYS


@pytest.mark.parametrize("key", KEYS)
def test_pack_loads_strictly(key):
    pack = packs.read_pack(key)
    assert pack.queues[:3] == ["password-reset", "closure", "abuse"]
    for queue, wf in pack.workflows.items():
        assert wf["transitions"], queue


@pytest.mark.parametrize("key", KEYS)
def test_citations_quote_the_seed_verbatim(key):
    if not SEEDS.is_dir():
        pytest.skip("../shared/seeds is not beside the repository")
    pack = tomllib.loads((data_dir() / "policies" / f"{key}.toml").read_text())
    seed = norm((SEEDS / pack["source"]).read_text())
    for name, cite in pack["citations"].items():
        assert cite["ref"], name
        for fragment in re.split(r"\[…\]", cite["text"]):
            fragment = norm(fragment).strip(" .;,:")
            if len(fragment) < 12:
                continue
            assert fragment in seed, f"{key}.{name}: not in {pack['source']}: {fragment[:90]!r}"
    # Notes explaining a parameter quote the text between « » word for word too.
    for name, note in pack["params"].items():
        if name.endswith("_note") and isinstance(note, str):
            for fragment in re.findall(r"«\s*(.+?)\s*»", note):
                assert norm(fragment) in seed, (
                    f"{key}.params.{name}: not in {pack['source']}: {fragment[:90]!r}"
                )


@pytest.mark.parametrize("key", ["wigii", "le-pic"])
def test_packs_name_the_addresses_their_text_gives(key):
    """Wigii's and Le PIC's texts give an address and a domain: their packs use them; the
    others give none and leave them to the admin (helpdesk policy set)."""
    pack = packs.read_pack(key)
    contact = pack.params["contact"]
    assert pack.params["mail_from"] == contact and pack.params["mail_domains"] == [
        contact.split("@")[1]
    ]


def test_a_pack_with_a_bad_address_or_reset_url_does_not_load(monkeypatch, tmp_path):
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(data_dir(), copy)
    pol = copy / "policies" / "wigii.toml"
    pol.write_text(
        pol.read_text().replace(
            'mail_from = "contact@wigii.org"',
            'mail_from = "contact@wigii.org, eve@evil.example"\nreset_url = "http://wigii.org/reset?t="',
            1,
        )
    )
    monkeypatch.setattr(packs, "data_dir", lambda: copy)
    with pytest.raises(packs.PackError) as err:
        packs.read_pack("wigii")
    assert "mail_from" in str(err.value) and "reset_url" in str(err.value)


def test_a_pack_naming_an_unknown_guard_does_not_load(monkeypatch, tmp_path):
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(data_dir(), copy)
    wf = copy / "workflows" / "abuse.toml"
    wf.write_text(
        wf.read_text().replace('name = "prior_exchange_or_emergency"', 'name = "no_such_guard"', 1)
    )
    monkeypatch.setattr(packs, "data_dir", lambda: copy)
    with pytest.raises(packs.PackError, match="no_such_guard"):
        packs.read_pack("indigos")


def test_a_pack_missing_a_citation_does_not_load(monkeypatch, tmp_path):
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(data_dir(), copy)
    p = copy / "policies" / "wigii.toml"
    p.write_text(p.read_text().replace("[citations.logs]", "[citations.unused]"))
    monkeypatch.setattr(packs, "data_dir", lambda: copy)
    with pytest.raises(packs.PackError, match="logs"):
        packs.read_pack("wigii")


@pytest.mark.parametrize("key", KEYS)
def test_every_template_renders_for_every_pack(key, db_url):
    """Every mail, in both languages, renders with and without the dates a ticket may have."""
    from helpdesk.storage import db
    from helpdesk.workflow import compose
    from helpdesk.service import api
    from helpdesk.rules.context import Actor

    with db.write_session(db_url) as s:
        api.add_account(s, login="acc", policy=key, email="acc@example.org")
        t = api.open_ticket(
            s,
            queue="abuse",
            policy=key,
            actor=Actor("bob", "oncall"),
            account_login="acc",
            fields={"category": "spam"},
        ).ticket
        from helpdesk.workflow.engine import make_ctx

        ctx = make_ctx(s, t, Actor("bob", "oncall"))
        for lang in ("fr", "en"):
            t.lang = lang
            for name in compose.template_names(lang):
                subject, body = compose.render(
                    name, lang, key, compose.build_context(ctx, redirect_to="X")
                )
                assert subject and body.strip()
                assert "{{" not in body and "{%" not in body
        assert compose.template_names("fr") == compose.template_names("en")
        s.rollback()


def test_every_pack_has_a_short_name_that_fits_the_list_columns():
    """A person reads a provider by its pack's short name where room is short (the TUI's
    provider column, headers, the dashboard): each pack gives one, at most
    ``SHORT_NAME_MAX`` characters, distinct from the others; a longer one fails to load."""
    names = {key: packs.read_pack(key).short_name for key in KEYS}
    assert names == {
        "communesplone": "CommunesPlone",
        "indigos": "Indigos",
        "le-pic": "Le PIC",
        "weentime": "Weentime",
        "wigii": "Wigii",
    }
    assert all(packs.read_pack(k).params["short_name"] == n for k, n in names.items())
    assert packs.short_names() == names  # read from the files alone, for train list
    pack = packs.read_pack("wigii")
    pack.short_name = "Association wigii.org"
    with pytest.raises(packs.PackError, match="short_name"):
        packs.validate(pack)
