r"""Showing text that came from the network.

A name or path from the index server or another peer may hold characters that
change what a terminal shows: control characters (escape sequences, a newline
that forges a result line), C1 controls (U+009B is a CSI on some terminals),
bidi overrides (U+202E turns `\u202efdp.exe` into `exe.pdf`), zero-width and
other format characters.  `shown()` writes each of them as a `\u202e`-style
escape, on every output (terminal or not), so plain text is printed as is and
nothing else can pass for it.
"""
import unicodedata

# Unicode categories written as escapes: controls (C0, DEL, C1), format
# characters (bidi controls, zero-width ...), line and paragraph separators,
# surrogates (undecodable bytes).
ESCAPED_CATEGORIES = frozenset(("Cc", "Cf", "Zl", "Zp", "Cs"))


def _escape(ch):
    code = ord(ch)
    return "\\u%04x" % code if code <= 0xFFFF else "\\U%08x" % code


def shown(text):
    """`text` as it may be printed: unchanged when plain, else with every
    control or format character escaped."""
    text = str(text)
    if text.isascii() and text.isprintable():
        return text
    return "".join(_escape(ch) if unicodedata.category(ch) in ESCAPED_CATEGORIES else ch
                   for ch in text)
