"""The Python kit (guest/python/cln_guest.py) beside the JS and Rust kits: a
hook, subscriptions, a custom notification, a dynamic option through
`on_set_option`, the key-value store and the private directory. Checked by host/tests/pyln_guests.rs (module `kit`)."""

import os

from cln_guest import Plugin, RpcError, emit, store

plugin = Plugin(dynamic=True, store=True, dir="to keep a log of connections")
plugin.option("kf-deny", description="peers to disconnect", type="string", multi=True)
plugin.option("kf-limit", default=10, description="a dynamic int", type="int", dynamic=True)
plugin.notification("kf_event", reason="to tell who connected")

connected = []


@plugin.hook("peer_connected", reason="to disconnect peers on kf-deny")
def on_peer(payload):
    if payload["peer"]["id"] in plugin.options.get("kf-deny", []):
        return {"result": "disconnect", "error_message": "denied by kf-deny"}
    return None  # continue


@plugin.subscribe("connect", reason="to list connections")
def on_connect(payload, topic):
    connected.append(payload["connect"]["id"])
    emit("kf_event", {"connected": payload["connect"]["id"], "topic": topic})


@plugin.on_set_option
def on_set(name, value):
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


@plugin.method("kf-state", description="what the kit guest saw")
def state(params):
    return {"connected": connected, "limit": plugin.options["kf-limit"]}


@plugin.method("kf-emit-undeclared", description="emits a topic it did not declare")
def emit_undeclared(params):
    try:
        emit("kf_other", {})
    except RpcError as e:
        return {"code": e.code, "message": e.message}


@plugin.method("kf-save", description="appends a line to a file in its directory, and stores a key")
def save(params):
    with open("seen.txt", "a") as f:
        f.write(params["line"] + "\n")
    store.set("last", params["line"])
    with open("seen.txt") as f:
        return {"lines": f.read().splitlines(), "files": sorted(os.listdir(".")),
                "last": store.get("last")}


WitWorld = plugin.world()
