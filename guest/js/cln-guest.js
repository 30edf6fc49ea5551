// cln-guest.js: a small author kit for cln-wasm-host guests written in
// JavaScript and built with componentize-js.
//
// It turns the raw bindings of the WIT world `cln:plugin/plugin@0.1.0`
// (wit/plugin.wit) into JS idioms: JSON text becomes JS values, `result<T, E>`
// becomes return / throw, the manifest is built from `plugin.option(...)`,
// `plugin.method(...)` and friends. A guest module ends with
//
//     export const { manifest, init, handle, hook, notify, setOption } =
//       plugin.exports();
//
// because componentize-js binds the world's exports by name (camelCase) from
// the guest's entry module.
//
// How componentize-js maps the WIT types (what this file relies on):
//   * records are objects with camelCase fields (`wants-store` -> wantsStore),
//   * enums are strings ('string', 'debug', ...), variants `{tag, val}`,
//   * `option<T>` is `undefined` (none) or the value,
//   * s64 is a BigInt,
//   * an imported function returning `result<T, E>` returns T or throws an
//     error whose `payload` is E; an exported one may return
//     `{tag: 'ok' | 'err', val}`, which is what the kit does.

import * as config from 'cln:plugin/config@0.1.0';
import * as request from 'cln:plugin/request@0.1.0';
import * as nodeRpc from 'cln:plugin/node@0.1.0';
import * as kv from 'cln:plugin/store@0.1.0';
import * as events from 'cln:plugin/events@0.1.0';

/** JSON-RPC "internal error": what an unexpected exception becomes. */
export const INTERNAL_ERROR = -32603;
/** JSON-RPC "method not found". */
export const METHOD_NOT_FOUND = -32601;

/**
 * A JSON-RPC error. Thrown from a method handler, it is the caller's error
 * (e.g. what lightning-cli prints); thrown by `node.*` and `store.*`, it is
 * the node's (or the sandbox's) refusal, and rethrowing it passes it on.
 */
export class RpcError extends Error {
  /**
   * @param {number} code     a JSON-RPC error code (plugin errors: outside -32768..-32000)
   * @param {string} message
   * @param {*} [data]        extra JSON-serializable data, attached as `data`
   */
  constructor(code, message, data) {
    super(String(message));
    this.name = 'RpcError';
    this.code = Number(code);
    this.data = data;
  }

  /** The WIT `rpc-error` record. */
  toWit() {
    return {
      code: BigInt(this.code),
      message: this.message,
      data: this.data === undefined ? undefined : JSON.stringify(this.data),
    };
  }

  /** From a WIT `rpc-error` record (as thrown by the imports). */
  static fromWit(e) {
    let data;
    if (e.data !== undefined && e.data !== null) {
      try {
        data = JSON.parse(e.data);
      } catch {
        data = e.data;
      }
    }
    return new RpcError(Number(e.code), e.message, data);
  }
}

// Calls an import that returns `result<T, rpc-error>`, turning its error into
// an RpcError.
function rpcCall(f, ...args) {
  try {
    return f(...args);
  } catch (e) {
    if (e && e.payload && typeof e.payload === 'object' && 'code' in e.payload) {
      throw RpcError.fromWit(e.payload);
    }
    throw e;
  }
}

// A value as JSON text (JSON.stringify, refusing what it cannot encode).
function stringify(value, what) {
  const text = JSON.stringify(value);
  if (text === undefined) throw new TypeError(`${what} is not JSON-serializable`);
  return text;
}

// Params and filters for the node: objects, arrays, or JSON text already.
function toJsonText(value, what) {
  return typeof value === 'string' ? value : stringify(value, what);
}

const LEVELS = ['debug', 'info', 'warn', 'error'];

/** A line in lightningd's log: level is 'debug', 'info', 'warn' or 'error'. */
export function log(level, message) {
  if (!LEVELS.includes(level)) level = 'info';
  events.log(level, String(message));
}

/**
 * Emit a custom notification declared with `plugin.notification(topic)`.
 * Throws RpcError when refused.
 */
