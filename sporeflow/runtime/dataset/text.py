"""`dataset.text`: the basics of MindSpore's text pipeline on numpy string arrays.

Tokenizers turn a string (a 0-d numpy str array) into a 1-d array of tokens; `Vocab` maps
tokens to ids and `Lookup` applies it; `ToNumber` parses numeric strings; `Truncate` cuts a
sequence; `transforms.PadEnd` pads it. Each is a callable usable in `Dataset.map` or eagerly.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Callable, Iterable

import numpy as np

from ...errors import DatasetError
from ...ir import dtypes as D


def _text(x, op: str) -> str:
    a = np.asarray(x)
    if a.ndim != 0 or a.dtype.kind not in "US":
        raise DatasetError(f"text.{op}: expected one string (a 0-d str array), got {a.dtype} of shape {a.shape}")
    v = a.item()
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def _tokens(x, op: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind not in "US":
        raise DatasetError(f"text.{op}: expected an array of strings (tokens), got {a.dtype} of shape {a.shape}")
    return a


def _str_array(items: list[str]) -> np.ndarray:
    return np.array(items, dtype=str) if items else np.array([], dtype="<U1")


class Vocab:
    """Token <-> id table. Build with from_list, from_dict or from_dataset (not the constructor)."""

    def __init__(self, token_to_id: dict[str, int] | None = None):
        self._ids = dict(token_to_id or {})
        self._tokens = {i: t for t, i in self._ids.items()}

    @classmethod
    def from_list(cls, word_list: Iterable[str], special_tokens: Iterable[str] | None = None,
                  special_first: bool = True) -> "Vocab":
        words = [str(w) for w in word_list]
        if len(set(words)) != len(words):
            raise ValueError("Vocab.from_list: word_list has duplicate words")
        specials = [str(s) for s in special_tokens or ()]
        clash = sorted(set(specials) & set(words))
        if clash:
            raise ValueError(f"Vocab.from_list: special_tokens {clash} are also in word_list")
        ordered = specials + words if special_first else words + specials
        return cls({w: i for i, w in enumerate(ordered)})

    @classmethod
    def from_dict(cls, word_dict: dict[str, int]) -> "Vocab":
        if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in word_dict.values()):
            raise ValueError("Vocab.from_dict: ids must be non-negative ints")
        if len(set(word_dict.values())) != len(word_dict):
            raise ValueError("Vocab.from_dict: two words share an id")
        return cls({str(k): int(v) for k, v in word_dict.items()})

    @classmethod
    def from_dataset(cls, dataset, columns=None, freq_range=None, top_k=None, special_tokens=None,
                     special_first: bool = True) -> "Vocab":
        """Words of `columns` (tokenized string columns) ordered by frequency (ties: first seen),
        kept when min_freq <= count <= max_freq, then the top_k most frequent."""
        cols = [columns] if isinstance(columns, str) else columns
        counts: dict[str, int] = {}
        for row in dataset.create_dict_iterator(num_epochs=1, output_numpy=True):
            for name in cols or list(row):
                for tok in np.asarray(row[name]).reshape(-1):
                    t = tok.decode("utf-8") if isinstance(tok, bytes) else str(tok)
                    counts[t] = counts.get(t, 0) + 1
        lo, hi = freq_range if freq_range is not None else (None, None)
        kept = [w for w, c in counts.items() if (lo is None or c >= lo) and (hi is None or c <= hi)]
        kept.sort(key=lambda w: -counts[w])  # stable: ties keep first-seen order
        if top_k is not None:
            kept = kept[:top_k]
        specials = [s for s in special_tokens or () if s not in kept]
        return cls.from_list(kept, specials, special_first)

    def vocab(self) -> dict[str, int]:
        return dict(self._ids)

    def tokens_to_ids(self, tokens):
        if isinstance(tokens, str):
            return self._ids.get(tokens, -1)
        return [self._ids.get(str(t), -1) for t in tokens]

    def ids_to_tokens(self, ids):
        if isinstance(ids, (int, np.integer)):
            return self._tokens.get(int(ids), "")
        return [self._tokens.get(int(i), "") for i in ids]

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self):
        return f"Vocab({len(self._ids)} tokens)"


class Lookup:
    """Tokens -> ids (int32 by default); an unknown token maps to `unknown_token`'s id, or raises."""

    def __init__(self, vocab: Vocab, unknown_token: str | None = None, data_type=D.int32):
        if not isinstance(vocab, Vocab):
            raise TypeError(f"text.Lookup: vocab must be a text.Vocab, got {type(vocab).__name__}")
        if unknown_token is not None and unknown_token not in vocab._ids:
            raise ValueError(f"text.Lookup: unknown_token {unknown_token!r} is not in the vocab")
        self.vocab, self.unknown_token = vocab, unknown_token
        self._np = D.as_dtype(data_type).storage

    def __call__(self, tokens):
        a = _tokens(tokens, "Lookup")
        default = self.vocab._ids[self.unknown_token] if self.unknown_token is not None else None
        out = np.empty(a.shape, dtype=self._np)
        for idx, tok in np.ndenumerate(a):
            t = tok.decode("utf-8") if isinstance(tok, bytes) else str(tok)
            i = self.vocab._ids.get(t, default)
            if i is None:
                raise DatasetError(f"text.Lookup: token {t!r} is not in the vocab and no unknown_token was given")
            out[idx] = i
        return out


