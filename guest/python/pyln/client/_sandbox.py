"""pyln-client's transport, replaced by the cln-wasm-host world.

pyln-client's Plugin reads lightningd's requests from stdin and writes its
answers to stdout; its LightningRpc opens the node's unix socket. A guest has
neither: the host speaks the protocol and calls the guest's exports. So this
module (cln-wasm-host's own, not pyln-client's) changes only the ends:

- `Plugin.run()` records the plugin and returns; the build's app module
  (written by pyln-build.sh) exports `world()`, which hands lightningd's
  calls, hooks, notifications and setconfig to pyln-client's own dispatch
  (`_dispatch_request`, `_dispatch_notification`, `_set_config`);
- what pyln-client writes (`_write_locked`, `Request._write_result`) is
  caught: a call's answer becomes the export's result, `log` a log line,
  `message`/`progress` log lines too (the world has no channel to the caller),
  any other notification `events.emit`;
- `LightningRpc.call` goes through the node capability (`node.call`), so the
  operator's grants apply; a refusal raises pyln's own `RpcError`.

What the sandbox cannot do fails loudly, naming the sandbox, rather than
giving a wrong answer: starting a thread, opening a socket or starting a
process raise at once (the build also refuses plugins importing threading,
socket, subprocess and the like, see pyln_scan.py).

Files: a plugin whose source uses them (the build's scan finds `open`,
`os.makedirs`, `Path.write_text`…) asks for its private directory, which the
operator grants or not (`[grants] dir`). It is the guest's current directory,
and `plugin.lightning_dir` is `.`, so `os.path.join(plugin.lightning_dir,
"backup.json")` lands there. `open` takes relative paths within it only: an
absolute path or `..` is refused naming the sandbox, as is any file when the
plugin asked for none or the operator granted none.
"""

import builtins
import inspect
import io
import json
import os
import sys
import traceback

import wit_world
from componentize_py_types import Err
from wit_world.imports import config, events, request as wit_request, types
from wit_world.imports import node as _node

from . import lightning as _lightning
from . import plugin as _plugin

SANDBOX = "the cln-wasm-host sandbox"

_LEVELS = {
    "io": types.LogLevel.DEBUG,
    "trace": types.LogLevel.DEBUG,
    "debug": types.LogLevel.DEBUG,
    "info": types.LogLevel.INFO,
    "unusual": types.LogLevel.WARN,
    "warn": types.LogLevel.WARN,
    "warning": types.LogLevel.WARN,
    "broken": types.LogLevel.ERROR,
    "error": types.LogLevel.ERROR,
}

# The plugin `Plugin.run()` handed over, and the request being answered.
_PLUGIN = None
_CURRENT = None
_READY = False
_NAME = "plugin"


def _log(level, message):
    events.log(_LEVELS.get(str(level).lower(), types.LogLevel.INFO), str(message))


def _dumps(value):
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


# -- refusals -------------------------------------------------------------


def _refuse(what):
    def refused(*args, **kwargs):
        raise PermissionError(f"{SANDBOX} does not allow {what}")
    return refused


_REAL_OPEN = builtins.open


def _granted():
    """Whether the host preopened a private directory (without one, WASI
    resolves no path at all)."""
    try:
        os.stat(".")
        return True
    except OSError:
        return False


def _open(file, mode="r", *args, **kwargs):
    """open(): relative paths in the private directory, when asked for and
    granted; anything else refused naming the sandbox."""
    if isinstance(file, int):
        return _REAL_OPEN(file, mode, *args, **kwargs)  # a descriptor it already holds
    if _DIR is None:
        raise PermissionError(f"{SANDBOX} gives this plugin no files: open({file!r})")
    path = os.fsdecode(os.fspath(file))
    if os.path.isabs(path) or ".." in path.replace("\\", "/").split("/"):
        raise PermissionError(f"{SANDBOX} gives this plugin only its private directory, "
                              f"by relative paths without '..': open({file!r})")
    try:
        return _REAL_OPEN(file, mode, *args, **kwargs)
    except OSError:
        if not _granted():
            raise PermissionError(
                f"{SANDBOX} gives this plugin no files: the operator has not granted it "
                f"a private directory ([grants] dir in its policy): open({file!r})") from None
        raise


