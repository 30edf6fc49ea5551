"""cln_guest: write a cln-wasm-host guest (a Core Lightning plugin) in Python.

componentize-py turns the WIT world `cln:plugin/plugin` into raw bindings
(`wit_world`): dataclasses, JSON as text, results as `Err` exceptions. This kit
puts Python idioms on top of them:

    from cln_guest import Plugin, RpcError, node, log

    plugin = Plugin()
    plugin.option("greeting", default="hello", description="what to say")
    plugin.rpc("getinfo", reason="to name the node")

    @plugin.method("hello", usage="[name]", description="Say hello")
    def hello(params):                 # params: list or dict, as sent
        if not params:
            raise RpcError(1, "whom should I greet?")
        log("info", "greeting someone")
        node_id = node.getinfo(filter={"id": True})["id"]
        return {"from": node_id, "says": plugin.options["greeting"]}

    WitWorld = plugin.world()          # what componentize-py exports

The module is imported once at build time (componentize-py pre-initializes
it): declare options and methods at top level, but touch `node`, `log` and
`plugin.options` only inside your functions, when there is a node.
"""

import json
import sys
import traceback
from typing import Any, Callable, Dict, List, Optional

import wit_world
from componentize_py_types import Err
from wit_world.imports import config, events, request, types
from wit_world.imports import node as _node
from wit_world.imports import store as _store

__all__ = ["Plugin", "RpcError", "node", "store", "log", "emit"]

CONTINUE = '{"result": "continue"}'

# JSON-RPC codes the kit uses itself; your own errors should use codes outside
# the reserved -32768..-32000 range.
METHOD_NOT_FOUND = -32601
INTERNAL_ERROR = -32603


class RpcError(Exception):
    """A JSON-RPC error. Raise it from a method to answer with it; the node
    raises it when it refuses a call. `data` is any JSON-serializable value."""

    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def __repr__(self) -> str:
        return f"RpcError({self.code}, {self.message!r}, data={self.data!r})"

    @classmethod
    def _from_wit(cls, e: types.RpcError) -> "RpcError":
        return cls(e.code, e.message, None if e.data is None else json.loads(e.data))

    def _to_wit(self) -> types.RpcError:
        data = None if self.data is None else _dumps(self.data)
        return types.RpcError(self.code, self.message, data)


def _dumps(value: Any) -> str:
    # Compact, UTF-8 kept as is, no NaN/Infinity (not JSON): like serde_json.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _call(f: Callable, *args) -> Any:
    """A world import, its `Err` raised as `RpcError`."""
    try:
        return f(*args)
    except Err as e:
        raise RpcError._from_wit(e.value) from None


def _node_call(f: Callable, *args) -> Any:
    return json.loads(_call(f, *args))


class _Node:
    """The node's RPC, limited to what the manifest asks (`Plugin.rpc`) and the
    operator's policy grants. Answers are parsed JSON; refusals and node errors
    raise `RpcError`. `filter` is a CLN filter such as `{"id": True}`."""

    def getinfo(self, filter: Optional[dict] = None) -> Any:
        return _node_call(_node.getinfo, None if filter is None else _dumps(filter))

    def call(self, method: str, params: Any = None, filter: Optional[dict] = None) -> Any:
        """Any node method; `params` is a dict or a list (default `{}`)."""
        params = {} if params is None else params
        return _node_call(_node.call, method, _dumps(params),
                          None if filter is None else _dumps(filter))


node = _Node()


class _Store:
    """The plugin's private key-value store in the node's datastore (asked for
    with `Plugin(store=True)`, granted by the operator); refusals raise
    `RpcError`."""

    def get(self, key: str) -> Optional[str]:
        return _call(_store.get, key)

    def set(self, key: str, value: str) -> None:
        _call(_store.set, key, value)

    def delete(self, key: str) -> None:
        _call(_store.delete, key)


store = _Store()

_LEVELS = {
    "debug": types.LogLevel.DEBUG,
    "info": types.LogLevel.INFO,
    "warn": types.LogLevel.WARN,
    "warning": types.LogLevel.WARN,
    "error": types.LogLevel.ERROR,
}


