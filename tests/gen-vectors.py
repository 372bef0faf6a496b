#!/usr/bin/python3
# gen-vectors.py: writes tests/data/vectors.txt, the byte-exact test vectors
# of execnet's value serialization, for test-vectors.c.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The bytes come from Python execnet itself: each Python value is serialized
# with execnet.gateway_base.dumps_internal() (channel payloads, no version
# byte) or dumps() (with its version byte), and next to the bytes goes the
# GVariant that execnet-glib maps the value to (doc/protocol.md, section 5),
# printed as g_variant_print (value, TRUE) prints it.
#
# Some inputs no Python 3 execnet writes: the Python 2 opcodes (M, S, G, I),
# lists filled out of order, integers below -2**31 (execnet 1.9 fails to
# write them; we write them as LONGINT). Their bytes are built by hand below
# and checked by loading them back with execnet's own loads_internal().
#
# The build does not run this script. Run it by hand whenever it changes,
# from anywhere, with a Python that has execnet (Debian: python3-execnet):
#
#     /usr/bin/python3 tests/gen-vectors.py
#
# It rewrites tests/data/vectors.txt next to it (or the path given as its
# one argument); commit the result. Its output is deterministic.
#
# Line format (tab-separated; '#' lines and blank lines are comments):
#
#     NAME  MODE  HEX  TEXT
#
# MODE says what test-vectors.c checks:
#   both          decoding HEX gives TEXT, and encoding TEXT gives exactly HEX
#                 (and execnet_dumps() gives the byte 2 then HEX, and
#                 execnet_loads() reads HEX after a version byte 1 or 2)
#   decode        decoding HEX gives TEXT; our encoder writes it differently
#   encode        encoding TEXT gives exactly HEX (a GVariant type that we
#                 accept for sending but never produce when receiving)
#   loads         HEX is execnet's dumps() output, version byte included:
#                 execnet_loads() gives TEXT
#   decode-error  decoding HEX fails with the EXECNET_ERROR_* code in TEXT
#   encode-error  encoding TEXT fails with the EXECNET_ERROR_* code that
#                 stands in the HEX column

import math
import os
import struct
import sys
import unicodedata

from execnet.gateway_base import dumps, dumps_internal, loads_internal

# -------------------------------------------------------------------------
# Stand-ins for values Python 3 execnet does not write by itself.


class Channel:
    """Serialized by execnet as CHANNEL: its dispatch goes by class name."""

    def __init__(self, id):
        self.id = id

    def __eq__(self, other):
        return isinstance(other, Channel) and other.id == self.id

    def __hash__(self):
        return hash(("channel", self.id))


class ChannelFactory:
    """What loads_internal() asks to turn a CHANNEL id into a channel."""

    def new(self, id):
        return Channel(id)


class Py2Str:
    """A Python 2 str (opcode M): bytes without a declared encoding."""

    def __init__(self, data):
        self.data = data


class Py2Unicode:
    """A Python 2 unicode (opcode S): text."""

    def __init__(self, text):
        self.text = text


class Py2Long:
    """A Python 2 long (opcode G, or I when it needs more than an int4)."""

    def __init__(self, value):
        self.value = value


# -------------------------------------------------------------------------
# Hand-made bytes, for the stand-ins above and for what execnet cannot write.

INT4_MAX = 2**31 - 1


def int4(n):
    return struct.pack("!i", n)


def sized(op, data):
    return op + int4(len(data)) + data


def handmade(value):
    """The program for @value without STOP, as a Python 2 writer or our
    encoder writes it."""
    if isinstance(value, Py2Str):
        return sized(b"M", value.data)
    if isinstance(value, Py2Unicode):
        return sized(b"S", value.text.encode("utf-8"))
    if isinstance(value, Py2Long):
        if -(2**31) <= value.value <= INT4_MAX:
            return b"G" + int4(value.value)
        return sized(b"I", str(value.value).encode("ascii"))
    if isinstance(value, bool) or value is None:
        return dumps_internal(value)[:-1]
    if isinstance(value, int):
        if -(2**31) <= value <= INT4_MAX:
            return b"F" + int4(value)
        return sized(b"H", str(value).encode("ascii"))
    if isinstance(value, tuple):
        return b"".join(handmade(item) for item in value) + b"@" + int4(len(value))
    if isinstance(value, list):
        out = b"K" + int4(len(value))
        for index, item in enumerate(value):
            out += handmade(index) + handmade(item) + b"P"
        return out
    if isinstance(value, dict):
        out = b"J"
        for key, item in value.items():
            out += handmade(key) + handmade(item) + b"P"
        return out
    # Everything else is written the same way by every writer.
    return dumps_internal(value)[:-1]


