"""Identifier rules beyond the labelled-field ones: numbers and addresses stated in a sentence.

Customers and clinicians write "my card 4111 1111 1111 1111 expires soon", "wire it to this IBAN
GB…", "call me on 0412 555 019", "I now live at 12 Rua das Flores, Apt. 3". The rules here catch those:

- card numbers: 13-19 digits that pass the Luhn check and start like a card (2-6), or any 12-19 digit
  run right after a card cue ("card", "credit card number", "Visa");
- IBANs, confirmed by their mod-97 checksum;
- passport, driver's licence, national and tax numbers (ITIN, PAN, TIN, SIN, …) and bank accounts after
  their cue word ("my passport number is …", "account no. …", "sort code …");
- phone numbers tied to a person ("call me on …", "Mobile: …", "… office") in the spellings the
  stricter built-in phone rule leaves out (dots, short local numbers);
- street addresses in the spellings of other countries (Via, Rúa, …katu, …vej), unit and box lines
  (Apt. 902, Suite 828, PSC 3294, Box 9168, APO AE 09012) and "I live at / my address is" with a number.

Each is a :class:`RuleSpec` that :mod:`biorouter.governance.sensitivity` compiles into a rule. Checksums are what
keep long numbers in logs, VCFs and tables (positions, read counts, timestamps) from firing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final, NamedTuple

import regex

__all__ = ["IDENTIFIER_RULES", "Match", "RuleSpec", "iban_valid", "luhn_valid"]

# A match from either engine: rules run on ``regex`` unless their spec asks for the stdlib engine.
Match = regex.Match[str] | re.Match[str]


class RuleSpec(NamedTuple):
    """A rule before compilation: name, what it catches, regex, optional per-match check, cue words.

    ``stdlib``: compile with Python's ``re`` instead of ``regex``. For patterns of plain ASCII classes,
    digits and lookarounds (no ``\\p{…}``, no variable-width lookbehind) it scans several times faster
    (measured per rule on the bench inputs, see docs/governance.md); it holds the GIL while matching,
    which the few milliseconds of a built-in rule can afford.
    """

    name: str
    description: str
    pattern: str
    confirm: Callable[[Match, str], bool] | None = None
    needs: tuple[str, ...] = ()
    stdlib: bool = False


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod-10) check every payment card number carries."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = int(char)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# IBAN length by country (ISO 13616); a candidate of another length is not an IBAN.
_IBAN_LENGTHS: Final = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "ES": 24, "FI": 18,
    "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SE": 24,
    "SI": 19, "SK": 24, "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}  # fmt: skip


def iban_valid(candidate: str) -> bool:
    """Country length and the ISO 7064 mod-97 check (a random string passes about 1 time in 97)."""
    iban = regex.sub(r"[\s-]", "", candidate).upper()
    expected = _IBAN_LENGTHS.get(iban[:2])
    if expected is not None and len(iban) != expected:
        return False
    if not 15 <= len(iban) <= 34:
        return False
    rearranged = iban[4:] + iban[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return bool(int(number) % 97 == 1)


def _card_checked(match: Match, text: str) -> bool:
    digits = regex.sub(r"\D", "", match.group("card"))
    return 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn_valid(digits)


def _card_cued(match: Match, text: str) -> bool:
    return 12 <= len(regex.sub(r"\D", "", match.group("card"))) <= 19


def _iban(match: Match, text: str) -> bool:
    return iban_valid(match.group("iban"))


def _digit_count(low: int, high: int) -> Callable[[Match, str], bool]:
    def check(match: Match, text: str) -> bool:
        digits: int = sum(c.isdigit() for c in match.group("num"))
        return low <= digits <= high

    return check


def _signature_phone(match: Match, text: str) -> bool:
    """The number opens its line (after quoting) and holds 7-15 digits."""
    line_start = text.rfind("\n", 0, match.start()) + 1
    return (
        not text[line_start : match.start()].strip(" \t>") and 7 <= sum(c.isdigit() for c in match.group("num")) <= 15
    )


# A run of digits in groups, as people type card and account numbers: 4111 1111 1111 1111, 4111-1111-...
_DIGIT_RUN = r"(?<![\w.:/-])\d(?:[ -]?\d){11,18}(?![\w-]*\d)"
# The shapes cards are printed in (unbroken, 4-4-4-4…, Amex 4-6-5): a row of small counts is none of them.
_CARD_SHAPE = (
    r"(?<![\w.:/-])(?:\d{13,19}|\d{4}(?P<sep>[ -])\d{4}(?P=sep)\d{4}(?:(?P=sep)\d{1,7})?"
    r"|\d{4}(?P<sep2>[ -])\d{6}(?P=sep2)\d{4,5})(?![\w-]*\d)"
)
_CARD_CUE = (
    r"(?i:\b(?:(?:credit|debit|bank|payment|visa|master\s?card|amex|american\s+express|discover|maestro|jcb|"
    r"diners(?:\s+club)?)\s+)?card\b(?:\s+(?:number|no\.?|num|#|ending(?:\s+in)?))?"
    r"|\b(?:cc|card)\s*(?:no\.?|num(?:ber)?|#)|\bvisa\b|\bmastercard\b|\bamex\b)"
)
# An ID-like token after a cue: letters and digits, at least one digit, 5-20 characters.
_ID_VALUE = r"(?=[A-Z0-9 -]*\d)[A-Z0-9](?:[A-Z0-9]|[ -](?=[A-Z0-9])){4,22}\b"
_ID_BRIDGE = (
    r"(?:\s*(?i:number|no\.?|num|#|id))?(?:[^\d\n]{0,30}?\s(?i:is|was)\b|\s*(?i:is|was|:|=|-|of))?\s*(?::\s*)?['\"]?"
)

# One shape per rule: a top-level alternation stops the regex engine's fast literal scan (about 30x slower).
_UNIT_LINES = (
    r"\b(?:Apt\.?|Apartment|Suite|Ste\.?|Unit|Flat|Room|Floor)\s+#?\d{1,5}[A-Z]?\b",
    r"\b(?:PSC|CMR|Unit)\s+\d{3,5},?\s+Box\s+\d{2,5}\b",
    r"\b(?:P\.?\s?O\.?\s+Box|Box)\s+\d{2,6}\b(?=[^\n]{0,40}\b\d{4,5}\b)",
    r"\b(?:APO|DPO|FPO)\s+(?:AA|AE|AP)\s+\d{5}\b",
)
_UNIT_WORDS = (
    "apt",
    "apartment",
    "suite",
    "ste",
    "unit",
    "flat",
    "room",
    "floor",
    "psc",
    "cmr",
    "box",
    "apo",
    "dpo",
    "fpo",
)
_STREET_PREFIX = (
    r"(?:Via|Viale|Vicolo|Strada(?:\s+Provinciale|\s+Statale)?|Piazza|Corso|Calle|Avenida|Av\.|Rua|Rúa|Travessa|"
    r"Rue|Boulevard|Chemin|Allée|Impasse|Ulica|ul\.|Carrer|Plaza|Paseo|Camino|Largo)"
)
_STREET_SUFFIX = (
    r"(?:stra(?:ß|ss)e|str\.|weg|gasse|platz|allee|ring|laan|straat|gracht|gatan|gata|gade|gaten|vegen|veien|vej|"
    r"vägen|väg|katu|tie|polku|kuja|utca|tér|út)"
)
_STREET_TYPE = (
    r"(?:Street|St\.?|Road|Rd\.?|Avenue|Ave\.?|Lane|Ln\.?|Drive|Dr\.?|Boulevard|Blvd\.?|Court|Ct\.?|Close|Crescent|"
    r"Place|Pl\.?|Terrace|Way|Gardens|Grove|Parkway|Pkwy|Highway|Hwy|Mews|Circle|Cir\.?|Square|Sq\.?|Trail|"
    r"Coves?|Crossing|Loop|Pike|Row|Walk|Hill|Heights|Park|Ridge|View|Vista|Point|Junction|Estates?|Manor|"
    r"Meadows?|Springs?|Station|Summit|Valley|Village|Villages|Ville|Wells?|Alley|Bypass|Causeway|Centre|Center|"
    r"Expressway|Freeway|Turnpike|Plaza|Green|Common|Field|Fields|Hollow|Island|Isle|Landing|Lodge|Mill|Mills|"
    r"Orchard|Pass|Path|Pines|Port|Prairie|Ranch|Rapids|Shoals?|Shores?|Stream|Track|Trace|Union|Ways|Wharf)"
)
_WORD = r"[\p{Lu}][\p{L}'’.-]+"
# The lower-case particles of Romance and Dutch/German street names (Rua das Flores, Via della Scala).
_PARTICLE = r"(?:do|da|das|dos|de|del|della|delle|dei|di|des|du|la|le|les|van|von|der|den|y|e)"
# Case-folded spellings every prefix/suffix street form contains (a text with none skips the regex).
_STREET_WORDS: Final = (
    "via", "viale", "vicolo", "strada", "piazza", "corso", "calle", "avenida", "av.", "rua", "rúa", "travessa", "rue",
    "boulevard", "chemin", "allée", "impasse", "ulica", "ul.", "carrer", "plaza", "paseo", "camino", "largo",
    "straße", "strasse", "str.", "weg", "gasse", "platz", "allee", "ring", "laan", "straat", "gracht", "gata",
    "gade", "gaten", "vegen", "veien", "vej", "väg", "katu", "tie", "polku", "kuja", "utca", "tér", "út",
)  # fmt: skip

# "I live at", "my address is", "send it to", "corner of": one rule per cue family, each skipped on a text
# without its words (one alternation of all of them cost several ms per 10,000 characters).
_ADDRESS_CUES: Final = (
    (
        r"(?:I|we|he|she|they|who)\s+(?:now\s+|currently\s+|used\s+to\s+|once\s+)?(?:live|lives|lived|reside|"
        r"resides|resided|moved|stay|stays)\s+(?:at|in|on|to)",
        ("live", "reside", "moved", "stay"),
    ),
    (
        r"(?:(?:my|his|her|their|our|home|postal|mailing|billing|shipping|delivery|new)\s+address"
        r"(?:\s+(?:is|was|to|:))?|address\s+(?:linked|associated)\s+to\s+[^\n]{0,30}\s+to)",
        ("address",),
    ),
    (
        r"(?:send|sent|ship|shipped|deliver|delivered|mail|mailed|post|posted)\s+(?:it\s+|this\s+|them\s+)?to",
        ("send", "sent", "ship", "deliver", "mail", "post"),
    ),
    (r"corner\s+of", ("corner",)),
)
_ADDRESS_AFTER_CUE = (
    r"(?:\d{1,6}[A-Za-z]?,?\s+\p{Lu}[\p{L}'’.-]+|(?:\p{Lu}[\p{L}'’.-]+\s+){1,4}\d{1,6}\b"
    r"|(?:Unit|Box|PO\s+Box|P\.O\.\s+Box)\s+\d)"
)

_PERSON_CUE_BEFORE = (
    r"(?i:\b(?:call|text|phone|ring|reach|contact|whatsapp|sms)\s+(?:me|us|him|her|them)\b[^\d\n]{0,25}"
    r"|\b(?:my|his|her|their|our|your)\s+(?:(?:mobile|cell|home|work|office|personal|daughter's|son's|wife's|"
    r"husband's)\s+)?(?:phone|number|mobile|cell|telephone|tel\.?|contact)(?:\s+(?:number|no\.?))?[^\d\n]{0,20}"
    r"|\b(?:mobile|cell|home|work|office|desk|direct|fax|tel|telephone|phone|landline)\s*(?:phone|number|no\.?|#)?"
    r"\s*[:=]\s*)"
)


IDENTIFIER_RULES: Final[tuple[RuleSpec, ...]] = (
    RuleSpec(
        "card_number",
        "a payment card number: 13-19 digits passing the Luhn check, or any 12-19 digit run after a card cue",
        rf"(?P<card>{_CARD_SHAPE})",
        _card_checked,
    ),
    RuleSpec(
        "card_number",
        "a number right after a card cue (my card 4825 1402 2603 2, credit card number is …)",
        rf"{_CARD_CUE}[^\d\n]{{0,24}}?(?P<card>{_DIGIT_RUN})",
        _card_cued,
        needs=("card", "visa", "amex", "cc no", "cc num", "cc#", "cc #"),
    ),
    RuleSpec(
        "iban",
        "an IBAN (checked with its mod-97 digits), with or without spaces",
        r"(?<![A-Za-z0-9])(?P<iban>[A-Z]{2}\d{2}(?:[ -]?[A-Z0-9]){11,30})(?![A-Za-z0-9])",
        _iban,
    ),
    RuleSpec(
        "identity_document",
        "a passport, driver's licence, national or residence ID number after its cue word",
        r"(?i:\b(?:passport|driv(?:er|ing)['’]?s?[ -]+licen[cs]e|DL(?=\s*(?:#|no\b|number|:))|"
        r"national[ -]+(?:id(?:entity)?|insurance)|"
        r"identity[ -]+(?:card|number|document)|id[ -]+card|residence[ -]+permit|green[ -]+card|aadhaar|"
        r"voter[ -]+id|personnummer|personal[ -]+(?:id|identity|identification)[ -]+number|"
        r"(?:social|personal)[ -]+insurance|health[ -]+(?:card|insurance)|medicare|medicaid|"
        r"insurance[ -]+(?:id|number|no)|policy(?:[ -]+holder)?[ -]+(?:id|number|no)|"
        r"member(?:ship)?[ -]+(?:id|number|no)|"
        r"subscriber[ -]+(?:id|number))"
        r"(?:\s+(?:card|number|no\.?|num|id|#))?)"
        rf"{_ID_BRIDGE}(?-i:{_ID_VALUE})",
        needs=(
            "passport",
            "licen",
            "dl",
            "national",
            "identity",
            "id",
            "permit",
            "green",
            "aadhaar",
            "personnummer",
            "personal",
            "insurance",
            "health",
            "medicare",
            "medicaid",
            "policy",
            "member",
            "subscriber",
        ),
    ),
    RuleSpec(
        "tax_id",
        "a tax or taxpayer number after its cue words (tax ID, taxpayer number, Steuer-ID)",
        r"(?i:\btax(?:payer)?[ -]+(?:id(?:entification)?|number|no|file)|\bsteuer[ -]?(?:id|nummer))"
        r"(?:\s+(?i:card|number|no\.?|num|id|#))?"
        rf"{_ID_BRIDGE}(?-i:{_ID_VALUE})",
        needs=("tax", "steuer"),
    ),
    RuleSpec(
        "tax_id",
        "a tax number after its acronym, in capitals (TIN, ITIN, EIN, PAN, NIF, SIN, VAT, …)",
        r"\b(?:TIN|ITIN|EIN|PAN|NIF|NIE|CPF|CURP|RFC|UTR|SIN|VAT)\b(?:\s+(?i:card|number|no\.?|num|id|#))?"
        rf"{_ID_BRIDGE}(?-i:{_ID_VALUE})",
    ),
    RuleSpec(
        "tax_id",
        "a US ITIN by its shape (9XX-7X-XXXX)",
        r"(?<![\d-])9\d{2}-(?:5\d|6[0-5]|7\d|8[0-8]|9[0-2]|9[4-9])-\d{4}(?![\d-])",
    ),
    RuleSpec("tax_id", "an Indian PAN of a person by its shape (ABCPK1234L)", r"\b[A-Z]{3}P[A-Z]\d{4}[A-Z]\b"),
    RuleSpec(
        "bank_account",
        "a bank account, routing, sort-code or SWIFT/BIC with its cue",
        r"(?i:\b(?:(?:bank|checking|savings|current|deposit)\s+)?(?:account|acct|a/c)(?:\s+(?:number|no\.?|num|#))?"
        r"|\brouting(?:\s+(?:number|no\.?))?|\bsort[ -]code|\bABA(?:\s+number)?|\bBSB|\b(?:SWIFT|BIC)(?:\s+code)?)"
        r"(?:\s*(?i:is|:|=|-))?\s*(?P<num>(?=[A-Z0-9 -]*\d{2})[A-Z0-9](?:[A-Z0-9]|[ -](?=[A-Z0-9])){5,33})\b",
        _digit_count(6, 34),
        needs=("account", "acct", "a/c", "routing", "sort", "aba", "bsb", "swift", "bic"),
    ),
    RuleSpec(
        "phone_number",
        "a phone number tied to a person (call me on 9472 7916, Mobile: 03.93.92.16.85, 416 60 039 office)",
        rf"(?:{_PERSON_CUE_BEFORE})(?P<num>\+?\(?\d[\d\s().-]{{5,20}}\d)",
        _digit_count(7, 15),
        needs=(
            "call",
            "text",
            "phone",
            "ring",
            "reach",
            "contact",
            "whatsapp",
            "sms",
            "mobile",
            "cell",
            "home",
            "work",
            "office",
            "desk",
            "direct",
            "fax",
            "tel",
            "landline",
            "number",
        ),
    ),
    RuleSpec(
        "phone_number",
        "a signature line holding a number and its kind (416 60 039 office)",
        r"(?P<num>\+?\(?\d[\d \t().-]{5,20}\d)"
        r"[ \t]+(?i:office|mobile|cell|fax|home|work|desk|landline)[ \t]*(?=\n|$)",
        _signature_phone,
        needs=("office", "mobile", "cell", "fax", "home", "work", "desk", "landline"),
    ),
    *(
        RuleSpec(
            "postal_address",
            "a unit, box or military address line (Apt. 902, Suite 828, PSC 3294, Box 9168, APO AE 09012)",
            pattern,
            needs=_UNIT_WORDS,
        )
        for pattern in _UNIT_LINES
    ),
    *(
        RuleSpec(
            "postal_address",
            "a house number and street in other languages' spellings (Via Roma 12, 53 Rúa do Mar, 98 Kiannonkatu)",
            pattern,
            needs=_STREET_WORDS,
        )
        for pattern in (
            rf"\b\d{{1,5}}[A-Za-z]?,?\s+{_STREET_PREFIX}\s+(?:(?:{_WORD}|{_PARTICLE})\s+){{0,3}}{_WORD}",
            rf"\b{_STREET_PREFIX}\s+(?:(?:{_WORD}|{_PARTICLE})\s+){{0,3}}{_WORD},?\s+\d{{1,5}}[A-Za-z]?\b",
            rf"\b\d{{1,5}}\s+(?:{_WORD}\s+)?\p{{Lu}}\p{{Ll}}+{_STREET_SUFFIX}\b",
            rf"\b\p{{Lu}}\p{{Ll}}+{_STREET_SUFFIX}\s+\d{{1,5}}[a-z]?\b",
        )
    ),
    RuleSpec(
        "postal_address",
        "a house number, one to three capitalised words and a street type (90 Whitchurch Road, 12 Pine Hollow)",
        rf"\b\d{{1,5}}[A-Za-z]?\s+(?:{_WORD}\s+){{1,3}}{_STREET_TYPE}(?=[\s,.]|$)(?![\s,]+(?i:of|and)\b)",
    ),
    *(
        RuleSpec(
            "postal_address",
            "someone's address stated in a sentence (I now live at 12 …, change my address to 4 …, sent to 19 …)",
            rf"(?i:\b{cue})\s*:?\s*{_ADDRESS_AFTER_CUE}",
            needs=needs,
        )
        for cue, needs in _ADDRESS_CUES
    ),
)
