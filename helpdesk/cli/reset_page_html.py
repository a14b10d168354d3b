"""The reset page's HTML: small, accessible, French by default.

Every page has its ``lang``, a title that starts with "Error" when it says one, labels tied
to their inputs, errors in a ``role="alert"`` region the screen reader announces (the
invalid field points at its message with ``aria-describedby`` and takes the focus), and a
link to the other language. No script; the one stylesheet carries the response's CSP nonce.
Everything not ours is escaped.
"""

from __future__ import annotations

from html import escape
from urllib.parse import urlencode

from helpdesk.base.i18n import tr

OTHER = {"fr": ("en", "English"), "en": ("fr", "Français")}

STYLE = """
body{font-family:system-ui,sans-serif;font-size:1.1rem;line-height:1.5;margin:0;background:#f6f6f6;color:#111}
main{max-width:34rem;margin:2rem auto;padding:1.5rem;background:#fff;border:1px solid #999;border-radius:.3rem}
h1{font-size:1.5rem;margin-top:0}
label{display:block;font-weight:600;margin-top:1rem}
.hint{display:block;font-weight:400;color:#333}
input[type=text],input[type=password]{display:block;width:100%;box-sizing:border-box;font-size:1.1rem;padding:.5rem;margin-top:.3rem;border:2px solid #555;border-radius:.2rem}
input[aria-invalid=true]{border-color:#b00020}
button{margin-top:1.5rem;font-size:1.1rem;padding:.6rem 1.2rem;background:#0b5394;color:#fff;border:0;border-radius:.2rem;cursor:pointer}
:focus-visible{outline:3px solid #e69500;outline-offset:2px}
.alert{border-left:.4rem solid #b00020;background:#fdecee;padding:.5rem 1rem;margin:1rem 0}
.ok{border-left:.4rem solid #1b6e20;background:#e8f5e9;padding:.5rem 1rem;margin:1rem 0}
.lang{text-align:right;margin:0}
"""


def page(
    lang: str,
    title: str,
    body: str,
    *,
    nonce: str,
    error: str = "",
    other_query: dict | None = None,
) -> str:
    """A whole page. ``error`` goes in the alert region; ``other_query`` is the query of the
    link to the other language (the same page there)."""
    other, name = OTHER[lang]
    query = urlencode({**(other_query or {}), "lang": other})
    alert = (
        f'<div id="error" class="alert" role="alert" aria-live="assertive"><p>{escape(error)}</p></div>'
        if error
        else '<div id="error" role="alert" aria-live="assertive"></div>'
    )
    full_title = tr("Error: {title}", lang).format(title=title) if error else title
    return (
        f'<!doctype html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="same-origin">\n'
        f"<title>{escape(full_title)}</title>\n"
        f'<style nonce="{nonce}">{STYLE}</style>\n</head>\n<body>\n<main>\n'
        f'<p class="lang"><a href="?{escape(query)}" hreflang="{other}" lang="{other}">{name}</a></p>\n'
        f"<h1>{escape(title)}</h1>\n{alert}\n{body}\n</main>\n</body>\n</html>\n"
    )


def hidden(fields: dict[str, str]) -> str:
    return "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in fields.items()
    )


def field(
    name: str,
    label: str,
    *,
    kind: str = "text",
    hint: str = "",
    value: str = "",
    invalid: bool = False,
    autocomplete: str = "off",
    minlength: int | None = None,
) -> str:
    """A labelled input; an invalid one says so and points at the alert."""
    described = []
    hint_html = ""
    if hint:
        hint_html = f'<span class="hint" id="{name}-hint">{escape(hint)}</span>'
        described.append(f"{name}-hint")
    if invalid:
        described.append("error")
    attrs = [
        f'id="{name}"',
        f'name="{name}"',
        f'type="{kind}"',
        f'autocomplete="{autocomplete}"',
        "required",
        'autocapitalize="none"',
        'spellcheck="false"',
    ]
    if value:
        attrs.append(f'value="{escape(value)}"')
    if minlength:
        attrs.append(f'minlength="{minlength}"')
    if described:
        attrs.append(f'aria-describedby="{" ".join(described)}"')
    if invalid:
        attrs += ['aria-invalid="true"', "autofocus"]
    return f'<label for="{name}">{escape(label)}{hint_html}</label>\n<input {" ".join(attrs)}>\n'


def password_form(
    lang: str,
    *,
    login: str,
    provider: str,
    min_length: int,
    keep: dict[str, str],
    invalid: str = "",
) -> str:
    """The form asking for the new password twice. ``keep``: the hidden fields that carry
    the secret (and the CSRF token) to the POST."""
    intro = tr("Choose the new password of the account {login} ({provider}).", lang).format(
        login=login, provider=provider
    )
    return (
        f"<p>{escape(intro)}</p>\n"
        '<form method="post" action="?">\n'
        + hidden({**keep, "step": "set", "lang": lang})
        # Lets a password manager file the new password under the right account.
        + f'<input type="text" name="username" autocomplete="username" value="{escape(login)}" hidden>\n'
        + field(
            "password",
            tr("New password", lang),
            kind="password",
            hint=tr("At least {n} characters.", lang).format(n=min_length),
            invalid=invalid == "password",
            autocomplete="new-password",
            minlength=min_length,
        )
        + field(
            "confirm",
            tr("The same password again", lang),
            kind="password",
            invalid=invalid == "confirm",
            autocomplete="new-password",
            minlength=min_length,
        )
        + button(tr("Change the password", lang))
    )


def code_form(lang: str, *, keep: dict[str, str], login: str = "", invalid: str = "") -> str:
    """The form for a one-time code read out on the phone: the login and the code."""
    intro = tr(
        "If a volunteer read you a one-time code on the phone, enter it here with your login.",
        lang,
    )
    return (
        f"<p>{escape(intro)}</p>\n"
        '<form method="post" action="?">\n'
        + hidden({**keep, "step": "code", "lang": lang})
        + field(
            "login",
            tr("Login", lang),
            value=login,
            invalid=invalid == "login",
            autocomplete="username",
        )
        + field(
            "code",
            tr("One-time code", lang),
            hint=tr("12 letters and digits, as read out (e.g. ABCD-EFGH-JKMN).", lang),
            invalid=invalid == "code",
        )
        + button(tr("Continue", lang))
    )


def button(text: str) -> str:
    return f'<button type="submit">{escape(text)}</button>\n</form>'


def message(text: str, *, ok: bool = False) -> str:
    cls = ' class="ok" role="status"' if ok else ""
    return f"<p{cls}>{escape(text)}</p>"
