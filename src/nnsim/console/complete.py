"""Tab completion for the console, apart from the terminal library that shows it.

``completions(console, "cd lo")`` returns what Tab may insert — here
``[("loss/", 2)]``, the text and how many characters before the cursor it
replaces — so tests check completion without a terminal, and the
prompt_toolkit front end (``nnsim.console.session``) only wraps it.
"""

from __future__ import annotations

from nnsim.console.console import ALIASES, COMMANDS, Console
from nnsim.console.objectmap import children, is_scalar

# Commands whose argument is a command name, not a path.
_TAKES_A_COMMAND = {"help"}


def command_names(prefix: str) -> list[str]:
    """Command names (long and short, as spelled in ``help``) that start with ``prefix``."""
    names = []
    for name in sorted(set(ALIASES)):
        spelled = COMMANDS[ALIASES[name]].name if name == ALIASES[name] else name
        if spelled.lower().startswith(prefix.lower()):
            names.append(spelled)
    return names


def completions(console: Console, text: str) -> list[tuple[str, int]]:
    """What Tab can insert at the end of ``text``: (replacement, characters it replaces).

    The first word completes to a command; the word after ``help`` too. Other
    words complete to names in the object map: at the current level, along a
    typed relative path (``loss/opt``), or from the root for an absolute one
    (``/contr``). Objects end in ``/`` so that Tab can go on down.
    """
    words = text.split()
    current = "" if not words or text.endswith((" ", "\t")) else words[-1]
    position = len(words) - (1 if current else 0)  # index of the word being completed
    if position == 0:
        return [(name, len(current)) for name in command_names(current)]
    if position == 1 and ALIASES.get(words[0].lower()) in _TAKES_A_COMMAND:
        return [(name, len(current)) for name in command_names(current)]
    base, slash, partial = current.rpartition("/")
    if slash and not base:
        base = "/"  # "/de": the root's members, not the current level's
    try:
        place = console.place(base) if base else console.place()
    except Exception:  # noqa: BLE001 - completion must never break the prompt
        return []
    found = []
    for name, (value, _) in children(place.value).items():
        if name.startswith(partial):
            found.append((name + ("" if is_scalar(value) else "/"), len(partial)))
    return found