export function emit(topic, payload) {
  rpcCall(events.emit, topic, stringify(payload ?? {}, 'payload'));
}

/**
 * The node's RPC, as the operator's policy allows it. Every method must be
 * asked for in the manifest (`plugin.rpc(method, reason)`); a refusal or a
 * node error is thrown as RpcError.
 */
export const node = {
  /** lightningd's getinfo, parsed: `node.getinfo({filter: {id: true}}).id`. */
  getinfo({ filter } = {}) {
    const f = filter === undefined ? undefined : toJsonText(filter, 'filter');
    return JSON.parse(rpcCall(nodeRpc.getinfo, f));
  },

  /** Any node method: `node.call('listpeers', {}, {peers: [{id: true}]})`. */
  call(method, params = {}, filter) {
    const f = filter === undefined ? undefined : toJsonText(filter, 'filter');
    return JSON.parse(rpcCall(nodeRpc.call, method, toJsonText(params, 'params'), f));
  },
};

/**
 * The plugin's private key-value store (strings), once the manifest asks for
 * it (`new Plugin({store: true})`) and the policy grants it.
 */
export const store = {
  /** The value under key, or undefined. */
  get(key) {
    return rpcCall(kv.get, key);
  },
  set(key, value) {
    rpcCall(kv.set, key, String(value));
  },
  delete(key) {
    rpcCall(kv.delete, key);
  },
};

const OPTION_TYPES = ['string', 'int', 'bool', 'flag'];

// A JS value -> the WIT `option-value` variant for an option of `type`.
function toOptionValue(type, multi, value) {
  if (multi) {
    const list = Array.isArray(value) ? value : [value];
    return type === 'int'
      ? { tag: 'int-list', val: list.map((v) => BigInt(v)) }
      : { tag: 'string-list', val: list.map((v) => String(v)) };
  }
  switch (type) {
    case 'string':
      return { tag: 'string', val: String(value) };
    case 'int':
      return { tag: 'int', val: BigInt(value) };
    case 'bool':
    case 'flag':
      return { tag: 'bool', val: Boolean(value) };
  }
  throw new TypeError(`unknown option type ${type}`);
}

// An s64 as a Number when that is exact, else the BigInt. asIntN: for an
// exported function's parameter, componentize-js 0.23 hands a negative s64 as
// its unsigned twin (-1 arrives as 2^64 - 1).
function fromS64(v) {
  v = BigInt.asIntN(64, BigInt(v));
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(v)
    : v;
}

// The WIT `option-value` variant -> a JS value.
function fromOptionValue(v) {
  if (v === undefined || v === null) return undefined;
  switch (v.tag) {
    case 'int':
      return fromS64(v.val);
    case 'int-list':
      return Array.from(v.val, fromS64);
    default:
      return v.val;
  }
}

const CONTINUE = '{"result":"continue"}';

/**
 * A Core Lightning plugin: declare its options, methods, hooks and what it
 * asks of the node, then export `plugin.exports()` from the entry module.
 */
export class Plugin {
  /**
   * @param {object} [opts]
   * @param {boolean} [opts.dynamic=true]   may be started/stopped while the node runs
   * @param {boolean} [opts.store=false]    wants the private key-value store
   * @param {object} [opts.featurebits]     {init, node, channel, invoice} hex strings, and
   *                                        the `reason` the plugin needs them
   * @param {object} [opts.custommessages]  {type: reason}: custom peer message types (odd)
   * @param {string} [opts.dir]             why it wants a private directory (its
   *                                        current directory), granted by `[grants] dir`
   *
   * Hooks, subscriptions, custom notifications and messages and feature bits
   * each carry a reason: the operator reads it and grants them (or not) in
   * the plugin's policy.
   */
  constructor({ dynamic = true, store = false, featurebits = {}, custommessages = {}, dir } = {}) {
    this.dynamic = dynamic;
    this.wantsStore = store;
    this.featurebits = featurebits;
    this.custommessages = custommessages;
    this.dir = dir;
    this._options = [];
    this._methods = new Map();
    this._rpc = [];
    this._hooks = new Map();
    this._subscriptions = new Map();
    this._notifications = [];
    this._init = undefined;
  }