class _Tokenizer:
    def __init__(self, with_offsets: bool = False):
        self.with_offsets = bool(with_offsets)

    def _split(self, s: str) -> list[tuple[str, int, int]]:
        raise NotImplementedError

    def __call__(self, text):
        pieces = self._split(_text(text, type(self).__name__))
        tokens = _str_array([p[0] for p in pieces])
        if not self.with_offsets:
            return tokens
        starts = np.array([p[1] for p in pieces], np.uint32)
        ends = np.array([p[2] for p in pieces], np.uint32)
        return tokens, starts, ends

    def __repr__(self):
        return f"{type(self).__name__}(with_offsets={self.with_offsets})"


def _byte_offsets(s: str, spans: list[tuple[int, int]]) -> list[tuple[str, int, int]]:
    """Character spans -> (token, start byte, end byte) in the UTF-8 encoding, as MindSpore reports."""
    out = []
    for a, b in spans:
        start = len(s[:a].encode("utf-8"))
        out.append((s[a:b], start, start + len(s[a:b].encode("utf-8"))))
    return out


class WhitespaceTokenizer(_Tokenizer):
    """Split on runs of whitespace (ICU's definition in MindSpore; Unicode whitespace here)."""

    def _split(self, s):
        return _byte_offsets(s, [m.span() for m in re.finditer(r"\S+", s)])


class UnicodeCharTokenizer(_Tokenizer):
    """One token per Unicode code point."""

    def _split(self, s):
        return _byte_offsets(s, [(i, i + 1) for i in range(len(s))])


class PythonTokenizer:
    """Tokens from a user function str -> list of str."""

    def __init__(self, tokenizer: Callable[[str], list]):
        if not callable(tokenizer):
            raise TypeError("text.PythonTokenizer: tokenizer must be callable")
        self.tokenizer = tokenizer

    def __call__(self, text):
        return _str_array([str(t) for t in self.tokenizer(_text(text, "PythonTokenizer"))])


class ToNumber:
    """Numeric strings -> numbers of `data_type`; a string that is not a number raises."""

    def __init__(self, data_type):
        self._np = D.as_dtype(data_type).storage
        self.data_type = data_type

    def __call__(self, strings):
        a = _tokens(strings, "ToNumber")
        try:
            return np.array([float(s) if self._np.kind == "f" else int(s) for s in a.reshape(-1)],
                            dtype=self._np).reshape(a.shape)
        except ValueError as e:
            raise DatasetError(f"text.ToNumber: {e}") from None


class Truncate:
    """Keep the first max_seq_len elements of a 1-d sequence."""

    def __init__(self, max_seq_len: int):
        if isinstance(max_seq_len, bool) or not isinstance(max_seq_len, int) or max_seq_len < 1:
            raise ValueError(f"text.Truncate: max_seq_len must be a positive int, got {max_seq_len!r}")
        self.max_seq_len = max_seq_len

    def __call__(self, seq):
        a = np.asarray(seq)
        if a.ndim != 1:
            raise DatasetError(f"text.Truncate: expected a 1-d sequence, got shape {a.shape}")
        return a[:self.max_seq_len]


class NormalizeUTF8:
    """Unicode normalization (NFC, NFKC, NFD, NFKD) of one string."""

    def __init__(self, normalize_form: str = "NFKC"):
        form = getattr(normalize_form, "name", normalize_form)
        if form not in ("NFC", "NFKC", "NFD", "NFKD"):
            raise ValueError(f"text.NormalizeUTF8: normalize_form must be NFC, NFKC, NFD or NFKD, got {normalize_form!r}")
        self.normalize_form = form

    def __call__(self, text):
        return np.array(unicodedata.normalize(self.normalize_form, _text(text, "NormalizeUTF8")))


__all__ = ["Vocab", "Lookup", "WhitespaceTokenizer", "UnicodeCharTokenizer", "PythonTokenizer", "ToNumber",
           "Truncate", "NormalizeUTF8"]