def log(level: str, msg: str) -> None:
    """A line in lightningd's log: level is debug, info, warn or error."""
    events.log(_LEVELS[level.lower()], str(msg))


def emit(topic: str, payload: Any = None) -> None:
    """Send the custom notification `topic` (declared with
    `Plugin.notification`, granted by the operator) with a JSON payload;
    a refusal raises `RpcError`."""
    _call(events.emit, topic, _dumps({} if payload is None else payload))


_OPTION_TYPES = {
    "string": types.OptionType.STRING,
    "int": types.OptionType.INT,
    "bool": types.OptionType.BOOL,
    "flag": types.OptionType.FLAG,
}


def _option_value(type: str, multi: bool, value: Any) -> types.OptionValue:
    if multi and type == "string":
        return types.OptionValue_StringList([str(v) for v in value])
    if multi and type == "int":
        return types.OptionValue_IntList([int(v) for v in value])
    if type == "string":
        return types.OptionValue_String(str(value))
    if type == "int":
        return types.OptionValue_Int(int(value))
    if type == "bool":
        return types.OptionValue_Bool(bool(value))
    raise ValueError(f"a {type} option takes no default")


def _python_value(value: types.OptionValue) -> Any:
    return value.value  # every variant case carries its value as `.value`


class Plugin:
    """A plugin's declarations (options, methods, node methods it calls) and
    the six exports of the WIT world, with defaults for what it does not use:
    `init` accepts, `hook` answers {"result": "continue"}, `notify` ignores,
    `set-option` refuses (see `on_init`, `hook`, `subscribe` and
    `on_set_option`)."""

    def __init__(self, dynamic: bool = True, store: bool = False, dir: Optional[str] = None):
        """`store`: the guest wants its key-value store (`store`); `dir`: why
        it wants a private directory of its own, which is then its current
        directory (`open("state.json", "w")`). Both work only where the
        operator's policy grants them too."""
        self.dynamic = dynamic
        self.store = store
        self.dir = dir
        self._options: List[types.OptionDecl] = []
        self._methods: Dict[str, Callable[[Any], Any]] = {}
        self._method_decls: List[types.MethodDecl] = []
        self._rpc: List[types.RpcRequest] = []
        self._init: Optional[Callable[[], None]] = None
        self._set_option: Optional[Callable[[str, Any], None]] = None
        self._hooks: Dict[str, Callable[[Any], Any]] = {}
        self._hook_decls: List[types.HookDecl] = []
        self._subscriptions: Dict[str, Callable[[Any, str], None]] = {}
        self._subscription_decls: List[types.TopicRequest] = []
        self._notifications: List[types.TopicRequest] = []

    # -- declarations (at import time) ------------------------------------

    def option(self, name: str, default: Any = None, description: str = "",
               type: str = "string", multi: bool = False, dynamic: bool = False,
               deprecated: bool = False) -> None:
        """A startup option: type is string, int, bool or flag; `multi` options
        (string, int) may be given several times and read as a list."""
        if type not in _OPTION_TYPES:
            raise ValueError(f"option {name}: type must be one of {list(_OPTION_TYPES)}")
        value = None if default is None else _option_value(type, multi, default)
        self._options.append(types.OptionDecl(
            name, _OPTION_TYPES[type], value, description, multi, dynamic, deprecated))

    def method(self, name: str, usage: str = "", description: str = "",
               long_description: Optional[str] = None, deprecated: bool = False):
        """Decorator: `fn(params)` answers the RPC method `name`. params is the
        list or dict the caller sent; return any JSON-serializable value, or
        raise `RpcError`. Any other exception answers an internal error
        (-32603) and its traceback goes to lightningd's log."""
        def register(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
            self._methods[name] = fn
            self._method_decls.append(types.MethodDecl(
                name, usage, description, long_description, deprecated))
            return fn
        return register

    def rpc(self, method: str, reason: str) -> None:
        """Ask for a node method (getinfo included), with a reason the
        operator reads in `cln-wasm-host inspect`."""
        self._rpc.append(types.RpcRequest(method, reason))

    def hook(self, name: str, reason: str, before: Optional[List[str]] = None,
             after: Optional[List[str]] = None):
        """Decorator: `fn(payload)` answers the hook `name` (asked for with
        `reason`, granted by the operator) with a dict such as
        `{"result": "continue"}`; returning None answers continue. A hook that
        raises gets the host's safe default (continue) and a log line."""
        def register(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
            self._hooks[name] = fn
            self._hook_decls.append(types.HookDecl(name, list(before or []),
                                                   list(after or []), reason))
            return fn
        return register

    def subscribe(self, topic: str, reason: str):
        """Decorator: `fn(payload, topic)` receives the notification `topic`
        (`*` for every one), asked for with `reason`."""
        def register(fn: Callable[[Any, str], None]) -> Callable[[Any, str], None]:
            self._subscriptions[topic] = fn
            self._subscription_decls.append(types.TopicRequest(topic, reason))
            return fn
        return register

    def notification(self, topic: str, reason: str) -> None:
        """Declare a custom notification topic this plugin emits (see `emit`)."""
        self._notifications.append(types.TopicRequest(topic, reason))

    def on_init(self, fn: Callable[[], None]) -> Callable[[], None]:
        """Decorator: run `fn()` at lightningd's init; raising disables the
        plugin with the exception's text."""
        self._init = fn
        return fn

    def on_set_option(self, fn: Callable[[str, Any], None]) -> Callable[[str, Any], None]:
        """Decorator: `fn(name, value)` accepts a `setconfig` of a dynamic
        option by returning, refuses by raising (the text is the reason)."""
        self._set_option = fn
        return fn

    # -- at run time ---------------------------------------------------------

    @property
    def options(self) -> Dict[str, Any]:
        """The startup options as set (or defaulted), e.g. {"foo_opt": "bar"}."""
        return json.loads(config.options())

    def manifest(self) -> types.Manifest:
        return types.Manifest(
            dynamic=self.dynamic,
            options=list(self._options),
            methods=list(self._method_decls),
            rpc=list(self._rpc),
            wants_store=self.store,
            dir=self.dir,
            hooks=list(self._hook_decls),
            subscriptions=list(self._subscription_decls),
            notifications=list(self._notifications),
            featurebits=types.Featurebits(None, None, None, None, ""),
            custommessages=[],
        )

    def world(self) -> type:
        """The class componentize-py exports: bind it to `WitWorld` at the top
        level of your app module."""
        plugin = self

        class WitWorld(wit_world.WitWorld):
            def manifest(self) -> types.Manifest:
                return plugin.manifest()

            def init(self) -> None:
                if plugin._init is not None:
                    try:
                        plugin._init()
                    except Exception as e:
                        raise Err(str(e) or type(e).__name__)

            def handle(self) -> str:
                name = request.method()
                fn = plugin._methods.get(name)
                try:
                    if fn is None:
                        raise RpcError(METHOD_NOT_FOUND, f"unknown method {name}")
                    return _dumps(fn(json.loads(request.params())))
                except RpcError as e:
                    raise Err(e._to_wit())
                except Exception as e:
                    traceback.print_exc(file=sys.stderr)
                    raise Err(types.RpcError(INTERNAL_ERROR, f"{type(e).__name__}: {e}", None))

            def hook(self, name: str, payload: str) -> str:
                fn = plugin._hooks.get(name)
                if fn is None:
                    return CONTINUE
                try:
                    answer = fn(json.loads(payload))
                except Exception:
                    traceback.print_exc(file=sys.stderr)
                    return "null"  # not an object: the host answers the safe default
                return CONTINUE if answer is None else _dumps(answer)

            def notify(self, topic: str, payload: str) -> None:
                fn = plugin._subscriptions.get(topic) or plugin._subscriptions.get("*")
                if fn is None:
                    return
                try:
                    fn(json.loads(payload), topic)
                except Exception:
                    traceback.print_exc(file=sys.stderr)

            def set_option(self, name: str, value: types.OptionValue) -> None:
                if plugin._set_option is None:
                    raise Err(f"{name} cannot be changed at runtime")
                try:
                    plugin._set_option(name, _python_value(value))
                except Exception as e:
                    raise Err(str(e) or type(e).__name__)

        return WitWorld