  /**
   * Declare a startup option.
   * @param {string} name
   * @param {object} [o]
   * @param {'string'|'int'|'bool'|'flag'} [o.type='string']
   * @param {*} [o.default]            none for flags
   * @param {string} [o.description='']
   * @param {boolean} [o.multi=false]  the value is then a list
   * @param {boolean} [o.dynamic=false]
   * @param {boolean} [o.deprecated=false]
   * @param {(value, name) => void} [o.onChange] a dynamic option's setconfig:
   *   throw (an Error or a string) to refuse the change
   */
  option(name, o = {}) {
    const {
      type = 'string',
      description = '',
      multi = false,
      dynamic = false,
      deprecated = false,
      onChange,
    } = o;
    if (!OPTION_TYPES.includes(type)) throw new TypeError(`option ${name}: unknown type ${type}`);
    const def = o.default === undefined ? undefined : toOptionValue(type, multi, o.default);
    this._options.push({ decl: { name, type, default: def, description, multi, dynamic, deprecated }, onChange });
    return this;
  }

  /**
   * Add an RPC method. `handler(params, {method, rawParams})` gets the params
   * as parsed JSON (an array for positional params, an object for keyword
   * ones; `[]` when there are none), read-only (frozen), and returns a
   * JSON-serializable value (or a Promise of one; undefined answers `{}`).
   * The params object, put back in the answer as is, is written out exactly
   * as lightningd sent it (`rawParams`). It throws
   * `new RpcError(code, message, data)` to answer an error; any other
   * exception is answered as an internal error (-32603) with its message.
   *
   * Either `method(name, handler, meta)` or `method(name, meta, handler)`.
   * @param {string} name
   * @param {object} meta {usage='', description='', longDescription, deprecated=false}
   */
  method(name, a, b) {
    const [handler, meta = {}] = typeof a === 'function' ? [a, b] : [b, a];
    if (typeof handler !== 'function') throw new TypeError(`method ${name}: no handler`);
    const { usage = '', description = '', longDescription, deprecated = false } = meta;
    this._methods.set(name, {
      decl: { name, usage, description, longDescription, deprecated },
      handler,
    });
    return this;
  }

  /** Ask for a node RPC method, saying why (the operator reads it). */
  rpc(method, reason) {
    this._rpc.push({ method, reason: String(reason) });
    return this;
  }

  /**
   * Register a hook, asked for `reason`: `handler(payload)` returns the hook's
   * answer (default `{"result": "continue"}` when it returns undefined).
   */
  hook(name, reason, handler, { before = [], after = [] } = {}) {
    this._hooks.set(name, { decl: { name, before, after, reason: String(reason) }, handler });
    return this;
  }

  /**
   * Subscribe to a notification topic (`*` for all), asked for `reason`:
   * `handler(payload, topic)`.
   */
  subscribe(topic, reason, handler) {
    this._subscriptions.set(topic, { reason: String(reason), handler });
    return this;
  }

  /** Declare a custom notification topic this plugin emits (see `emit`), and why. */
  notification(topic, reason) {
    this._notifications.push({ topic, reason: String(reason) });
    return this;
  }

  /** Run `fn()` at lightningd's init; throw (an Error or a string) to disable the plugin. */
  onInit(fn) {
    this._init = fn;
    return this;
  }

  /** All options as an object, e.g. `{foo_opt: "bar"}` (unset flags absent). */
  get options() {
    return JSON.parse(config.options());
  }

  /** One option's value, or undefined (an unset flag, an undeclared option). */
  getOption(name) {
    return fromOptionValue(config.getOption(name));
  }

  /** lightningd's init configuration (network, feature_set, ...). */
  get configuration() {
    return JSON.parse(config.configuration());
  }

  /** Whether the node allows deprecated APIs. */
  get allowDeprecatedApis() {
    return config.allowDeprecatedApis();
  }