def program(value):
    return handmade(value) + b"Q"


def python_view(value):
    """@value as Python 3 execnet loads it (Python 2 strings as Latin-1, the
    default of loads_internal())."""
    if isinstance(value, Py2Str):
        return value.data.decode("latin-1")
    if isinstance(value, Py2Unicode):
        return value.text
    if isinstance(value, Py2Long):
        return value.value
    if isinstance(value, tuple):
        return tuple(python_view(item) for item in value)
    if isinstance(value, list):
        return [python_view(item) for item in value]
    if isinstance(value, dict):
        return {python_view(k): python_view(v) for k, v in value.items()}
    return value


def execnet_load(data):
    return loads_internal(data, ChannelFactory())


def same(a, b):
    """Equality that also holds for NaN and tells -0.0 from 0.0."""
    if isinstance(a, float) and isinstance(b, float):
        return struct.pack("!d", a) == struct.pack("!d", b)
    if isinstance(a, complex) and isinstance(b, complex):
        return same(a.real, b.real) and same(a.imag, b.imag)
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a.keys()) == list(b.keys()) and all(
            same(a[k], b[k]) for k in a
        )
    return a == b


# -------------------------------------------------------------------------
# The GVariant a decoded value becomes, printed as g_variant_print() does.

INT64_MIN, INT64_MAX, UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1


class Unmappable(Exception):
    pass


def int_type(n):
    if INT64_MIN <= n <= INT64_MAX:
        return "x"
    if 0 <= n <= UINT64_MAX:
        return "t"
    raise Unmappable("integer out of range")


# GLib's limit on the nesting of type strings.
MAX_TYPE_DEPTH = 128


def tuple_depth(value):
    """How deep tuples nest directly in each other (lists, sets and dict
    values box their items in variants, which start a new type)."""
    if isinstance(value, complex):
        return 1
    if not isinstance(value, tuple):
        return 0
    return 1 + max((tuple_depth(item) for item in value), default=0)


def py2str_is_text(data):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return "\0" not in text


def gtype(value):
    """The GVariant type string of the decoded @value."""
    if value is None:
        return "mv"
    if isinstance(value, bool):
        return "b"
    if isinstance(value, int):
        return int_type(value)
    if isinstance(value, Py2Long):
        return int_type(value.value)
    if isinstance(value, float):
        return "d"
    if isinstance(value, complex):
        return "(dd)"
    if isinstance(value, (str, Py2Unicode)):
        return "s"
    if isinstance(value, Py2Str):
        return "s" if py2str_is_text(value.data) else "ay"
    if isinstance(value, bytes):
        return "ay"
    if isinstance(value, Channel):
        return "o"
    if isinstance(value, (list, set, frozenset)):
        return "av"
    if isinstance(value, tuple):
        if tuple_depth(value) > MAX_TYPE_DEPTH:
            raise Unmappable("tuples nested too deep for a GVariant type")
        return "(" + "".join(gtype(item) for item in value) + ")"
    if isinstance(value, dict):
        key_types = {gtype(key) for key in value}
        if not key_types:
            return "a{sv}"
        if len(key_types) > 1 or key_types.pop() not in "bxtdso":
            # No dict entry can hold these keys: key/value pairs instead.
            return "a(vv)"
        return "a{%sv}" % gtype(next(iter(value)))
    raise TypeError(value)


def is_printable(char):
    # g_unichar_isprint(): anything but control, format, unassigned and
    # surrogate code points.
    return unicodedata.category(char) not in ("Cc", "Cf", "Cn", "Cs")


NAMED_ESCAPES = {"\a": "a", "\b": "b", "\f": "f", "\n": "n", "\r": "r",
                 "\t": "t", "\v": "v"}


