//! The email change (SPEC §2.3) as a component: its route table, served by the guest crate.
gpt_user_guest::flow_component!(gpt_user_core::api::EMAIL_CHANGE_ROUTES);
