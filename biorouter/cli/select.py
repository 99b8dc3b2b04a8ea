"""``biorouter select``: recommend the profile for this machine, let a person pick, optionally save it.

Shows the profile automatic selection picks (the highest priority that fits) and why. With
``--interactive`` the profiles are listed by number and one answer is read from standard input,
a terminal or a pipe alike: a number or a name picks that profile, an empty line or end of input
accepts the recommendation. A profile that does not fit is shown with its unmet needs and must be
confirmed. ``--write`` saves the choice as ``profile:`` in biorouter.yaml, keeping its comments;
without it the command prints how to make the choice active.

Exit 1 when nothing fits and nobody picked a profile, or after three answers that picked nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from biorouter.cli.profiles import Survey

__all__ = ["register", "run"]

ATTEMPTS = 3  # answers read before giving up when none picks a profile
_PROFILE_LINE = re.compile(r"^profile[ \t]*:(?P<value>[^\r\n]*?)(?P<comment>[ \t]+#[^\r\n]*)?(?P<eol>\r?\n)?$")


def register(subparsers: Any) -> None:
    from biorouter.cli.profiles import positive_seconds

    parser = subparsers.add_parser(
        "select",
        help="recommend a profile for this machine, let a person pick one, optionally save it",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--interactive", action="store_true", help="list the profiles and read a choice from standard input"
    )
    parser.add_argument("--write", action="store_true", help="save the choice as 'profile:' in biorouter.yaml")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON (prompts go to stderr)")
    parser.add_argument(
        "--timeout", type=positive_seconds, default=1.0, metavar="S", help="per-probe timeout, seconds (default 1)"
    )
    parser.set_defaults(handler=run)


class _NoChoice(Exception):
    """The person's answers picked no profile."""


def _read(prompt: str, out: TextIO) -> str | None:
    """One line from stdin (None at end of input); echoed when stdin is not a terminal, as a person would see it."""
    out.write(prompt)
    out.flush()
    line = sys.stdin.readline()
    if not line:
        out.write("\n")
        return None
    answer = line.strip()
    if not sys.stdin.isatty():
        out.write(answer + "\n")
    return answer


def _show_recommendation(found: Survey, out: TextIO, *, why_not_higher: bool) -> None:
    best = found.recommended
    if best is None:
        print("no profile fits this machine: pick one below, or add one that fits", file=out)
        return
    rank = next(i for i, f in enumerate(found.fits) if f.profile == best.profile)
    fit = found.fits[rank]
    print(f"recommended: {best.profile} (priority {fit.priority}): highest priority that fits this machine", file=out)
    print(f"    {found.description(best.profile)}", file=out)
    for need in fit.met:
        print(f"    met:   {need}", file=out)
    for other in found.fits[:rank] if why_not_higher else ():  # ranked above it, so none of them fits
        print(f"    {other.profile} (priority {other.priority}) does not fit: {'; '.join(other.reasons)}", file=out)


def _choose(found: Survey, out: TextIO) -> str:
    """Ask until an answer picks a profile; _NoChoice after ATTEMPTS answers that did not.

    An empty answer or end of input accepts the recommendation, also after an answer that picked
    nothing; with no recommendation (nothing fits) it is the SelectionError listing why.
    """
    from biorouter.errors import SelectionError
    from biorouter.hardware.selection import select_profile

    names = [fit.profile for fit in found.fits]
    recommended = found.recommended.profile if found.recommended else None
    print("\nprofiles:", file=out)
    for number, fit in enumerate(found.fits, start=1):
        tag = " [recommended]" if fit.profile == recommended else ""
        verdict = "fits" if fit.ok else "does not fit: " + "; ".join(fit.reasons)
        print(f"  {number}. {fit.profile} (priority {fit.priority}){tag}: {verdict}", file=out)
    default = f", Enter = {recommended}" if recommended else ""
    prompt = f"choose a profile [1-{len(names)} or a name{default}]: "
    for _ in range(ATTEMPTS):
        answer = _read(prompt, out)
        if not answer:  # an empty line or end of input, also after a pick that was not confirmed
            if recommended is None:
                raise SelectionError(found.no_fit or "no profile fits this machine")
            if answer is None:
                print(f"end of input: taking the recommendation '{recommended}'", file=out)
            return recommended
        numbered = answer.isascii() and answer.isdigit() and 1 <= int(answer) <= len(names)
        name = names[int(answer) - 1] if numbered else answer
        if name not in found.profiles:
            print(f"'{answer}' is not one of the choices: enter 1-{len(names)} or a profile name", file=out)
            continue
        warnings = select_profile(found.profiles, found.resources, explicit=name).warnings
        if not warnings:
            return name
        for warning in warnings:
            print(f"warning: {warning}", file=out)
        confirm = _read(f"use '{name}' although it does not fit? [y/N]: ", out)
        if confirm is not None and confirm.lower() in ("y", "yes"):
            return name
        print(f"'{name}' not chosen", file=out)
    raise _NoChoice(f"{ATTEMPTS} answers picked no profile")


