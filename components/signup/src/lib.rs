//! The sign-up flow component (SPEC §2.1): SignUp_Init, SignUp_Verify, the verify page, and the
//! documents every deployment serves (`/openapi.json`, `/privacy`, `/healthz`). Every rule is in
//! `gpt-user-core`; every port and all HTTP glue in `gpt-user-guest`.

gpt_user_guest::flow_component!(gpt_user_core::api::SIGNUP_ROUTES);
