//! The profile-edit flow (SPEC §2.2) as a component: its route table, served by the guest crate.
gpt_user_guest::flow_component!(gpt_user_core::api::PROFILE_ROUTES);
