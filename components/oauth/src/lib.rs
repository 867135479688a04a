//! Sign-in from a chat with OAuth 2.1 (SPEC §2.5) as a component: its route table, served by the
//! guest crate. `/mcp` (the MCP component) is the resource its access tokens are for.
gpt_user_guest::flow_component!(gpt_user_core::api::OAUTH_ROUTES);
