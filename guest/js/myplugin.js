// The seed's myplugin, minus all protocol plumbing: a string option `foo_opt`
// (default `bar`) and a method `myplugin` that answers the node's id, the
// option's value and the call's params. Same behaviour as the Rust guest in
// guest/myplugin/src/lib.rs.

import { Plugin, node } from './cln-guest.js';

const plugin = new Plugin({ dynamic: true });

plugin.rpc('getinfo', "to answer the node's id");

plugin.option('foo_opt', { type: 'string', default: 'bar', description: 'description' });

plugin.method('myplugin', { usage: '', description: 'description' }, (params) => ({
  node_id: node.getinfo({ filter: { id: true } }).id,
  option: { foo_opt: plugin.options.foo_opt },
  cli_params: params,
}));

export const { manifest, init, handle, hook, notify, setOption } = plugin.exports();
