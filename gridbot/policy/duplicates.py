"""Whether two reports say the same thing: character n-grams, which work for Chinese
without a word segmenter.

The words are compared without their addresses and digits ("3幢楼道灯坏了" and
"5幢楼道灯坏了" say the same about two places; the places are compared on their own),
without punctuation and without the little words every report has (了, 的, 坏, 请…).
The score is the mean of two Dice coefficients: over single characters (the topic: 楼, 道,
灯) and over pairs of characters (the phrase: 楼道, 道灯). Unrelated reports of one
category ("电梯坏了" and "楼道灯坏了") score near 0.15, the same problem in other
words ("楼道灯不亮了" and "楼道的灯坏了，晚上看不见") near 0.45.
"""

from __future__ import annotations

import re
import unicodedata

from gridbot.policy.addresses import strip_addresses

#: characters that say little about what is wrong: particles, pronouns, "broken", "please"
_COMMON = set("了的是不坏有在我们你他她它吗呢吧啊呀哦哈请帮一下很都也还就又被把给和与及"
              "么这那个点些就要会能说看到得地着过来去啦嘛呗已经")
_SKIP = re.compile(r"[\s\W_]+", re.UNICODE)
#: command words a report may start with
_COMMAND = re.compile(r"^\s*(?:/?report|报事|报修|匿名|anonymous)\s*", re.IGNORECASE)


def _words(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    while True:
        stripped = _COMMAND.sub("", text)
        if stripped == text:
            break
        text = stripped
    return _SKIP.sub("", strip_addresses(text))


def _dice(a: set[str], b: set[str]) -> float:
    if not a or not b:
        return 0.0
    return 2 * len(a & b) / (len(a) + len(b))


def similarity(first: str, second: str) -> float:
    """0 (nothing alike) to 1 (the same words, wherever they are)."""
    a, b = _words(first), _words(second)
    if not a or not b:
        return 0.0
    if a == b:
        return 1.0
    chars = _dice({c for c in a if c not in _COMMON}, {c for c in b if c not in _COMMON})
    pairs = _dice({a[i:i + 2] for i in range(len(a) - 1)},
                  {b[i:i + 2] for i in range(len(b) - 1)})
    return (chars + pairs) / 2


def common_words(first: str, second: str, *, longest: int = 12) -> str:
    """The longest run of characters the two reports share (no address, no digits, none of
    the little words): what a resident is shown of an earlier case is their own words."""
    a = "".join(c for c in _words(first) if c not in _COMMON)
    b = "".join(c for c in _words(second) if c not in _COMMON)
    best = ""
    for i in range(len(a)):
        for j in range(i + len(best) + 1, len(a) + 1):
            if a[i:j] in b:
                best = a[i:j]
            else:
                break
    best = best[:longest]
    if len(best) < 2 or any(c.isascii() for c in best):
        return ""  # English words run together read badly: the category says it better
    return best
