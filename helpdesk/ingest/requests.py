"""Understanding what a user asks, in French or English: which queue, which day, which account.

These are heuristics for triage, not decisions: the core shows what was found and a volunteer
confirms.  Quoted replies (``> ...`` lines, everything after "Le ... a écrit :") are ignored.
"""

from __future__ import annotations

from typing import Any

import re
import unicodedata
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

from dateutil.parser import parser, parserinfo

from helpdesk.base import queues
from helpdesk.base.quoting import new_text, split_quoted  # noqa: F401 - requests.split_quoted

QUEUES = queues.PROCEDURES  # what a request may be classified as


class FrenchParserInfo(parserinfo):
    """dateutil parser vocabulary with French (accented or not) and English names."""

    JUMP = [
        *parserinfo.JUMP,
        "the",
        "le",
        "la",
        "de",
        "du",
        "er",
        "ère",
        "re",
        "e",
        "ème",
        "à",
        "au",
    ]
    # dateutil reads every name of a tuple; its stubs say pairs: hence Any
    WEEKDAYS: Any = [
        ("Mon", "Monday", "lun", "lundi"),
        ("Tue", "Tuesday", "mardi"),  # not "mar": that is March
        ("Wed", "Wednesday", "mer", "mercredi"),
        ("Thu", "Thursday", "jeu", "jeudi"),
        ("Fri", "Friday", "ven", "vendredi"),
        ("Sat", "Saturday", "sam", "samedi"),
        ("Sun", "Sunday", "dim", "dimanche"),
    ]
    MONTHS: Any = [
        ("Jan", "January", "janv", "janvier"),
        ("Feb", "February", "fév", "févr", "fevr", "février", "fevrier"),
        ("Mar", "March", "mars"),
        ("Apr", "April", "avr", "avril"),
        ("May", "mai"),
        ("Jun", "June", "juin"),
        ("Jul", "July", "juil", "juillet"),
        ("Aug", "August", "aoû", "août", "aout"),
        ("Sep", "Sept", "September", "septembre"),
        ("Oct", "October", "octobre"),
        ("Nov", "November", "novembre"),
        ("Dec", "December", "déc", "décembre", "decembre"),
    ]


_INFO = FrenchParserInfo(dayfirst=True)
_PARSER = parser(_INFO)


def _alternation(names: Sequence[tuple[str, ...]]) -> str:
    words = sorted({n for group in names for n in group}, key=len, reverse=True)
    return "|".join(re.escape(w) for w in words)


_MONTH = _alternation(FrenchParserInfo.MONTHS)
_WEEKDAY = _alternation(FrenchParserInfo.WEEKDAYS)
_ORDINAL = r"(?:er|ère|re|e|ème|eme|st|nd|rd|th)"
_DATES = re.compile(
    rf"(?<![\w./-])(?P<iy>\d{{4}})-(?P<im>\d{{1,2}})-(?P<id>\d{{1,2}})(?![\w./-]*\d)"
    rf"|(?<![\w./-])(?P<nd>[0-3]?\d)(?P<sep>[./-])(?P<nm>[01]?\d)(?:(?P=sep)(?P<ny>\d{{4}}|\d{{2}}))?(?![\w./-]*\d)"
    rf"|(?<!\w)(?P<td>[0-3]?\d){_ORDINAL}?\s+(?:de\s+|of\s+)?(?P<tm>{_MONTH})\.?(?:,?\s+(?P<ty>\d{{4}}))?(?!\w)"
    rf"|(?<!\w)(?P<em>{_MONTH})\.?\s+(?P<ed>[0-3]?\d)(?:st|nd|rd|th)?(?:,?\s+(?P<ey>\d{{4}}))?(?![\w:])",
    re.IGNORECASE,
)
_RELATIVE = re.compile(
    rf"\b(?P<word>aujourd'hui|today|apr[eè]s-demain|demain|tomorrow)\b"
    rf"|\b(?:(?P<wd>{_WEEKDAY})\s+(?:prochain|qui vient)|next\s+(?P<nwd>{_WEEKDAY}))\b",
    re.IGNORECASE,
)
_URL_OR_MAIL = re.compile(r"\b(?:https?|ftp)://\S+|\S+@\S+")