def show_string(text):
    if "\0" in text:
        raise Unmappable("string with a nul character")
    quote = '"' if "'" in text else "'"
    out = quote
    for char in text:
        if char in (quote, "\\"):
            out += "\\"
        if is_printable(char):
            out += char
        elif char in NAMED_ESCAPES:
            out += "\\" + NAMED_ESCAPES[char]
        elif ord(char) < 0x10000:
            out += "\\u%04x" % ord(char)
        else:
            out += "\\U%08x" % ord(char)
    return out + quote


def strescape(data):
    # g_strescape() on the bytes before the final nul.
    named = {8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v",
             92: "\\\\", 34: '\\"'}
    out = ""
    for byte in data:
        if byte in named:
            out += named[byte]
        elif byte < 0x20 or byte >= 0x7F:
            out += "\\%03o" % byte
        else:
            out += chr(byte)
    return out


def show_bytes(data, annotate):
    if data and data.find(b"\0") == len(data) - 1:
        # One nul, at the end: GLib prints a byte string literal.
        body = data[:-1]
        quote = '"' if b"'" in body else "'"
        return "b" + quote + strescape(body) + quote
    if not data:
        return ("@ay " if annotate else "") + "[]"
    items = ["0x%02x" % byte for byte in data]
    if annotate:
        items[0] = "byte " + items[0]
    return "[" + ", ".join(items) + "]"


def show_double(x):
    text = "%.17g" % x
    if not any(c in text for c in ".enN"):
        text += ".0"
    return text


def show(value, annotate=True):
    if value is None:
        return ("@mv " if annotate else "") + "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Py2Long):
        return show(value.value, annotate)
    if isinstance(value, int):
        prefix = {"x": "int64 ", "t": "uint64 "}[int_type(value)]
        return (prefix if annotate else "") + str(value)
    if isinstance(value, float):
        return show_double(value)
    if isinstance(value, complex):
        return "(%s, %s)" % (show_double(value.real), show_double(value.imag))
    if isinstance(value, str):
        return show_string(value)
    if isinstance(value, Py2Unicode):
        return show_string(value.text)
    if isinstance(value, Py2Str):
        if py2str_is_text(value.data):
            return show_string(value.data.decode("utf-8"))
        return show_bytes(value.data, annotate)
    if isinstance(value, bytes):
        return show_bytes(value, annotate)
    if isinstance(value, Channel):
        path = "/org/execnet/channel/%d" % value.id
        return ("objectpath " if annotate else "") + "'%s'" % path
    if isinstance(value, (list, set, frozenset)):
        if not value:
            return ("@av " if annotate else "") + "[]"
        # Items are variants, whose contents are always annotated.
        return "[" + ", ".join("<%s>" % show(item) for item in value) + "]"
    if isinstance(value, tuple):
        items = [show(item, annotate) for item in value]
        if len(items) == 1:
            return "(%s,)" % items[0]
        return "(" + ", ".join(items) + ")"
    if isinstance(value, dict):
        dict_type = gtype(value)
        if not value:
            return ("@%s " % dict_type if annotate else "") + "{}"
        if dict_type == "a(vv)":
            return "[" + ", ".join("(<%s>, <%s>)" % (show(key), show(item))
                                   for key, item in value.items()) + "]"
        entries = []
        for key, item in value.items():
            entries.append("%s: <%s>" % (show(key, annotate), show(item)))
            annotate = False
        return "{" + ", ".join(entries) + "}"
    raise TypeError(value)


# -------------------------------------------------------------------------
# The vectors.

vectors = []
names = set()


def add(name, mode, data, text):
    """@data is the bytes, or for encode-error the error code."""
    assert name not in names, name
    assert "\t" not in text and "\n" not in text, name
    names.add(name)
    vectors.append((name, mode, data if isinstance(data, str) else data.hex(), text))


def comment(text):
    vectors.append(("#", text))


def from_execnet(name, value, mode="both"):
    """A value Python execnet writes; its GVariant follows from the mapping."""
    data = dumps_internal(value)
    assert same(execnet_load(data), value), name
    add(name, mode, data, show(value))


def from_hand(name, value, mode="decode"):
    """A value only a Python 2 writer (or we) write: bytes made by hand."""
    data = program(value)
    assert same(execnet_load(data), python_view(value)), name
    add(name, mode, data, show(value))


