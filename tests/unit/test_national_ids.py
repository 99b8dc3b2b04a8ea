"""National, tax, health-insurance and personal ID numbers of many countries, stated in a sentence.

Every number below was generated for this test (random body, check digit computed by the published
algorithm); none belongs to anyone. The validators are also checked against numbers whose validity
other implementations agree on, so a test cannot pass merely because generator and checker share a bug.
Each scheme: the number after a cue word (English or the country's own language) fires ``national_id``;
the same number with its check digit changed and no cue does not.
"""

from __future__ import annotations

import pytest

from biorouter.governance.national_ids import SCHEMES, valid
from biorouter.governance.sensitivity import SensitivityDetector

GENERATED = {
    "cn_resident_id": "33014319800401445X",
    "br_cpf": "677.740.003-64",
    "in_aadhaar": "7086 5026 3526",
    "es_dni_nie": "75146497T",
    "nl_bsn": "203261446",
    "pl_pesel": "84040120243",
    "fr_nir": "2 90 10 73 485 259 16",
    "it_codice_fiscale": "CBYTVB40M13A750O",
    "de_steuer_id": "82937822452",
    "ca_sin": "306 297 706",
    "au_tfn": "164 640 382",
    "au_medicare": "3727 69837 7",
    "se_personnummer": "591120-0433",
    "dk_cpr": "210877-2563",
    "no_fodselsnummer": "04067870919",
    "fi_hetu": "280860-949L",
    "ch_ahv": "756.8537.9483.85",
    "ie_pps": "5345750O",
    "hk_hkid": "K877908(2)",
    "sg_nric": "S2706280F",
    "jp_my_number": "1765 4369 8785",
    "kr_rrn": "570211-1482780",
    "mx_curp": "PIQH660119HJCCJJ01",
    "cl_rut": "11.477.752-8",
    "ar_cuit": "20-20208945-4",
    "be_national_number": "91.07.19-822.15",
    "tr_tc_kimlik": "39360694000",
    "us_ssn": "381-46-8695",
    "us_ein": "94-0446130",
    "uk_nino": "JR 99 86 26 C",
    "uk_nhs": "825 737 1653",
}

# A sentence per scheme with its cue word, often in the country's language; {} is the number.
CUED = {
    "cn_resident_id": "患者的居民身份证号码是{}，请核对。",
    "br_cpf": "Meu CPF é {} e preciso atualizar o cadastro.",
    "in_aadhaar": "Please link my Aadhaar {} to the hospital account.",
    "es_dni_nie": "El paciente trae su DNI {} para la cita de mañana.",
    "nl_bsn": "Het burgerservicenummer van mevrouw is {} volgens de verwijzing.",
    "pl_pesel": "Numer PESEL pacjentki: {}, proszę wpisać do karty.",
    "fr_nir": "Son numéro de sécurité sociale est le {} d'après la carte.",
    "it_codice_fiscale": "Il codice fiscale del paziente è {} come da tessera.",
    "de_steuer_id": "Meine Steueridentifikationsnummer lautet {} laut Bescheid.",
    "ca_sin": "My SIN is {} if the insurer asks for it.",
    "au_tfn": "Her tax file number is {} on the form.",
    "au_medicare": "Medicare card {} expires next year.",
    "se_personnummer": "Patientens personnummer är {} enligt remissen.",
    "dk_cpr": "Hans CPR-nummer er {} ifølge journalen.",
    "no_fodselsnummer": "Fødselsnummer {} står på henvisningen.",
    "fi_hetu": "Potilaan henkilötunnus on {} lähetteessä.",
    "ch_ahv": "Die AHV-Nummer der Patientin ist {} gemäss Karte.",
    "ie_pps": "His PPS number is {} for the medical card.",
    "hk_hkid": "HKID {} was shown at registration.",
    "sg_nric": "Her NRIC is {} per the admission form.",
    "jp_my_number": "マイナンバーは {} です。",
    "kr_rrn": "주민등록번호 {} 확인 부탁드립니다.",
    "mx_curp": "Su CURP es {} según el acta.",
    "cl_rut": "El RUT del paciente es {} en la ficha.",
    "ar_cuit": "Mi CUIL es {} para la obra social.",
    "be_national_number": "Het rijksregisternummer is {} op de kaart.",
    "tr_tc_kimlik": "Hastanın kimlik numarası {} olarak kayıtlı.",
    "us_ssn": "Her social security number is {} per the intake form.",
    "us_ein": "The clinic's EIN is {} for the invoice.",
    "uk_nino": "His National Insurance number is {} according to the letter.",
    "uk_nhs": "Her NHS number is {} on the referral.",
}
# Written forms distinctive enough (with their check digit) to count without any cue.
BARE = ("cn_resident_id", "br_cpf", "in_aadhaar", "fr_nir", "it_codice_fiscale", "fi_hetu", "ch_ahv", "hk_hkid",
        "kr_rrn", "mx_curp", "cl_rut", "ar_cuit", "be_national_number")  # fmt: skip
