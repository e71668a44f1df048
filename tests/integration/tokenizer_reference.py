"""Pure-Python reference of Slipway's predict tokenizer (src/slipway/processing/tokenizer.h).

It mirrors the C++ rules exactly, so tests can compare ids string by string:

Vocabulary: the file's lines split on "\\n" (one trailing "\\r" per line removed); a token's id is
its 0-based line number; a token listed twice keeps its first line; a final empty line after the
last "\\n" is not a token. WordPiece is on when any token starts with "##".
1. Lowercase the whole text with str.lower() (when lowercase is on). No accent stripping, no CJK
   splitting.
2. Scan the characters: whitespace ("\\t", "\\n", "\\r", categories Zs, Zl, Zp) ends a word;
   other control characters (categories C*) are dropped; punctuation (categories P*, or ASCII
   33-47, 58-64, 91-96, 123-126) ends a word and is a word of its own; anything else joins the
   word.
3. Each word: with WordPiece, more than 100 characters -> unk, else greedy longest-match-first
   ("##" before every piece but the first; no match at some position -> the whole word is unk);
   without WordPiece, the word's id or unk.
4. Row: [cls] + ids cut to max_length minus the specials + [sep], padded with pad to max_length;
   mask 1 before the padding.

Usage as a module: Tokenizer(vocab_text, max_length=..., ...).encode(text) -> (ids, mask).
"""

from __future__ import annotations

import unicodedata

MAX_WORD_CHARS = 100


def is_whitespace(ch: str) -> bool:
    return ch in "\t\n\r" or unicodedata.category(ch) in ("Zs", "Zl", "Zp")


def is_control(ch: str) -> bool:
    return not is_whitespace(ch) and unicodedata.category(ch).startswith("C")


def is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_blank(text: str) -> bool:
    """Nothing but whitespace and control characters (the server refuses such text)."""
    return all(is_whitespace(c) or is_control(c) for c in text)


def read_vocab(text: str) -> tuple[dict[str, int], int]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    vocab: dict[str, int] = {}
    for i, line in enumerate(lines):
        if line.endswith("\r"):
            line = line[:-1]
        vocab.setdefault(line, i)
    return vocab, len(lines)


class Tokenizer:
    def __init__(self, vocab_text: str, max_length: int, lowercase: bool = True,
                 pad_token: str = "[PAD]", unk_token: str = "[UNK]",
                 cls_token: str | None = None, sep_token: str | None = None):
        self.vocab, self.size = read_vocab(vocab_text)
        self.wordpiece = any(t.startswith("##") for t in self.vocab)
        self.max_length = max_length
        self.lowercase = lowercase
        self.pad = self.vocab[pad_token]
        self.unk = self.vocab[unk_token]
        self.cls = self.vocab[cls_token] if cls_token else None
        self.sep = self.vocab[sep_token] if sep_token else None

    def basic_tokens(self, text: str) -> list[str]:
        if self.lowercase:
            text = text.lower()
        words: list[str] = []
        word: list[str] = []

        def flush():
            if word:
                words.append("".join(word))
                word.clear()

        for ch in text:
            if is_whitespace(ch):
                flush()
            elif is_control(ch):
                continue
            elif is_punctuation(ch):
                flush()
                words.append(ch)
            else:
                word.append(ch)
        flush()
        return words

    def word_pieces(self, word: str) -> list[int]:
        if not self.wordpiece:
            return [self.vocab.get(word, self.unk)]
        if len(word) > MAX_WORD_CHARS:
            return [self.unk]
        pieces: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                sub = word[start:end]
                if start > 0:
                    sub = "##" + sub
                if sub in self.vocab:
                    found = self.vocab[sub]
                    break
                end -= 1
            if found is None:
                return [self.unk]
            pieces.append(found)
            start = end
        return pieces

    def tokenize(self, text: str) -> list[int]:
        ids: list[int] = []
        for word in self.basic_tokens(text):
            ids.extend(self.word_pieces(word))
        return ids

    def encode(self, text: str) -> tuple[list[int], list[int]]:
        pieces = self.tokenize(text)
        room = self.max_length - (self.cls is not None) - (self.sep is not None)
        ids = ([self.cls] if self.cls is not None else []) + pieces[:room]
        if self.sep is not None:
            ids.append(self.sep)
        used = len(ids)
        ids += [self.pad] * (self.max_length - used)
        return ids, [1] * used + [0] * (self.max_length - used)