def unmappable(name, value, code="UNSUPPORTED_VALUE", data=None):
    """Well-formed bytes of a value that has no GVariant form."""
    if data is None:
        data = dumps_internal(value)
    try:
        show(value)
        gtype(value)
    except Unmappable:
        pass
    else:
        raise AssertionError("%s has a GVariant form" % name)
    assert same(execnet_load(data), python_view(value)), name
    add(name, "decode-error", data, code)


def corrupt(name, data, code="PROTOCOL"):
    """Bytes that are not a well-formed program."""
    add(name, "decode-error", data, code)


def encode_only(name, text, value):
    """A GVariant we accept for sending, which goes out as Python's @value."""
    data = dumps_internal(value) if not needs_hand(value) else program(value)
    add(name, "encode", data, text)


def needs_hand(value):
    if isinstance(value, int) and not isinstance(value, bool):
        return value < -(2**31)
    if isinstance(value, (list, tuple)):
        return any(needs_hand(item) for item in value)
    if isinstance(value, dict):
        return any(needs_hand(k) or needs_hand(v) for k, v in value.items())
    return False


def from_dumps(name, value):
    """execnet's dumps() output, with its version byte (1 in execnet 1.x)."""
    data = dumps(value)
    assert data[:1] in (b"\x01", b"\x02"), name
    add(name, "loads", data, show(value))


comment("None and booleans")
from_execnet("none", None)
from_execnet("true", True)
from_execnet("false", False)

comment("Integers: INT (int4) up to 2**31-1, LONGINT (decimal) beyond")
for name, n in [
    ("int-zero", 0),
    ("int-one", 1),
    ("int-minus-one", -1),
    ("int-42", 42),
    ("int-int4-max", 2**31 - 1),
    ("int-int4-min", -(2**31)),
    ("int-int4-max-plus-one", 2**31),
    ("int-uint32-max", 2**32 - 1),
    ("int-2-pow-40", 2**40),
    ("int-int64-max-minus-one", 2**63 - 2),
    ("int-int64-max", 2**63 - 1),
    ("int-int64-max-plus-one", 2**63),
    ("int-uint64-max-minus-one", 2**64 - 2),
    ("int-uint64-max", 2**64 - 1),
]:
    from_execnet(name, n)

comment("Integers below -2**31: execnet 1.9 cannot write them, we write LONGINT")
from_hand("int-int4-min-minus-one", -(2**31) - 1, "both")
from_hand("int-minus-2-pow-40", -(2**40), "both")
from_hand("int-int64-min", -(2**63), "both")
from_hand("int-int64-min-plus-one", -(2**63) + 1, "both")

comment("Other spellings of integers that readers accept")
add("longint-small", "decode", sized(b"H", b"42") + b"Q", "int64 42")
add("longint-negative-small", "decode", sized(b"H", b"-7") + b"Q", "int64 -7")
add("longint-leading-zeros", "decode", sized(b"H", b"007") + b"Q", "int64 7")
add("longint-minus-zero", "decode", sized(b"H", b"-0") + b"Q", "int64 0")

comment("Integers beyond int64 and uint64: no GVariant form")
unmappable("int-uint64-max-plus-one", 2**64)
unmappable("int-2-pow-70", 2**70)
unmappable("int-10-pow-40", 10**40)
unmappable("int-int64-min-minus-one", -(2**63) - 1, data=program(-(2**63) - 1))
unmappable("int-minus-2-pow-70", -(2**70), data=program(-(2**70)))
unmappable("int-in-list-2-pow-70", [1, 2**70])

comment("Floats: FLOAT, 8 bytes big-endian")
# The smallest subnormal (5e-324) is left out: GLib's text parser refuses
# it ("number too big"), so it cannot be written in the TEXT column.
for name, x in [
    ("float-zero", 0.0),
    ("float-minus-zero", -0.0),
    ("float-one", 1.0),
    ("float-one-and-a-half", 1.5),
    ("float-minus-two-and-a-half", -2.5),
    ("float-one-tenth", 0.1),
    ("float-pi", math.pi),
    ("float-1e16", 1e16),
    ("float-1e300", 1e300),
    ("float-minus-1e-300", -1e-300),
    ("float-max", sys.float_info.max),
    ("float-min-normal", sys.float_info.min),
    ("float-inf", math.inf),
    ("float-minus-inf", -math.inf),
    ("float-nan", math.nan),
]:
    from_execnet(name, x)

