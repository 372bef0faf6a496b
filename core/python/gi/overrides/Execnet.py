# Execnet.py: PyGObject overrides for Execnet-1.0
#
# Makes the GObject Introspection bindings feel like Python's execnet:
# channels take and give Python values (converted to and from GVariant as
# doc/protocol.md maps them), groups behave as containers and context
# managers, and errors are exceptions whose class names the ExecnetError
# code.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import functools
import inspect
import textwrap
import types

from gi.repository import GLib

from ..module import get_introspection_module
from ..overrides import override

Execnet = get_introspection_module('Execnet')

__all__ = []

_NO_ENDMARKER = object()


# Errors -------------------------------------------------------------------

class ExecnetError(GLib.Error):
    """An error of the EXECNET_ERROR domain; subclasses name the code."""


def _error_class(name, code, *bases):
    cls = type(name, (ExecnetError,) + bases, {'code_value': code})
    globals()[name] = cls
    __all__.append(name)
    return cls


__all__.append('ExecnetError')

_ERROR_CLASSES = {
    Execnet.Error.INVALID_SPEC: _error_class('InvalidSpecError', Execnet.Error.INVALID_SPEC, ValueError),
    Execnet.Error.UNKNOWN_TRANSPORT: _error_class('UnknownTransportError', Execnet.Error.UNKNOWN_TRANSPORT,
                                                  ValueError),
    Execnet.Error.HOST_NOT_FOUND: _error_class('HostNotFoundError', Execnet.Error.HOST_NOT_FOUND),
    Execnet.Error.CONNECTION_REFUSED: _error_class('ConnectionRefusedError_', Execnet.Error.CONNECTION_REFUSED),
    Execnet.Error.AUTHENTICATION: _error_class('AuthenticationError', Execnet.Error.AUTHENTICATION),
    Execnet.Error.BOOTSTRAP: _error_class('BootstrapError', Execnet.Error.BOOTSTRAP),
    Execnet.Error.REMOTE: _error_class('RemoteError', Execnet.Error.REMOTE),
    Execnet.Error.CHANNEL_CLOSED: _error_class('ChannelClosedError', Execnet.Error.CHANNEL_CLOSED, EOFError),
    Execnet.Error.GATEWAY_CLOSED: _error_class('GatewayClosedError', Execnet.Error.GATEWAY_CLOSED),
    Execnet.Error.PROTOCOL: _error_class('ProtocolError', Execnet.Error.PROTOCOL),
    Execnet.Error.UNSUPPORTED_VALUE: _error_class('UnsupportedValueError', Execnet.Error.UNSUPPORTED_VALUE,
                                                  TypeError),
    Execnet.Error.DUPLICATE_ID: _error_class('DuplicateIdError', Execnet.Error.DUPLICATE_ID, ValueError),
}
# Without the trailing underscore it would hide Python's own exception.
ConnectionRefusedError_.__name__ = ConnectionRefusedError_.__qualname__ = 'ConnectionRefusedError'
ConnectionRefusedError = ConnectionRefusedError_  # noqa: A001  (Execnet.ConnectionRefusedError)
__all__.append('ConnectionRefusedError')


class TimeoutError(GLib.Error, TimeoutError):  # noqa: A001
    """A timeout passed (G_IO_ERROR_TIMED_OUT); also Python's TimeoutError."""


__all__.append('TimeoutError')


def _translate(error):
    """The exception to raise for a GLib.Error from the library."""
    if error.domain == GLib.quark_to_string(Execnet.error_quark()):
        cls = _ERROR_CLASSES.get(error.code)
    elif error.domain == 'g-io-error-quark' and error.code == 24:  # G_IO_ERROR_TIMED_OUT
        cls = TimeoutError
    else:
        return error
    if cls is None:
        return error
    translated = cls(error.message, error.domain, error.code)
    translated.message = error.message
    return translated