def parse_day(text: str, today: date) -> date | None:
    """The day a request asks for, or None.

    Explicit dates come first ("le 15 janvier 2027", "1er mars", "15/01/2027", "15.01.2027",
    "January 15, 2027", "2027-01-15"; numbers are day first); without a year, the next such
    day on or after ``today``.  Otherwise "aujourd'hui", "demain", "lundi prochain"...
    """
    body = _URL_OR_MAIL.sub(" ", new_text(text).replace("’", "'"))
    for match in _DATES.finditer(body):
        found = _date_from_match(match, today)
        if found is not None:
            return found
    relative = _RELATIVE.search(body)
    return _relative_day(relative, today) if relative else None


def _relative_day(relative: re.Match[str], today: date) -> date | None:
    word = (relative.group("word") or "").lower()
    if word in ("aujourd'hui", "today"):
        days = 0
    elif word:
        days = 2 if word.startswith("apr") else 1
    else:
        weekday = _INFO.weekday(relative.group("wd") or relative.group("nwd"))
        if weekday is None:
            return None
        days = (weekday - today.weekday() - 1) % 7 + 1  # "lundi prochain" is never today
    try:
        return today + timedelta(days=days)
    except OverflowError:
        return None


def _date_from_match(match: re.Match[str], today: date) -> date | None:
    g = match.groupdict()
    if g["iy"]:
        return _make_date(int(g["iy"]), int(g["im"]), int(g["id"]))
    if g["nd"]:
        if g["ny"] is None and g["sep"] != "/":
            return None  # "15.01" alone is more often a number than a date
        year = None if g["ny"] is None else int(g["ny"]) + (2000 if len(g["ny"]) == 2 else 0)
        return _resolve(year, int(g["nm"]), int(g["nd"]), today)
    # Spelled-out months: dateutil reads the match with the French vocabulary (a leap year as
    # default keeps "29 février" valid until the real year is chosen).
    try:
        parsed = _PARSER.parse(match.group(0), default=datetime(2000, 1, 1))
    except (ValueError, OverflowError, TypeError):
        return None
    year_given = g["ty"] if g["td"] else g["ey"]
    return _resolve(parsed.year if year_given else None, parsed.month, parsed.day, today)


def _make_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _resolve(year: int | None, month: int, day: int, today: date) -> date | None:
    if year is not None:
        return _make_date(year, month, day)
    for offset in range(9):  # 29 February may be years away
        candidate = _make_date(today.year + offset, month, day)
        if candidate is not None and candidate >= today:
            return candidate
    return None


# --- text preparation -----------------------------------------------------------------------


def _normalise(text: str) -> str:
    text = text.replace("’", "'").replace("‘", "'").replace("\u00a0", " ").lower()
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join(text.split())


_REPLY_PREFIX = re.compile(
    r"^\s*(?:(?:re|r|aw|tr|fw|fwd|wg|sv|ref)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE
)


# --- queues ---------------------------------------------------------------------------------

