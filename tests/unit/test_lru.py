"""The bounded map and the one-answer memo the caches and the detector share (biorouter/lru.py)."""

from __future__ import annotations

import threading

from biorouter.lru import Lru, remember_last


def test_the_least_recently_used_entry_goes_first() -> None:
    cache: Lru[str, int] = Lru(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the least recently used
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    assert (cache.hits, cache.misses) == (3, 1)


def test_remember_last_answers_the_same_text_object_without_calling_again() -> None:
    calls: list[str] = []

    @remember_last
    def shout(text: str) -> str:
        calls.append(text)
        return text.upper()

    text = "".join(["pasted ", "log"])  # built at run time: not an interned constant
    assert shout(text) == shout(text) == "PASTED LOG"
    assert len(calls) == 1
    equal_but_another_object = "".join(["pasted ", "log"])
    assert equal_but_another_object is not text
    assert shout(equal_but_another_object) == "PASTED LOG"
    assert len(calls) == 2  # identity, not equality: a hit never hashes a long text
    assert shout("other") == "OTHER"
    assert shout(text) == "PASTED LOG"
    assert len(calls) == 4  # one answer kept: "other" replaced it


def test_remember_last_gives_each_thread_a_right_answer() -> None:
    @remember_last
    def length(text: str) -> int:
        return len(text)

    texts = ["x" * n for n in range(1, 200)]
    wrong: list[tuple[int, int]] = []

    def ask() -> None:
        for _ in range(50):
            for text in texts:
                if (got := length(text)) != len(text):
                    wrong.append((len(text), got))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