# Numbers whose validity other implementations and published examples agree on.
KNOWN_VALID = (
    ("cn_resident_id", "11010519491231002X"),
    ("nl_bsn", "111222333"),
    ("pl_pesel", "44051401359"),
    ("it_codice_fiscale", "RSSMRA85T10A562S"),
    ("hk_hkid", "A123456(3)"),
    ("sg_nric", "S1234567D"),
    ("ca_sin", "046 454 286"),
    ("au_tfn", "123 456 782"),
    ("de_steuer_id", "86095742719"),
    ("ch_ahv", "756.9217.0769.85"),
    ("cl_rut", "12.345.678-5"),
    ("se_personnummer", "811218-9876"),
    ("fi_hetu", "131052-308T"),
    ("be_national_number", "85.07.30-033.28"),
    ("tr_tc_kimlik", "10000000146"),
    ("jp_my_number", "123456789018"),
    ("ie_pps", "1234567T"),
    ("es_dni_nie", "12345678Z"),
    ("es_dni_nie", "X1234567L"),
    ("br_cpf", "111.444.777-35"),
)
# Schemes without a check digit (SSN, EIN, CPR since 2007, NINO): no near-miss to test.
NO_CHECK_DIGIT = ("us_ssn", "us_ein", "dk_cpr", "uk_nino")


@pytest.fixture(scope="module")
def detector() -> SensitivityDetector:
    return SensitivityDetector.build(disabled=["person:name", "record:clinical_note", "record:lab_results"])


def near_miss(number: str) -> str:
    """``number`` with its check character changed (the last one; a Medicare card's is the 9th digit)."""
    if number == GENERATED["au_medicare"]:
        return "3727 69838 7"
    last = number.rstrip(")")[-1]
    swapped = str((int(last) + 1) % 10) if last.isdigit() else ("B" if last.upper() != "B" else "C")
    at = len(number.rstrip(")")) - 1
    return number[:at] + swapped + number[at + 1 :]


def test_at_least_twenty_countries_covered() -> None:
    assert len({scheme.country for scheme in SCHEMES}) >= 20
    assert set(GENERATED) == {scheme.key for scheme in SCHEMES} == set(CUED)


@pytest.mark.parametrize(("key", "number"), KNOWN_VALID)
def test_validators_accept_published_examples(key: str, number: str) -> None:
    assert valid(key, number)


@pytest.mark.parametrize("key", sorted(GENERATED))
def test_generated_numbers_are_valid_and_near_misses_are_not(key: str) -> None:
    assert valid(key, GENERATED[key])
    if key not in NO_CHECK_DIGIT:
        assert not valid(key, near_miss(GENERATED[key]))


@pytest.mark.parametrize("key", sorted(CUED))
def test_number_after_its_cue_fires(detector: SensitivityDetector, key: str) -> None:
    assert "national_id" in detector.scan([CUED[key].format(GENERATED[key])])


@pytest.mark.parametrize("key", BARE)
def test_distinctive_form_fires_without_a_cue(detector: SensitivityDetector, key: str) -> None:
    assert "national_id" in detector.scan([f"Could you check whether {GENERATED[key]} was copied correctly?"])


@pytest.mark.parametrize("key", sorted(set(GENERATED) - set(NO_CHECK_DIGIT)))
def test_wrong_check_digit_without_cue_does_not_fire(detector: SensitivityDetector, key: str) -> None:
    fired = detector.scan([f"Could you check whether {near_miss(GENERATED[key])} was copied correctly?"])
    assert "national_id" not in fired


HARD_NEGATIVES = (
    "Reads were deposited under GSE183947 and SRR15294751; see ENSG00000141510 and rs121913529.",
    "The variant sits at chr17:7674220-7674221 (GRCh38), 1,234,567 reads, 98.5% mapped.",
    "2024-03-11T10:22:31.118Z INFO task 4f2a1c finished in 123456789 ns, exit 0, pid 31337",
    "@A00123:45:HXXXXDSX2:1:1101:12345:1000 1:N:0:ACGTACGT+TTGCAACC",
    "Sample S1234567 and S2706280 were sequenced on lane 3 (barcode 756.1234.5678).",
    "chr1\t123456789012\t.\tA\tG\t50\tPASS\tDP=330101;AF=0.5",
    "Call the lab at 020 7946 0958 ext 123 between 09:00 and 17:00; order 20-20208945-3 shipped.",
    "Coordinates 52.3676, 4.9041; counts 11 477 752 8 and 3301 4319 8004 0144.",
    "Our protein binding assay used 1765 4369 8784 molecules per well (sin wave fit, run 12).",
)


@pytest.mark.parametrize("text", HARD_NEGATIVES)
def test_hard_negatives_stay_quiet(detector: SensitivityDetector, text: str) -> None:
    assert "national_id" not in detector.scan([text])