def _guard():
    """Make what the sandbox refuses fail with a message naming it."""
    import threading
    threading.Thread.start = _refuse(
        "threads: a plugin runs only inside the call, hook or notification it answers "
        "(no background work)")
    import _thread
    _thread.start_new_thread = _refuse("threads")
    try:
        import socket
        socket.socket.__init__ = _refuse("sockets: the node is reached through plugin.rpc")
        socket.create_connection = _refuse("sockets")
    except ImportError:
        pass
    try:
        import subprocess
        subprocess.Popen.__init__ = _refuse("processes")
    except ImportError:
        pass
    for name in ("system", "fork", "execv", "execve", "popen", "spawnv"):
        if hasattr(os, name):
            setattr(os, name, _refuse(f"processes (os.{name})"))
    builtins.open = _open
    io.open = _open


# -- pyln-client's ends ---------------------------------------------------


def _run(self):
    """Plugin.run(): hand the plugin to the guest's exports and return."""
    global _PLUGIN
    _PLUGIN = self


# What pyln-client wrote while the module was imported at build time (no host
# then): sent at the first export the host calls.
_EARLY = []
_LIVE = False


def _go_live(flush=False):
    """Every instance starts from the build's snapshot, so only `init` (run
    once) sends what was written then; the others drop it."""
    global _LIVE
    if not _LIVE:
        _LIVE = True
        early = list(_EARLY)
        _EARLY.clear()
        for plugin, obj in early if flush else []:
            _write_locked(plugin, obj)


def _write_locked(self, obj):
    """Plugin._write_locked: what pyln-client would write on stdout."""
    if not _LIVE:
        _EARLY.append((self, obj))
        return
    method = obj.get("method") if isinstance(obj, dict) else None
    if method is None:
        _log("warn", f"pyln-client wrote a message that is not a notification: {obj!r}")
        return
    params = obj.get("params") or {}
    if method == "log":
        _log(params.get("level", "info"), params.get("message", ""))
    elif method == "message":
        _log(params.get("level", "info"), params.get("message", ""))
    elif method == "progress":
        _log("debug", f"progress {params.get('num')}/{params.get('total')}")
    else:
        try:
            events.emit(method, _dumps(params))
        except Err as e:
            # The host has logged the refusal and counted it; say it here too.
            _log("warn", f"notification {method!r} not sent: {e.value.message}")


def _write_result(self, result):
    """Request._write_result: a call's answer, or a notification about it."""
    if "method" in result:
        return _write_locked(self.plugin, result)
    if self is not _CURRENT:
        _log("warn", f"an answer to {self.method!r} came after its call had returned: "
             f"{SANDBOX} runs no background work, so it is dropped")
        return
    self._answer = result


def _rpc_call(self, method, payload=None, cmdprefix=None, filter=None):
    """UnixDomainSocketRpc.call through the node capability."""
    if payload is None:
        payload = {}
    if isinstance(payload, dict):
        payload = {k: v for k, v in payload.items() if v is not None}
    elif isinstance(payload, tuple):
        payload = list(payload)
    if filter is None:
        filter = self._filter
    text_filter = None if filter is None else _dumps(filter)
    try:
        if method == "getinfo" and not payload:
            text = _node.getinfo(text_filter)
        else:
            text = _node.call(method, _dumps(payload), text_filter)
    except Err as e:
        error = {"code": e.value.code, "message": e.value.message}
        if e.value.data is not None:
            error["data"] = json.loads(e.value.data)
        raise _lightning.RpcError(method, payload, error) from None
    return json.loads(text)


_plugin.Plugin.run = _run
_plugin.Plugin._write_locked = _write_locked
_plugin.Request._write_result = _write_result
_lightning.UnixDomainSocketRpc.call = _rpc_call