def _raising(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except GLib.Error as error:
            translated = _translate(error)
            if translated is error:
                raise
            raise translated from None
    return wrapper


# Values -------------------------------------------------------------------

_DICT_KEY_TYPES = ((bool, 'b'), (int, 'x'), (float, 'd'), (str, 's'))


def to_variant(value):
    """A Python value as the GVariant channels send (doc/protocol.md)."""
    if isinstance(value, GLib.Variant):
        return value
    if isinstance(value, Execnet.Channel):
        return value.to_value()
    if value is None:
        return GLib.Variant('mv', None)
    if isinstance(value, bool):
        return GLib.Variant('b', value)
    if isinstance(value, int):
        if -2**63 <= value < 2**63:
            return GLib.Variant('x', value)
        if 0 <= value < 2**64:
            return GLib.Variant('t', value)
        raise UnsupportedValueError('integer %d does not fit in 64 bits; send it as a string'  # noqa: F821
                                    % value, GLib.quark_to_string(Execnet.error_quark()),
                                    int(Execnet.Error.UNSUPPORTED_VALUE))
    if isinstance(value, float):
        return GLib.Variant('d', value)
    if isinstance(value, str):
        return GLib.Variant('s', value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return GLib.Variant.new_from_bytes(GLib.VariantType('ay'), GLib.Bytes.new(bytes(value)), True)
    if isinstance(value, (list, set, frozenset)):
        return GLib.Variant.new_array(GLib.VariantType('v'),
                                      [GLib.Variant.new_variant(to_variant(v)) for v in value])
    if isinstance(value, tuple):
        return GLib.Variant.new_tuple(*[to_variant(v) for v in value])
    if isinstance(value, dict):
        key_type = 's'
        if value:
            kinds = {next((t for c, t in _DICT_KEY_TYPES if type(k) is c), None) for k in value}
            if len(kinds) != 1 or None in kinds:
                raise UnsupportedValueError(  # noqa: F821
                    'a dict whose keys are not all of one of the types bool, int, float or str '
                    'has no GVariant form; send a list of (key, value) tuples instead',
                    GLib.quark_to_string(Execnet.error_quark()), int(Execnet.Error.UNSUPPORTED_VALUE))
            key_type = kinds.pop()
        entries = [GLib.Variant.new_dict_entry(GLib.Variant(key_type, k),
                                               GLib.Variant.new_variant(to_variant(v)))
                   for k, v in value.items()]
        return GLib.Variant.new_array(GLib.VariantType('{%sv}' % key_type), entries)
    if isinstance(value, complex):
        return GLib.Variant('(dd)', (value.real, value.imag))
    raise UnsupportedValueError('a %s has no GVariant form' % type(value).__name__,  # noqa: F821
                                GLib.quark_to_string(Execnet.error_quark()),
                                int(Execnet.Error.UNSUPPORTED_VALUE))


def from_variant(variant, gateway=None):
    """A received GVariant as a Python value; channel paths become channels
    of @gateway."""
    if variant is None:
        return None
    type_string = variant.get_type_string()
    if type_string == 'v':
        return from_variant(variant.get_variant(), gateway)
    if type_string.startswith('m'):
        return None if variant.n_children() == 0 else from_variant(variant.get_child_value(0), gateway)
    if type_string == 'ay':
        return bytes(variant.get_data_as_bytes().get_data() or b'')
    if type_string == 'o':
        if gateway is not None:
            channel = gateway.channel_from_value(variant)
            if channel is not None:
                return channel
        return variant.get_string()
    if type_string.startswith('a{'):
        result = {}
        for i in range(variant.n_children()):
            entry = variant.get_child_value(i)
            result[from_variant(entry.get_child_value(0), gateway)] = \
                from_variant(entry.get_child_value(1), gateway)
        return result
    if type_string.startswith('a'):
        return [from_variant(variant.get_child_value(i), gateway) for i in range(variant.n_children())]
    if type_string.startswith('('):
        return tuple(from_variant(variant.get_child_value(i), gateway) for i in range(variant.n_children()))
    return variant.unpack()


__all__ += ['to_variant', 'from_variant']


def _timeout(timeout):
    return -1.0 if timeout is None else float(timeout)


def _source(source):
    """remote_exec's argument: source text, a function or a module."""
    if isinstance(source, str):
        return source, None
    if isinstance(source, types.ModuleType):
        return inspect.getsource(source), None
    if callable(source):
        return textwrap.dedent(inspect.getsource(source)), source.__name__
    raise TypeError('remote_exec takes source text, a function or a module, not %s'
                    % type(source).__name__)


# Channel ------------------------------------------------------------------

class Channel(Execnet.Channel):
    RemoteError = RemoteError  # noqa: F821
    TimeoutError = TimeoutError

    @_raising
    def send(self, item):
        """Sends a Python value (or a GLib.Variant) to the remote side."""
        return Execnet.Channel.send(self, to_variant(item))

    @_raising
    def receive(self, timeout=None):
        """The next item as a Python value; waits up to @timeout seconds
        (None: for ever)."""
        return from_variant(Execnet.Channel.receive(self, _timeout(timeout)), self.get_gateway())

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return self.receive()
        except ChannelClosedError:  # noqa: F821
            raise StopIteration from None

    next = __next__

    @_raising
    def close(self, error=None):
        return Execnet.Channel.close(self, error)

    @_raising
    def wait_close(self, timeout=None):
        return Execnet.Channel.wait_close(self, _timeout(timeout))

    waitclose = wait_close

    def isclosed(self):
        return self.is_closed()

    @property
    def id(self):
        return self.get_id()

    @property
    def gateway(self):
        return self.get_gateway()

    def set_callback(self, callback, endmarker=_NO_ENDMARKER):
        """Calls @callback(item) with each item as a Python value, in this
        thread's main context; then once with @endmarker, if given, when
        the channel has ended."""
        gateway = self.get_gateway()

        def deliver(channel, item, *unused):
            callback(from_variant(item, gateway))

        marker = None if endmarker is _NO_ENDMARKER else to_variant(endmarker)
        Execnet.Channel.set_callback(self, deliver, None, marker)

    setcallback = set_callback

    def __repr__(self):
        return self.to_string()


Channel = override(Channel)
__all__.append('Channel')


# Gateway ------------------------------------------------------------------

class Gateway(Execnet.Gateway):
    @_raising
    def remote_exec(self, source, **kwargs):
        """Runs source text, a function (called as function(channel,
        **kwargs)) or a module remotely; returns the channel."""
        text, function = _source(source)
        if function is None and not kwargs:
            return Execnet.Gateway.remote_exec(self, text)
        if function is None:
            raise TypeError('keyword arguments go with a function, not with source text')
        return Execnet.Gateway.remote_call(self, text, function,
                                           to_variant(kwargs) if kwargs else None)

    @_raising
    def remote_status(self):
        """The agent's status, with attributes numchannels, numexecuting
        and execmodel."""
        return types.SimpleNamespace(**from_variant(Execnet.Gateway.remote_status(self)))

    @_raising
    def remote_info(self):
        """The remote interpreter: executable, version_info, platform, cwd, pid."""
        return types.SimpleNamespace(**from_variant(Execnet.Gateway.remote_info(self)))

    _rinfo = remote_info

    @_raising
    def join(self, timeout=None):
        return Execnet.Gateway.join(self, _timeout(timeout))

    @property
    def id(self):
        return self.get_id()

    @property
    def spec(self):
        return self.get_xspec()

    def newchannel(self):
        return self.new_channel()

    def __repr__(self):
        return self.to_string()


Gateway = override(Gateway)
__all__.append('Gateway')


# MultiChannel --------------------------------------------------------------

class MultiChannel(Execnet.MultiChannel):
    def __len__(self):
        return self.get_size()

    def __getitem__(self, index):
        if not -len(self) <= index < len(self):
            raise IndexError('MultiChannel index out of range')
        return self.get_channel(index % len(self))

    def __iter__(self):
        return (self.get_channel(i) for i in range(len(self)))

    @_raising
    def send_each(self, item):
        return Execnet.MultiChannel.send_each(self, to_variant(item))

    @_raising
    def receive_each(self, timeout=None, withchannel=False):
        """One item from every channel, as a list (of (channel, item) pairs
        with @withchannel)."""
        items = Execnet.MultiChannel.receive_each(self, _timeout(timeout))
        values = [from_variant(items.get_child_value(i), self.get_channel(i).get_gateway())
                  for i in range(items.n_children())]
        if withchannel:
            return list(zip(self, values))
        return values

    @_raising
    def wait_close(self, timeout=None):
        return Execnet.MultiChannel.wait_close(self, _timeout(timeout))

    waitclose = wait_close


MultiChannel = override(MultiChannel)
__all__.append('MultiChannel')


# Group --------------------------------------------------------------------

class Group(Execnet.Group):
    @_raising
    def make_gateway(self, spec=None):
        return Execnet.Group.make_gateway(self, spec)

    makegateway = make_gateway

    @_raising
    def make_gateways(self, specs):
        return Execnet.Group.make_gateways(self, list(specs))

    @_raising
    def terminate(self, timeout=None):
        return Execnet.Group.terminate(self, _timeout(timeout))

    @_raising
    def remote_exec(self, source, **kwargs):
        """Runs source on every member; returns a MultiChannel."""
        channels = [gateway.remote_exec(source, **kwargs) for gateway in self]
        return Execnet.MultiChannel.new(channels)

    def __len__(self):
        return self.get_size()

    def __getitem__(self, key):
        if isinstance(key, int):
            gateway = self.get_gateway(key if key >= 0 else len(self) + key)
            if gateway is None:
                raise IndexError('Group index out of range')
            return gateway
        gateway = self.lookup(key)
        if gateway is None:
            raise KeyError(key)
        return gateway

    def __contains__(self, key):
        if isinstance(key, str):
            return self.lookup(key) is not None
        return self.contains(key)

    def __iter__(self):
        return iter([self.get_gateway(i) for i in range(self.get_size())])

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.terminate()
        return False

    def __repr__(self):
        return self.to_string()


Group = override(Group)
__all__.append('Group')


@_raising
def make_gateway(spec=None):
    return Execnet.make_gateway(spec)


makegateway = make_gateway
__all__ += ['make_gateway', 'makegateway']