comment("Complex numbers: decode-only, as (dd)")
from_execnet("complex", complex(1.5, -2.0), "decode")
from_execnet("complex-zero", complex(0.0, 0.0), "decode")
from_execnet("complex-inf", complex(math.inf, -math.inf), "decode")
from_execnet("complex-in-list", [1j, 2], "decode")
comment("... while a (dd) tuple is a tuple of two floats both ways")
from_execnet("tuple-two-floats", (1.5, -2.0))

comment("Strings: PY3STRING, UTF-8")
for name, text in [
    ("str-empty", ""),
    ("str-a", "a"),
    ("str-hello", "hello, world"),
    ("str-single-quote", "it's"),
    ("str-double-quote", 'say "hi"'),
    ("str-both-quotes", "'\""),
    ("str-backslash", "a\\b"),
    ("str-whitespace", "line 1\nline 2\tend\r\n"),
    ("str-controls", "\x01\x1f\x7f\x07\x08\x0b\x0c"),
    ("str-latin1", "héllo wörld ÿ"),
    ("str-greek-cyrillic", "αβγ ключ"),
    ("str-cjk", "中文 日本語 한국어"),
    ("str-astral", "😀 𝄞"),
    ("str-format-char", "a\u200bb"),
    ("str-long", "execnet-glib ✓ " * 100),
]:
    from_execnet(name, text)
unmappable("str-with-nul", "a\0b")
corrupt("str-invalid-utf8", sized(b"N", b"\xc3(") + b"Q")
corrupt("str-surrogate", sized(b"N", b"\xed\xa0\x80") + b"Q")

comment("Bytes: BYTES")
from_execnet("bytes-empty", b"")
from_execnet("bytes-a", b"a")
from_execnet("bytes-nul", b"\0")
from_execnet("bytes-nuls", b"\0\0\0")
from_execnet("bytes-binary", b"\x00\x01\x7f\x80\xfe\xff")
from_execnet("bytes-nul-terminated", b"ab\0")
from_execnet("bytes-nul-terminated-escapes", b"a'\n\\\x01\xff\0")
from_execnet("bytes-inner-nul", b"a\0b")
from_execnet("bytes-utf8-text", "héllo".encode("utf-8"))
from_execnet("bytes-long", bytes(range(256)) * 8)

comment("Python 2 strings (PY2STRING): text if valid UTF-8 without nul, else bytes")
from_hand("py2str-ascii", Py2Str(b"abc"))
from_hand("py2str-empty", Py2Str(b""))
from_hand("py2str-utf8", Py2Str("héllo".encode("utf-8")))
from_hand("py2str-latin1", Py2Str("héllo".encode("latin-1")))
from_hand("py2str-nul", Py2Str(b"a\0b"))
from_hand("py2str-nul-terminated", Py2Str(b"ab\0"))
from_hand("py2str-in-tuple", (Py2Str(b"key"), Py2Str(b"\xff")))

comment("Python 2 unicode (UNICODE): text")
from_hand("py2unicode-ascii", Py2Unicode("abc"))
from_hand("py2unicode-empty", Py2Unicode(""))
from_hand("py2unicode-non-ascii", Py2Unicode("ключ 中文 😀"))
unmappable("py2unicode-nul", Py2Unicode("a\0b"), data=program(Py2Unicode("a\0b")))
corrupt("py2unicode-invalid-utf8", sized(b"S", b"\xff") + b"Q")

comment("Python 2 long (LONG: int4, LONGLONG: decimal)")
from_hand("py2long-zero", Py2Long(0))
from_hand("py2long-small", Py2Long(5))
from_hand("py2long-negative", Py2Long(-7))
from_hand("py2long-int4-min", Py2Long(-(2**31)))
from_hand("py2long-big", Py2Long(2**40))
from_hand("py2long-int64-min", Py2Long(-(2**63)))
from_hand("py2long-uint64-max", Py2Long(2**64 - 1))
unmappable("py2long-too-big", Py2Long(2**64), data=program(Py2Long(2**64)))
from_hand("py2-mixed-tuple", (Py2Str(b"s"), Py2Unicode("u"), Py2Long(1), Py2Long(2**33)))