# -- the world's exports ----------------------------------------------------


def _where(fn):
    try:
        return f"{os.path.basename(inspect.getsourcefile(fn) or '?')}:{fn.__code__.co_firstlineno}"
    except (TypeError, AttributeError):
        return getattr(fn, "__name__", "?")


def _asks():
    return [types.RpcRequest(m, reason) for m, reason in _ASKS]


# Read at build time (the module is imported then; a guest has no files later).
try:
    import pyln_asks  # written by pyln-build.sh from the source scan
    _ASKS = pyln_asks.RPC
    _DIR = pyln_asks.DIR
except ImportError:
    _ASKS, _DIR = [], None


_OPTION_TYPES = {
    "string": types.OptionType.STRING,
    "int": types.OptionType.INT,
    "bool": types.OptionType.BOOL,
    "flag": types.OptionType.FLAG,
}


def _default(opt):
    if opt.default is None or opt.opt_type == "flag":
        return None
    if opt.multi:
        values = opt.default if isinstance(opt.default, list) else [opt.default]
        if opt.opt_type == "int":
            return types.OptionValue_IntList([int(v) for v in values])
        return types.OptionValue_StringList([str(v) for v in values])
    if opt.opt_type == "int":
        return types.OptionValue_Int(int(opt.default))
    if opt.opt_type == "bool":
        d = opt.default
        return types.OptionValue_Bool(d if isinstance(d, bool) else str(d).lower() == "true")
    return types.OptionValue_String(str(opt.default))


def _manifest(plugin):
    m = plugin._getmanifest(**{"allow-deprecated-apis": config.allow_deprecated_apis()})
    options = [types.OptionDecl(o.name, _OPTION_TYPES[o.opt_type], _default(o),
                                o.description or "", bool(o.multi), bool(o.dynamic),
                                bool(o.deprecated))
               for o in plugin.options.values()]
    methods = [types.MethodDecl(d["name"], d["usage"], d["description"], None,
                                bool(plugin.methods[d["name"]].deprecated))
               for d in m["rpcmethods"]]
    hooks = [types.HookDecl(h["name"], list(h["before"]), list(h["after"]),
                            f"@plugin.hook {plugin.methods[h['name']].func.__name__} "
                            f"({_where(plugin.methods[h['name']].func)})")
             for h in m["hooks"]]
    subscriptions = [types.TopicRequest(t, f"@plugin.subscribe {fn.__name__} ({_where(fn)})")
                     for t, fn in plugin.subscriptions.items()]
    notifications = [types.TopicRequest(t, "plugin.add_notification_topic")
                     for t in plugin.notification_topics]
    f = m.get("featurebits", {})
    featurebits = types.Featurebits(f.get("init"), f.get("node"), None, f.get("invoice"),
                                    "pyln Plugin(init_features=, node_features=, invoice_features=)")
    custom = [types.MessageRequest(int(t), "pyln Plugin(custom_msgs=)")
              for t in (plugin.custom_msgs or [])]
    return types.Manifest(plugin.dynamic, options, methods, _asks(), False, _DIR, hooks,
                          subscriptions, notifications, featurebits, custom)


def _options():
    return json.loads(config.options())


def _ready(plugin):
    """pyln-client's init in this instance: every instance has its own memory
    (the host runs `init` in one of them), so each runs it before its first
    call, the @plugin.init function included. Returns what that answered."""
    global _READY
    if not sys.argv:
        sys.argv = [_NAME]  # LightningRpc names itself after argv[0]
    plugin.deprecated_apis = config.allow_deprecated_apis()
    configuration = json.loads(config.configuration())
    # No node files in a guest: LightningRpc's path is never opened.
    configuration.setdefault("lightning-dir", ".")
    configuration.setdefault("rpc-file", "lightning-rpc")
    configuration.setdefault("startup", True)
    req = _plugin.Request(plugin, None, "init", {"options": _options(),
                                                  "configuration": configuration})
    answer = plugin._exec_func(plugin._init, req)
    _READY = True
    return answer


