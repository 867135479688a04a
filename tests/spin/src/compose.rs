//! Composition as `wac plug --plug adapter.wasm signup.wasm` does it: every export of the plug
//! that matches an import of the socket is wired in, and the socket's exports are re-exported.

use anyhow::Context;
use wac_graph::{CompositionGraph, EncodeOptions, plug};
use wac_types::Package;

/// The socket with the plug's exports plugged into its imports, encoded and validated.
pub fn plug_into(socket: &[u8], plug_bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut graph = CompositionGraph::new();
    let socket = Package::from_bytes("app:socket", None, socket.to_vec(), graph.types_mut())?;
    let socket = graph.register_package(socket)?;
    let adapter = Package::from_bytes("app:plug", None, plug_bytes.to_vec(), graph.types_mut())?;
    let adapter = graph.register_package(adapter)?;
    plug(&mut graph, vec![adapter], socket).context("plugging the adapter into the flow component")?;
    Ok(graph.encode(EncodeOptions::default())?)
}
