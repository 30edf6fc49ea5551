"""The Python kit (guest/python/cln_guest.py) beside the JS and Rust kits: a
hook, subscriptions, a custom notification and a dynamic option through
`on_set_option`. Checked by host/tests/pyln_guests.rs (module `kit`)."""

from cln_guest import Plugin, RpcError, emit

plugin = Plugin(dynamic=True)
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


WitWorld = plugin.world()