  /** The WIT `manifest` record. */
  manifest() {
    const fb = this.featurebits;
    return {
      dynamic: this.dynamic,
      options: this._options.map((o) => o.decl),
      methods: [...this._methods.values()].map((m) => m.decl),
      rpc: this._rpc,
      wantsStore: this.wantsStore,
      dir: this.dir === undefined || this.dir === null ? undefined : String(this.dir),
      hooks: [...this._hooks.values()].map((h) => h.decl),
      subscriptions: [...this._subscriptions].map(([topic, s]) => ({ topic, reason: s.reason })),
      notifications: this._notifications,
      featurebits: {
        init: fb.init ?? undefined,
        node: fb.node ?? undefined,
        channel: fb.channel ?? undefined,
        invoice: fb.invoice ?? undefined,
        reason: String(fb.reason ?? ''),
      },
      custommessages: Object.entries(this.custommessages).map(([type, reason]) => ({
        messageType: Number(type),
        reason: String(reason),
      })),
    };
  }

  /**
   * The world's exports, bound to this plugin. componentize-js takes them by
   * name from the entry module:
   *   export const { manifest, init, handle, hook, notify, setOption } = plugin.exports();
   */
  exports() {
    return {
      manifest: () => this.manifest(),
      init: () => this._runInit(),
      handle: () => this._handle(),
      hook: (name, payload) => this._hook(name, payload),
      notify: (topic, payload) => this._notify(topic, payload),
      setOption: (name, value) => this._setOption(name, value),
    };
  }

  async _runInit() {
    try {
      if (this._init) await this._init();
      return { tag: 'ok', val: undefined };
    } catch (e) {
      return { tag: 'err', val: errorText(e) };
    }
  }

  async _handle() {
    try {
      const method = request.method();
      const m = this._methods.get(method);
      if (!m) throw new RpcError(METHOD_NOT_FOUND, `unknown method ${method}`);
      const raw = request.params();
      const params = deepFreeze(JSON.parse(raw));
      const result = await m.handler(params, { method, rawParams: raw });
      return { tag: 'ok', val: serializeResult(result === undefined ? {} : result, params, raw) };
    } catch (e) {
      const err = e instanceof RpcError ? e : new RpcError(INTERNAL_ERROR, errorText(e));
      return { tag: 'err', val: err.toWit() };
    }
  }

  async _hook(name, payload) {
    const h = this._hooks.get(name);
    if (!h) return CONTINUE;
    const answer = await h.handler(JSON.parse(payload));
    return answer === undefined ? CONTINUE : stringify(answer, 'the hook answer');
  }

  async _notify(topic, payload) {
    const sub = this._subscriptions.get(topic) ?? this._subscriptions.get('*');
    if (sub) await sub.handler(JSON.parse(payload), topic);
  }

  async _setOption(name, value) {
    const o = this._options.find((o) => o.decl.name === name);
    if (!o || !o.decl.dynamic || !o.onChange) {
      return { tag: 'err', val: `${name} cannot be changed at runtime` };
    }
    try {
      await o.onChange(fromOptionValue(value), name);
      return { tag: 'ok', val: undefined };
    } catch (e) {
      return { tag: 'err', val: errorText(e) };
    }
  }
}

// The params object a handler got is frozen: serialized back (e.g.
// `cli_params: params`), it is the text exactly as lightningd sent it. Plain
// JSON.parse/stringify would move integer-like keys ("2") first, write 1.0 as
// 1, -0.0 as 0, and round integers past 2^53.
function deepFreeze(v) {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const k of Object.keys(v)) deepFreeze(v[k]);
  }
  return v;
}

let tokens = 0;

function serializeResult(result, params, raw) {
  if (params === null || typeof params !== 'object') return stringify(result, 'the result');
  const token = `\u0000cln-guest params ${++tokens} ${Math.random()}`;
  let embedded = false;
  const text = JSON.stringify(result, (_key, value) => {
    if (value === params) {
      embedded = true;
      return token;
    }
    return value;
  });
  if (text === undefined) throw new TypeError('the result is not JSON-serializable');
  return embedded ? text.split(JSON.stringify(token)).join(raw.trim()) : text;
}

function errorText(e) {
  if (e instanceof Error) return e.message;
  return String(e);
}