def _refresh(plugin):
    """Option values as the host holds them (setconfig reaches one instance)."""
    for name, value in _options().items():
        if name in plugin.options:
            plugin.options[name].value = value


def _dispatch(plugin, method, params):
    """Runs one request through pyln-client's dispatch; its answer message."""
    global _CURRENT
    try:
        if not _READY:
            _ready(plugin)
        else:
            _refresh(plugin)
    except Exception as e:
        traceback.print_exc(file=sys.stderr)
        raise _rpc_error(-32603, f"the plugin's init failed in this instance: {type(e).__name__}: {e}")
    req = _plugin.Request(plugin, None, method, params)
    req._answer = None
    _CURRENT = req
    try:
        plugin._dispatch_request(req)
    finally:
        _CURRENT = None
    return req._answer


def _rpc_error(code, message):
    return Err(types.RpcError(code, message, None))


def world(module=None):
    """The class componentize-py exports (bound to WitWorld by the app): the
    plugin that called `run()`, else the module's one Plugin (a plugin that
    calls `run()` only under `if __name__ == "__main__"`)."""
    global _NAME
    if module is not None:
        _NAME = module.__name__
    plugin = _PLUGIN
    if plugin is None and module is not None:
        found = [v for v in vars(module).values() if isinstance(v, _plugin.Plugin)]
        plugin = found[0] if len(found) == 1 else None
    if plugin is None:
        raise RuntimeError("the plugin never called plugin.run() and holds no single "
                           "pyln.client.Plugin: nothing to serve")

    class WitWorld(wit_world.WitWorld):
        def manifest(self):
            _go_live()
            return _manifest(plugin)

        def init(self):
            _go_live(flush=True)
            try:
                answer = _ready(plugin)
            except Exception as e:
                traceback.print_exc(file=sys.stderr)
                raise Err(f"init failed: {type(e).__name__}: {e}")
            if isinstance(answer, dict) and "disable" in answer:
                raise Err(str(answer["disable"]))

        def handle(self):
            _go_live()
            name = wit_request.method()
            params = json.loads(wit_request.params())
            m = plugin.methods.get(name)
            if m is None or m.mtype != _plugin.MethodType.RPCMETHOD or \
                    name in ("init", "getmanifest", "setconfig"):
                raise _rpc_error(-32601, f"unknown method {name}")
            answer = _dispatch(plugin, name, params)
            if answer is None:
                raise _rpc_error(-32603, (
                    f"{name} returned without answering: {SANDBOX} runs no background "
                    "work, so an async method must call request.set_result before it returns"))
            if "error" in answer:
                e = answer["error"]
                raise _rpc_error(int(e.get("code", -32600)), str(e.get("message", "")))
            try:
                return _dumps(answer.get("result"))
            except (TypeError, ValueError) as e:
                raise _rpc_error(-32603, f"{name} answered what is not JSON: {e}")

        def hook(self, name, payload):
            _go_live()
            try:
                answer = _dispatch(plugin, name, json.loads(payload))
            except Err:
                return "null"
            if answer is None or "result" not in answer:
                # Not an object: the host answers the hook's safe default and logs why.
                return "null"
            return _dumps(answer["result"])

        def notify(self, topic, payload):
            _go_live()
            global _CURRENT
            try:
                if not _READY:
                    _ready(plugin)
            except Exception:
                traceback.print_exc(file=sys.stderr)
                return
            req = _plugin.Request(plugin, None, topic, json.loads(payload))
            req._answer = None
            _CURRENT = req
            try:
                plugin._dispatch_notification(req)
            finally:
                _CURRENT = None

        def set_option(self, name, value):
            _go_live()
            try:
                if not _READY:
                    _ready(plugin)
                plugin._set_config(name, value.value)
            except Exception as e:
                raise Err(str(e) or type(e).__name__)

    return WitWorld


_guard()