_VERB_ACCOUNT = r"(?:de |d'|du )?(?:mon |ma |notre |ce |cet |le |la |l'|mes )?(?:compte|acces|abonnement|espace|adresse)"
_RULES: dict[str, list[tuple[re.Pattern[str], int]]] = {
    queue: [(re.compile(pattern), weight) for pattern, weight in rules]
    for queue, rules in {
        "password-reset": [
            (r"mot de passe (?:oublie|perdu|expire|bloque|incorrect|ne (?:fonctionne|marche))", 3),
            (
                r"(?:reinitialis|reset|chang|modifi|recuper|nouveau|renouvel)\w* (?:de |du |mon |le |my |the |a )*(?:mot de passe|mdp|password)",
                3,
            ),
            (r"forgot(?:ten)? (?:my |the )?password|password reset|lost (?:my )?password", 3),
            (
                r"(?:ne |n')?(?:peux|arrive) (?:plus |pas )+(?:a )?me (?:connecter|logu?er)|impossible de me (?:connecter|loguer)",
                2,
            ),
            (
                r"can'?t log ?in|cannot log ?in|unable to (?:log ?in|sign in)|locked out|account (?:is )?locked|compte (?:est )?bloque",
                2,
            ),
            (r"\b(?:mot de passe|mdp|password)\b", 1),
        ],
        "closure": [
            (rf"(?:desactiv|supprim|resili|ferm|clotur|effac)\w* {_VERB_ACCOUNT}", 3),
            (
                rf"(?:suppression|desactivation|resiliation|fermeture|cloture|effacement) {_VERB_ACCOUNT}",
                3,
            ),
            (
                r"(?:close|delete|deactivate|cancel|terminate|remove) (?:my |our |the )?(?:account|subscription|membership)",
                3,
            ),
            (r"account (?:deletion|closure|deactivation|removal)", 3),
            (r"droit a l'oubli|right to (?:erasure|be forgotten)", 2),
            (r"\b(?:resiliation|desinscri\w*|unsubscribe|desabonn\w*)", 1),
        ],
        "abuse": [
            (r"\babus\w*|\babuse\w*", 2),
            (r"\bspam\w*", 1),
            (r"phishing|hame[cç]onnage|\bfraud\w*|arnaque|\bscam\w*|escroquerie", 2),
            (
                r"harcel\w*|harass\w*|menace\w*|threat\w*|insult\w*|diffamat\w*|usurpation d'identite|impersonat\w*",
                2,
            ),
            (
                r"\bplainte\b|\bcomplaint\b|signal\w* (?:un |une |des |d')?(?:abus|contenu|site|spam)|report(?:ing)? (?:abuse|spam)",
                2,
            ),
            (
                r"contenu (?:illicite|illegal|haineux)|illegal content|malware|logiciel malveillant|\bvirus\b|scann?\w* (?:de )?(?:mes |my )?ports?|\bddos\b|\battaque|\battack",
                2,
            ),
            (r"droit d'auteur|copyright|\bdmca\b|contrefacon", 2),
        ],
        "mail-reputation": [
            (
                r"liste noire|blacklist\w*|blocklist\w*|spamhaus|\brbl\b|dnsbl|listed (?:on|in|by)",
                3,
            ),
            (r"(?:deliverabilit|delivrabilit)\w*|reputation", 3),
            (
                r"(?:arrivent|arrive|tombent|tombe|classes?|marques?|finissent|vont|atterrissent|partent) (?:directement )?(?:dans les |en |dans le |comme |dans )?(?:spams?|indesirables?|courriers? indesirables?)",
                4,
            ),
            (
                r"(?:go(?:es)?|going|land(?:s|ing)?|ends? up|marked as|flagged as) (?:straight )?(?:to |in |into |as )?(?:the )?(?:spam|junk)",
                4,
            ),
            (r"\b(?:dmarc|dkim|spf)\b|feedback loop|\bfbl\b", 2),
            (
                r"(?:mails?|e-mails?|courriels?|messages?) (?:sont |are |get |gets )?(?:rejet|bloqu|refus|bounc|reject|block)\w*",
                2,
            ),
            (
                r"rejete par|rejected by|\bbounce\w*|ne partent plus|not (?:being )?delivered|non distribu\w*",
                2,
            ),
        ],
    }.items()
}


def classify(subject: str, body: str) -> str | None:
    """The queue a request belongs to ("password-reset", "closure", "abuse",
    "mail-reputation"), or None when nothing clear stands out.  The subject counts double."""
    return classify_explained(subject, body)[0]