comment("Lists: NEWLIST n, then index, item, SETITEM for each item; av")
for name, value in [
    ("list-empty", []),
    ("list-one", [1]),
    ("list-none", [None]),
    ("list-mixed", [1, "a", b"b", None, True, 1.5, 2**63]),
    ("list-nested-empty", [[], [[]]]),
    ("list-nested", [[1, 2], [3], ["x", ["y"]]]),
    ("list-of-tuples", [(1, "a"), (), (None,)]),
    ("list-of-dicts", [{}, {"a": 1}]),
    ("list-long", list(range(300))),
]:
    from_execnet(name, value)


def nested_lists(levels):
    value = []
    for _ in range(levels - 1):
        value = [value]
    return value


# GLib's text parser takes about 64 nested lists; the limits of the codec
# itself (200 levels) are tested in test-value.c.
from_execnet("list-nested-50", nested_lists(50))

comment("Lists filled out of order: Python's reader takes them too")
add("list-reversed", "decode",
    b"K" + int4(2) + b"F" + int4(1) + b"R" + b"P" + b"F" + int4(0) + b"C" + b"P" + b"Q",
    "[<false>, <true>]")
add("list-unset-slots", "decode",
    b"K" + int4(3) + b"F" + int4(1) + sized(b"N", b"x") + b"P" + b"Q",
    "[<@mv nothing>, <'x'>, <@mv nothing>]")
add("list-slot-set-twice", "decode",
    b"K" + int4(1) + b"F" + int4(0) + b"F" + int4(1) + b"P"
    + b"F" + int4(0) + b"F" + int4(2) + b"P" + b"Q",
    "[<int64 2>]")
add("list-index-as-longint", "decode",
    b"K" + int4(1) + sized(b"H", b"0") + b"L" + b"P" + b"Q",
    "[<@mv nothing>]")
corrupt("list-index-out-of-range",
        b"K" + int4(1) + b"F" + int4(1) + b"L" + b"P" + b"Q")
# Python would store it at the end: negative indexes are ours to refuse.
corrupt("list-index-negative",
        b"K" + int4(1) + b"F" + int4(-1) + b"L" + b"P" + b"Q")

comment("Tuples: the items, then BUILDTUPLE n; a tuple of the items' types")
for name, value in [
    ("tuple-empty", ()),
    ("tuple-one", (1,)),
    ("tuple-none", (None,)),
    ("tuple-pair", (1, "a")),
    ("tuple-scalars", (None, True, False, -1, 2**64 - 1, 0.5, "s", b"b")),
    ("tuple-nested-empty", ((),)),
    ("tuple-nested", ((1, (2, (3,))), "x")),
    ("tuple-containers", ([1], {"a": 2}, (), [], {})),
    ("tuple-exec-message", ("channel.send(1)", None, None, {})),
    ("tuple-call-message", ("def f(channel, x): pass", "f.py", "f", {"x": 1})),
]:
    from_execnet(name, value)

# 128 nested tuples have a GVariant type, 129 do not. The text of the first
# is beyond what g_variant_parse() accepts, so only the error is a vector.
deep = 1
for _ in range(129):
    deep = (deep,)
unmappable("tuple-nested-129", deep, data=dumps_internal(deep))

comment("Dicts: NEWDICT, then key, value, SETITEM for each; a{?v} by key type")
for name, value in [
    ("dict-empty", {}),
    ("dict-one", {"a": 1}),
    ("dict-order-kept", {"b": 1, "a": 2, "c": 3}),
    ("dict-nested", {"a": 1, "b": [1, None], "c": {"d": None}, "e": ()}),
    ("dict-non-ascii-keys", {"ключ": "значение", "中": "文"}),
    ("dict-int-keys", {1: "a", -5: "b", 2**40: "c", 0: None}),
    ("dict-uint64-keys", {2**63: "a", 2**64 - 1: "b"}),
    ("dict-float-keys", {1.5: 1, -2.0: 2}),
    ("dict-bool-keys", {True: 1, False: 0}),
    ("dict-channel-keys", {Channel(1): "a", Channel(3): "b"}),
    ("dict-status-reply", {"numchannels": 0, "numexecuting": 0, "execmodel": "thread"}),
]:
    from_execnet(name, value)
