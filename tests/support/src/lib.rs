//! Helpers shared by the test crates (`tests/api`, `tests/spin`): a real SMTP server on loopback
//! that keeps what it receives ([`smtp`]).

pub mod smtp;
