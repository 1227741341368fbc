"""Command history with bash-like expansion, as in SST's console.

``!!`` the previous command, ``!n`` command number n, ``!-n`` n back,
``!str`` the most recent starting with str, ``?str`` the most recent
containing str; a trailing ``:p`` prints the expansion instead of running it.
"""

from __future__ import annotations

from collections import deque

from nnsim.errors import NnsimError

KEPT = 200


class HistoryError(NnsimError):
    """An expansion that matches nothing."""


class History:
    def __init__(self) -> None:
        self.entries: deque[tuple[int, str]] = deque(maxlen=KEPT)
        self.count = 0

    def add(self, line: str) -> None:
        self.count += 1
        self.entries.append((self.count, line))

    def load(self, lines: list[str]) -> None:
        """Take in lines typed in earlier sessions (oldest first), as if entered again.

        The terminal's history file keeps what was typed, so an old ``!!`` is
        expanded against the lines before it; ``:p`` lines, comments and
        references that match nothing ran nothing and are left out.
        """
        for line in lines:
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            try:
                expanded, print_only = self.expand(text)
            except HistoryError:
                continue
            if not print_only:
                self.add(expanded)

    def last(self, n: int | None = None) -> list[tuple[int, str]]:
        items = list(self.entries)
        return items if n is None else items[-n:] if n > 0 else []

    def expand(self, line: str) -> tuple[str, bool]:
        """Return (expanded line, print_only); lines without ``!``/``?`` come back as they are."""
        text = line.strip()
        if not text or text[0] not in "!?" or text == "?" or text.startswith("? "):
            return line, False  # "?" alone is help
        print_only = text.endswith(":p")
        if print_only:
            text = text[:-2]
        return self._find(text), print_only

    def _find(self, text: str) -> str:
        items = list(self.entries)
        if not items:
            raise HistoryError(f"{text}: the history is empty")
        if text == "!!":
            return items[-1][1]
        if text.startswith("?"):
            needle = text[1:]
            for _, line in reversed(items):
                if needle in line:
                    return line
            raise HistoryError(f"{text}: no command in the history contains '{needle}'")
        body = text[1:]
        if body.lstrip("-").isdigit():
            number = int(body)
            if number < 0:
                if -number > len(items):
                    raise HistoryError(f"{text}: the history has only {len(items)} commands")
                return items[number][1]
            for index, line in items:
                if index == number:
                    return line
            raise HistoryError(f"{text}: there is no command number {number} in the history")
        for _, line in reversed(items):
            if line.startswith(body):
                return line
        raise HistoryError(f"{text}: no command in the history starts with '{body}'")