def classify_explained(subject: str, body: str) -> tuple[str | None, list[str]]:
    """``classify`` and why: the words of the subject and the new text that the chosen
    queue's rules matched (folded as they were compared: lower case, no accents)."""
    subject_n = _normalise(_REPLY_PREFIX.sub("", subject or ""))
    body_n = _normalise(new_text(body or ""))
    scores = {}
    matched: dict[str, list[str]] = {}
    for queue in QUEUES:
        score = 0
        words: list[str] = []
        for pattern, weight in _RULES[queue]:
            in_subject, in_body = pattern.findall(subject_n), pattern.findall(body_n)
            score += weight * (2 * len(in_subject) + min(len(in_body), 3))
            for found in (*in_subject, *in_body):
                text = found if isinstance(found, str) else " ".join(found)
                if text and text not in words:
                    words.append(text)
        scores[queue] = score
        matched[queue] = words
    best = max(QUEUES, key=lambda q: scores[q])  # ties go to the first in QUEUES
    return (best, matched[best][:10]) if scores[best] >= 2 else (None, [])


# --- Wigii closure (CGU art. 9) ---------------------------------------------------------------

_WIGII_HOST = re.compile(
    r"(?<![\w@.-])((?:[a-z0-9-]+\.)*(?:wigii\.org|wigii-system\.net))(?![\w-])", re.IGNORECASE
)
_URL = re.compile(r"\bhttps?://[^\s<>\"'()\[\]]+", re.IGNORECASE)
_ACCOUNT_LABEL = (
    r"(?:compte(?:\s+(?:utilisateur|wigii))?|identifiant|login|nom\s+d['’]utilisateur|utilisateur|"
    r"user\s*name|username|user|account(?:\s+name)?)"
)
_QUOTED = r"[\"«“'‘]\s*([^\"»”'’\n]{1,80}?)\s*[\"»”'’]"
_ACCOUNT_PATTERNS = [
    # "compte : « Jean Dupont »", "the account 'jdupont'"
    re.compile(rf"\b{_ACCOUNT_LABEL}\s*(?:wigii\s*)?[:=]?\s*{_QUOTED}", re.IGNORECASE),
    # "compte : jdupont", "identifiant = jdupont", "username: jdupont"
    re.compile(rf"\b{_ACCOUNT_LABEL}\s*(?:wigii\s*)?[:=]\s*([^\s\"»”'’,;()<>]+)", re.IGNORECASE),
    # "mon compte jdupont sur ...", "my account jean.dupont@example.org", "mon compte est jd42"
    re.compile(
        rf"\b(?:mon|my|le|the|du)\s+{_ACCOUNT_LABEL}\s+(?:wigii\s+)?(?:est\s+|is\s+)?([^\W\d_][\w.@+-]{{1,63}})",
        re.IGNORECASE,
    ),
]


def closure_items(text: str, today: date | None = None) -> dict[str, Any]:
    """The three items of a Wigii deactivation request (CGU art. 9): "account" (str),
    "system" (``https://host``) and "day" (date).  Missing items are absent from the dict.
    ``today`` resolves days given without a year (default: the system date)."""
    body = new_text(text or "")
    items: dict[str, object] = {}
    system = _wigii_system(body)
    if system:
        items["system"] = system
    account = _account(body)
    if account:
        items["account"] = account
    day = parse_day(body, today or date.today())
    if day is not None:
        items["day"] = day
    return items


def _wigii_system(text: str) -> str | None:
    hosts: list[str] = []
    for url in _URL.findall(text):
        try:
            host = (urlsplit(url.rstrip(".,;:!?")).hostname or "").lower()
        except ValueError:
            continue
        if _WIGII_HOST.fullmatch(host):
            hosts.append(host)
    hosts += [m.group(1).lower() for m in _WIGII_HOST.finditer(_URL.sub(" ", text))]
    # The association's own site and mail domain are not Wigii systems when a real one is named.
    specific = [
        h
        for h in hosts
        if h not in ("wigii.org", "www.wigii.org", "wigii-system.net", "www.wigii-system.net")
    ]
    chosen = specific or hosts
    return f"https://{chosen[0]}" if chosen else None


