//! The MCP endpoint (`POST /mcp`) as a component: the GPT actions as MCP tools, served by the
//! guest crate. Its `tools/call` runs each action's own route (`gpt_user_core::api::GPT_ROUTES`),
//! so this component links every GPT action's handler.
gpt_user_guest::flow_component!(gpt_user_core::api::MCP_ROUTES);