add("dict-duplicate-key", "decode",
    b"J" + sized(b"N", b"a") + b"F" + int4(1) + b"P"
    + sized(b"N", b"b") + b"F" + int4(2) + b"P"
    + sized(b"N", b"a") + b"F" + int4(3) + b"P" + b"Q",
    "{'a': <int64 3>, 'b': <int64 2>}")

comment("Dicts GVariant cannot key: a(vv) key/value pairs, decode-only")
from_execnet("dict-mixed-keys", {1: "a", "b": 2}, "decode")
from_execnet("dict-int64-and-uint64-keys", {1: "a", 2**63: "b"}, "decode")
from_execnet("dict-none-key", {None: 1}, "decode")
from_execnet("dict-tuple-key", {(1, 2): "x"}, "decode")
from_execnet("dict-bytes-key", {b"k": 1}, "decode")
from_execnet("dict-frozenset-key", {frozenset(): 1}, "decode")
unmappable("dict-key-beyond-uint64", {2**70: 1})

comment("Sets and frozensets: decode-only, as av in the order written")
from_execnet("set-empty", set(), "decode")
from_execnet("set-ints", {3, 1, 2}, "decode")
from_execnet("set-mixed", {(1, 2), 3, 2.5}, "decode")
from_execnet("frozenset-empty", frozenset(), "decode")
from_execnet("frozenset-ints", frozenset({7, 8}), "decode")
from_execnet("set-in-dict", {"s": {1}, "f": frozenset({2})}, "decode")

comment("Channels: CHANNEL id; objectpath /org/execnet/channel/<id>")
from_execnet("channel-zero", Channel(0))
from_execnet("channel-one", Channel(1))
from_execnet("channel-int4-max", Channel(2**31 - 1))
from_execnet("channel-in-list", [Channel(3), Channel(4)])
from_execnet("channel-in-tuple", (Channel(5), "x"))
corrupt("channel-negative", b"B" + int4(-1) + b"Q")

comment("GVariant types we send but never receive")
for name, text, value in [
    ("encode-byte-zero", "@y 0", 0),
    ("encode-byte-max", "@y 255", 255),
    ("encode-int16-min", "@n -32768", -32768),
    ("encode-uint16-max", "@q 65535", 65535),
    ("encode-int32-max", "2147483647", 2**31 - 1),
    ("encode-int32-min", "-2147483648", -(2**31)),
    ("encode-uint32-int4-max-plus-one", "@u 2147483648", 2**31),
    ("encode-uint32-max", "@u 4294967295", 2**32 - 1),
    ("encode-uint64-small", "@t 5", 5),
    ("encode-uint64-int4-max", "@t 2147483647", 2**31 - 1),
    ("encode-int64-small", "@x -5", -5),
    ("encode-signature", "@g 'a{sv}'", "a{sv}"),
    ("encode-objectpath", "objectpath '/org/example/x'", "/org/example/x"),
    ("encode-objectpath-leading-zero", "objectpath '/org/execnet/channel/07'",
     "/org/execnet/channel/07"),
    ("encode-objectpath-beyond-int4", "objectpath '/org/execnet/channel/2147483648'",
     "/org/execnet/channel/2147483648"),
    ("encode-array-of-strings", "['a', 'b']", ["a", "b"]),
    ("encode-array-of-strings-empty", "@as []", []),
    ("encode-array-of-int32", "[1, -2]", [1, -2]),
    ("encode-array-of-arrays", "[[1], [2, 3], @ai []]", [[1], [2, 3], []]),
    ("encode-array-of-tuples", "[(1, 'a'), (2, 'b')]", [(1, "a"), (2, "b")]),
    ("encode-array-of-bytestrings", "[[byte 0x61], @ay []]", [b"a", b""]),
    ("encode-array-of-maybes", "[@mi 5, nothing]", [5, None]),
    ("encode-array-of-doubles", "[0.5, -1.0]", [0.5, -1.0]),
    ("encode-dict-of-strings", "{'k': 'v', 'a': 'b'}", {"k": "v", "a": "b"}),
    ("encode-dict-int32-keys", "{1: true, -1: false}", {1: True, -1: False}),
    ("encode-dict-empty-typed", "@a{ss} {}", {}),
    ("encode-dict-of-dicts", "{'a': {'b': 1}}", {"a": {"b": 1}}),
    ("encode-dict-entry", "{1, 'a'}", (1, "a")),
    ("encode-maybe-just", "@ms 'x'", "x"),
    ("encode-maybe-nothing", "@ms nothing", None),
    ("encode-maybe-just-nothing", "@mms just nothing", None),
    ("encode-maybe-in-tuple", "(@ms nothing, 1)", (None, 1)),
    ("encode-variant", "<'x'>", "x"),
    ("encode-variant-nested", "<<<int64 5>>>", 5),
    ("encode-variant-of-maybe", "<@mi nothing>", None),
    ("encode-int64-below-int4-in-tuple", "(@x -2147483649, @n -1)", (-(2**31) - 1, -1)),
]:
    encode_only(name, text, value)