def write_profile_setting(path: Path, name: str) -> None:
    """Set the top-level ``profile:`` of biorouter.yaml to ``name``, editing only that line."""
    import yaml

    from biorouter.errors import ConfigError, Problem

    with path.open(encoding="utf-8", newline="") as f:
        lines = f.readlines()
    found = [(i, match) for i, line in enumerate(lines) if (match := _PROFILE_LINE.match(line))]
    if len(found) != 1:
        why = "has no top-level 'profile:' line" if not found else "has more than one top-level 'profile:' line"
        raise ConfigError([Problem(path.name, ("profile",), f"{why}; edit it by hand: profile: {name}")])
    index, match = found[0]
    lines[index] = f"profile: {name}{match['comment'] or ''}{match['eol'] or ''}"
    text = "".join(lines)
    try:
        written = (yaml.safe_load(text) or {}).get("profile")
    except yaml.YAMLError as e:
        raise ConfigError([Problem(path.name, ("profile",), f"not valid YAML after the edit: {e}")]) from e
    if written != name:
        raise ConfigError(
            [Problem(path.name, ("profile",), f"the edit did not set it; edit it by hand: profile: {name}")]
        )
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(text)


def run(args: argparse.Namespace) -> int:
    import os

    from biorouter.cli.profiles import fit_payload, survey
    from biorouter.errors import SelectionError
    from biorouter.hardware.selection import select_profile
    from biorouter.settings import SETTINGS_FILE

    found = survey(args.timeout)
    out = sys.stderr if args.json else sys.stdout
    if not args.interactive:
        if found.recommended is None:
            raise SelectionError(found.no_fit or "no profile fits this machine")
        _show_recommendation(found, out, why_not_higher=True)
        chosen = found.recommended.profile
    else:
        _show_recommendation(found, out, why_not_higher=False)  # the numbered list says why
        try:
            chosen = _choose(found, out)
        except _NoChoice as e:
            print(f"biorouter select: nothing selected: {e}", file=sys.stderr)
            return 1
    selection = select_profile(found.profiles, found.resources, explicit=chosen)

    settings_file = found.settings.home / SETTINGS_FILE
    if args.write:
        write_profile_setting(settings_file, chosen)
    overridden = os.environ.get("BIOROUTER_PROFILE")
    note = None
    if overridden and overridden != chosen:
        note = f"note: BIOROUTER_PROFILE={overridden} is set and overrides {SETTINGS_FILE}: unset it or change it"

    if args.json:
        if note:
            print(note, file=sys.stderr)
        payload = {
            "profile": chosen,
            "recommended": found.recommended.profile if found.recommended else None,
            "warnings": list(selection.warnings),
            "written": str(settings_file) if args.write else None,
            "fits": [fit_payload(found, fit) for fit in found.fits],
        }
        print(json.dumps(payload, indent=2))
        return 0
    print(f"\nselected: {chosen}")
    automatic = found.configured is None and found.recommended is not None and found.recommended.profile == chosen
    if args.write:
        print(f"wrote 'profile: {chosen}' to {settings_file}")
    elif found.configured == chosen:
        print(f"already active ({found.configured_source} names it)")
    else:
        if automatic:
            print("already active ('auto' selects it on this machine); to pin it whatever is detected, either:")
        else:
            print("to make it active, either:")
        print(f"    export BIOROUTER_PROFILE={chosen}")
        print(f"    or set 'profile: {chosen}' in {settings_file} (biorouter select --write does it)")
    if note:
        print(note)
    return 0
