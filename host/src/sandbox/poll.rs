//! `wasi:io/poll` held to the call's deadline. WASI's own blocks the thread
//! until a pollable is ready (a guest's `sleep` is a clock pollable), where
//! the epoch clock cannot interrupt it: a guest could hold a hook as long as
//! it liked. These block no later than the deadline, then trap.

use super::HostState;
use crate::caps::{Deadline, DeadlineReached};
use std::future::Future;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::sync::io::poll as sync_poll;
use wasmtime_wasi::runtime::in_tokio;
use wasmtime_wasi_io::bindings::wasi::io::poll as async_poll;

/// What the poll functions see of an instance: its resources and deadline.
pub struct Bounded<'a> {
    table: &'a mut ResourceTable,
    deadline: Deadline,
}

struct HasBounded;

impl HasData for HasBounded {
    type Data<'a> = Bounded<'a>;
}

/// Put these in place of WASI's `wasi:io/poll` in `linker` (after WASI).
pub fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    linker.allow_shadowing(true);
    let added = sync_poll::add_to_linker::<HostState, HasBounded>(linker, |s| Bounded {
        table: &mut s.table,
        deadline: s.caps.deadline,
    });
    linker.allow_shadowing(false);
    Ok(added?)
}

/// Run `f` to completion or until `deadline`, whichever is first.
fn until<F: Future>(deadline: Deadline, f: F) -> wasmtime::Result<F::Output> {
    let at = tokio::time::Instant::from_std(deadline.at);
    in_tokio(async { tokio::time::timeout_at(at, f).await })
        .map_err(|_elapsed| DeadlineReached.into())
}

impl sync_poll::Host for Bounded<'_> {
    fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        until(self.deadline, async_poll::Host::poll(self.table, pollables))?
    }
}

impl sync_poll::HostPollable for Bounded<'_> {
    fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        in_tokio(async_poll::HostPollable::ready(self.table, pollable))
    }

    fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        until(
            self.deadline,
            async_poll::HostPollable::block(self.table, pollable),
        )?
    }

    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        async_poll::HostPollable::drop(self.table, pollable)
    }
}