# Words that follow "mon compte" without being an account name (compared without accents).
_NOT_ACCOUNTS = frozenset(
    """sur chez dans de du des le la les au aux a qui que car et ou svp merci pour avant apres
    des depuis demain aujourd wigii utilisateur est sera soit personnel principal actuel associe
    ainsi egalement aussi immediatement definitivement le des partir compter ce cette mon ma mes
    the on at in for please be is to from by with and as today tomorrow now my this that user
    account compte systeme system adresse address""".split()
)


def _account(text: str) -> str | None:
    for pattern in _ACCOUNT_PATTERNS:
        for match in pattern.finditer(text):
            value = match.group(1).strip().rstrip(".,;:!?")
            if value and _normalise(value) not in _NOT_ACCOUNTS and "://" not in value:
                return value
    return None


# --- replies --------------------------------------------------------------------------------

_NEGATIVE = re.compile(
    r"\b(?:ne|n') ?(?:le |la |les |l'|vous )?(?:confirme|valide|approuve|accepte|souhaite|veux)\w* (?:pas|plus)"
    r"|\bpas (?:d'accord|ok)\b|\bannul\w*|\bcancel\w*|\brevoqu\w*|\brevoke"
    r"|\b(?:do not|don't|dont|not|never) (?:confirm|agree|approve|accept|want|close|delete|deactivate)"
    r"|\bje refuse|\brefus\w*|\bchange d'avis|\bchanged my mind|\bne (?:desactivez|supprimez|fermez) pas"
    r"|^\s*(?:non|no)\b"
)
_POSITIVE = re.compile(
    r"\bje (?:vous )?(?:le |la |l')?confirme\b|\bconfirm(?:e|ee|es|ees|ons|ez|ed)?\b"
    r"|\bbien recue?\b|\blu et approuve\b|\bok pour\b|\bd'accord\b|\bje valide\b|\bc'est bon\b"
    r"|\bi (?:hereby )?(?:confirm|agree|acknowledge)\b|\bagreed\b|\backnowledged?\b|\bapproved?\b|\bgo ahead\b"
    r"|\bquittance\w*|^\s*(?:oui|yes|ok|okay|parfait|perfect)\b"
)


def is_acknowledgement(subject: str, body: str) -> bool:
    """Does this reply acknowledge ("quittancer") a confirmation mail?  A refusal or a
    cancellation anywhere in the new text wins over any "je confirme"."""
    texts = [_normalise(new_text(body or "")), _normalise(_REPLY_PREFIX.sub("", subject or ""))]
    if any(_NEGATIVE.search(t) for t in texts):
        return False
    return any(_POSITIVE.search(t) for t in texts)


_SUSPICIOUS = re.compile(
    r"quelqu'un (?:d'autre )?(?:s'est|se serait|s'est peut-etre|a pu|aurait|a) (?:\w+ )?(?:connecte|acced|utilise|pirate|pris|change)"
    r"|acces (?:non autorise|frauduleux|suspect|inhabituel|illegitime|inconnu)"
    r"|connexions? (?:suspecte|inhabituelle|inconnue|frauduleuse|non autorisee|etrangere)"
    r"|activite (?:suspecte|inhabituelle|anormale)"
    r"|\bpirat\w*|\bhacke\w*|\bhacked\b|\busurp\w*|vol (?:de|du) (?:mon |mes )?(?:compte|mot de passe|identifiants?)"
    r"|(?:compte|mot de passe|acces|boite|messagerie|account|password|mailbox) (?:a ete |est |semble |serait |has been |was |is |seems |may be |might be )?(?:compromis|compromised)"
    r"|\bcompromised\b|unauthori[sz]ed (?:access|login|log-in|sign-in|use)"
    r"|someone (?:else )?(?:has )?(?:logged|signed|accessed|is using|used|got into|hacked)"
    r"|suspicious (?:login|log-in|activity|sign-in|access|connection)"
    r"|je n'ai (?:jamais|pas) envoye|i (?:did not|didn't|never) sen[dt]|not sent by me"
)


def reports_suspicious_access(text: str) -> bool:
    """Does the sender report that someone else may be using the account?"""
    return bool(_SUSPICIOUS.search(_normalise(new_text(text or ""))))