comment("GVariant types that cannot be sent")
add("encode-error-handle", "encode-error", "UNSUPPORTED_VALUE", "@h 1")
add("encode-error-handle-in-list", "encode-error", "UNSUPPORTED_VALUE", "[@h 1]")
add("encode-error-handle-in-tuple", "encode-error", "UNSUPPORTED_VALUE", "(1, @h 2)")
add("encode-error-handle-in-dict", "encode-error", "UNSUPPORTED_VALUE", "{'h': @h 2}")
add("encode-error-handle-in-variant", "encode-error", "UNSUPPORTED_VALUE", "[<@h 3>]")

comment("Corrupt programs (execnet's reader stops on most of these as well)")
corrupt("empty", b"")
corrupt("no-stop", b"L")
corrupt("stop-only", b"Q")
corrupt("two-values", b"LLQ")
corrupt("trailing-bytes", b"LQL")
corrupt("unknown-opcode", b"ZQ")
corrupt("opcode-below-range", b"?Q")
corrupt("truncated-int4", b"F\0\0")
corrupt("truncated-float", b"D\0\0\0\0Q")
corrupt("truncated-complex", b"T" + struct.pack("!d", 1.0) + b"Q")
corrupt("length-past-end", b"A" + int4(5) + b"abQ")
corrupt("negative-length", b"N" + int4(-1) + b"Q")
corrupt("longint-no-digits", sized(b"H", b"") + b"Q")
corrupt("longint-plus-sign", sized(b"H", b"+5") + b"Q")
corrupt("longint-not-digits", sized(b"H", b"12a") + b"Q")
corrupt("buildtuple-too-few", b"L@" + int4(2) + b"Q")
corrupt("buildtuple-negative", b"@" + int4(-1) + b"Q")
corrupt("setitem-too-few", b"JLPQ")
corrupt("setitem-on-tuple", b"@" + int4(0) + b"LLPQ")
corrupt("list-index-not-int", b"K" + int4(1) + sized(b"N", b"0") + b"LPQ")
corrupt("newlist-huge", b"K" + int4(INT4_MAX) + b"Q")
corrupt("list-nested-201", dumps_internal(nested_lists(201)))

comment("execnet's dumps(): a version byte (1 in execnet 1.x) before the program")
from_dumps("dumps-none", None)
from_dumps("dumps-int", 1)
from_dumps("dumps-big-int", 2**63)
from_dumps("dumps-str", "héllo")
from_dumps("dumps-bytes", b"\0\xff")
from_dumps("dumps-list", [1, "a", None])
from_dumps("dumps-dict", {"a": (1, 2.5), "b": [b"x"]})
from_dumps("dumps-set", {1, 2})
from_dumps("dumps-complex", 1 + 2j)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "data", "vectors.txt")
    lines = [
        "# execnet serialization test vectors: generated by tests/gen-vectors.py",
        "# from Python execnet's own serializer; do not edit by hand.",
        "# NAME<TAB>MODE<TAB>HEX<TAB>TEXT; the modes are explained in the script.",
    ]
    for entry in vectors:
        if entry[0] == "#":
            lines.append("")
            lines.append("# " + entry[1])
        else:
            lines.append("\t".join(entry))
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
