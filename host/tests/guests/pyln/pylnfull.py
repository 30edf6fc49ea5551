#!/usr/bin/env python3
"""A pyln-client plugin using what host/tests/pyln_guests.rs checks: options
of every type (one dynamic, with on_change), init, methods with `plugin` and
`request`, async methods, a hook, a subscription, a custom notification,
logging, node calls granted and not, a file kept in the lightning directory
(the guest's private directory), and what the sandbox refuses at run time
(threads, sockets, files outside). Written for pyln-client 25.12.1, as for a native run."""

import json
import os

from pyln.client import Millisatoshi, Plugin, RpcError

plugin = Plugin()
plugin.add_option("pf-greeting", "hello", "what to say")
plugin.add_option("pf-count", 3, "an int", opt_type="int")
plugin.add_option("pf-loud", False, "a bool", opt_type="bool")
plugin.add_flag_option("pf-flag", "a flag")
plugin.add_option("pf-deny", None, "peers to disconnect", multi=True)


def on_limit(plugin, name, value):
    if int(value) < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


plugin.add_option("pf-limit", 10, "a dynamic int", opt_type="int", dynamic=True,
                  on_change=on_limit)
plugin.add_notification_topic("pf_event")

connected = []


@plugin.init()
def init(options, configuration, plugin, **kwargs):
    plugin.log(f"pylnfull ready on {configuration['network']}")


@plugin.method("pf-options")
def pf_options(plugin):
    """the options, as get_option reads them"""
    return {name: plugin.get_option(name) for name in plugin.options}


@plugin.method("pf-info")
def pf_info(plugin, request, amount="1500msat"):
    """the node's id, and an amount doubled"""
    plugin.notify_message(request, "looking up the node")
    plugin.notify_progress(request, 1, 2)
    node_id = plugin.rpc.getinfo()["id"]
    return {"id": node_id, "doubled": str(Millisatoshi(amount) * 2)}


@plugin.method("pf-unasked")
def pf_unasked(plugin):
    """a node call the build's scan cannot see"""
    try:
        return getattr(plugin.rpc, "list" + "nodes")()
    except RpcError as e:
        return {"refused": e.error}


@plugin.async_method("pf-async")
def pf_async(request, x, plugin):
    """answered through request.set_result"""
    request.set_result({"x": x, "greeting": plugin.get_option("pf-greeting")})


@plugin.async_method("pf-never")
def pf_never(request):
    """never answers within its call"""


@plugin.method("pf-fail")
def pf_fail(what):
    """a pyln RpcException"""
    from pyln.client import RpcException
    raise RpcException(f"no {what}", code=1234)


@plugin.method("pf-connected")
def pf_connected():
    """the peers the connect notification saw"""
    return connected


@plugin.method("pf-thread")
def pf_thread():
    """starts a thread, hidden from the build's scan"""
    __import__("threading").Thread(target=print).start()


@plugin.method("pf-socket")
def pf_socket():
    """opens a socket, hidden from the build's scan"""
    __import__("socket").socket()


@plugin.method("pf-passwd")
def pf_passwd():
    """reads /etc/passwd"""
    with open("/etc/passwd") as f:
        return f.read()


@plugin.method("pf-note")
def pf_note(plugin, text):
    """appends a note to notes.json in the lightning directory"""
    path = os.path.join(plugin.lightning_dir, "notes.json")
    notes = []
    if os.path.exists(path):
        with open(path) as f:
            notes = json.load(f)
    notes.append(text)
    with open(path, "w") as f:
        json.dump(notes, f)
    return {"notes": notes}


@plugin.subscribe("connect")
def on_connect(plugin, connect, **kwargs):
    connected.append(connect["id"])
    plugin.notify("pf_event", {"connected": connect["id"]})


@plugin.hook("peer_connected")
def on_peer(peer, plugin, **kwargs):
    if peer["id"] in (plugin.get_option("pf-deny") or []):
        return {"result": "disconnect", "error_message": "denied by pf-deny"}
    return {"result": "continue"}


plugin.run()
